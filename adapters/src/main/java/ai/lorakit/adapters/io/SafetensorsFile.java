package ai.lorakit.adapters.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * A read-only, memory-mapped safetensors file (layout in VARIANTS.md section 9 and huggingface/safetensors
 * {@code src/tensor.rs}): u64 little-endian header length N, N bytes of UTF-8 JSON, then the data buffer.
 *
 * <p>{@link #open} validates the whole header before returning, as strictly as the Rust reader or more:
 * header bounds, UTF-8, a JSON object without duplicate keys, {@code __metadata__} a string to string map,
 * each entry exactly {@code dtype}/{@code shape}/{@code data_offsets} with a known dtype, non-negative dims,
 * {@code 0 <= begin <= end}, {@code end - begin == numel * size}, and the tensors covering the data buffer
 * exactly with no overlap and no gap. Every failure is a {@link SafetensorsException} naming the file, the
 * tensor and the problem. Unknown keys inside a tensor entry are rejected (the format defines none).
 *
 * <p>Tensor data is read lazily from the mapping; {@link #close} unmaps it, after which buffers obtained from
 * {@link #bytes} must no longer be used (access throws IllegalStateException). Safe for concurrent readers.
 */
public final class SafetensorsFile implements AutoCloseable {

    /** The Rust reader's limit on the header length. */
    public static final long MAX_HEADER = 100_000_000L;

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private final Path path;
    private final Arena arena;
    private final MemorySegment data;                 // the data buffer (after the header)
    private final Map<String, TensorInfo> tensors;    // file order
    private final Map<String, String> metadata;
    private final long headerLength;

    private SafetensorsFile(Path path, Arena arena, MemorySegment data, Map<String, TensorInfo> tensors,
                            Map<String, String> metadata, long headerLength) {
        this.path = path;
        this.arena = arena;
        this.data = data;
        this.tensors = tensors;
        this.metadata = metadata;
        this.headerLength = headerLength;
    }

    /** Maps and validates {@code file}; see the class comment for what is checked. */
    public static SafetensorsFile open(Path file) throws IOException {
        Arena arena = Arena.ofShared();
        try (FileChannel ch = FileChannel.open(file, StandardOpenOption.READ)) {
            long size = ch.size();
            if (size < 8) {
                throw SafetensorsException.of(file, "file is " + size
                        + " bytes, shorter than the 8-byte header length field");
            }
            MemorySegment all = ch.map(FileChannel.MapMode.READ_ONLY, 0, size, arena);
            long n = all.get(ElementCodec.LONG, 0);
            if (n < 0 || n > MAX_HEADER) {
                throw SafetensorsException.of(file, "header too long: " + Long.toUnsignedString(n)
                        + " bytes declared, the limit is " + MAX_HEADER);
            }
            if (8 + n > size) {
                throw SafetensorsException.of(file, "header too long: 8 + " + n
                        + " bytes declared but the file has only " + size + " bytes");
            }
            byte[] header = all.asSlice(8, n).toArray(ValueLayout.JAVA_BYTE);
            MemorySegment data = all.asSlice(8 + n);
            Header h = parseHeader(file, header);
            validateLayout(file, h.tensors, data.byteSize());
            return new SafetensorsFile(file, arena, data, Collections.unmodifiableMap(h.tensors),
                    Collections.unmodifiableMap(h.metadata), n);
        } catch (IOException | RuntimeException e) {
            arena.close();
            throw e;
        }
    }

    private record Header(Map<String, TensorInfo> tensors, Map<String, String> metadata) {
    }

    private static Header parseHeader(Path file, byte[] header) throws SafetensorsException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(ByteBuffer.wrap(header)).toString();
        } catch (CharacterCodingException e) {
            throw SafetensorsException.of(file, "header is not valid UTF-8 (" + e.getMessage() + ")");
        }
        JsonNode root;
        try {
            root = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            String m = e.getOriginalMessage();
            if (m != null && m.startsWith("Duplicate")) {
                throw SafetensorsException.of(file, "header has a duplicate key: " + m);
            }
            throw SafetensorsException.of(file, "header is not valid JSON: " + m);
        }
        if (root == null || !root.isObject()) {
            throw SafetensorsException.of(file, "header is not a JSON object (starts with '"
                    + abbreviate(text.strip(), 20) + "')");
        }
        Map<String, TensorInfo> tensors = new LinkedHashMap<>();
        Map<String, String> metadata = new LinkedHashMap<>();
        for (Map.Entry<String, JsonNode> e : root.properties()) {
            String name = e.getKey();
            JsonNode v = e.getValue();
            if (name.equals("__metadata__")) {
                parseMetadata(file, v, metadata);
            } else {
                tensors.put(name, parseEntry(file, name, v));
            }
        }
        return new Header(tensors, metadata);
    }

    private static void parseMetadata(Path file, JsonNode v, Map<String, String> out) throws SafetensorsException {
        if (v.isNull()) {
            return;   // Rust's Option<HashMap>: null is "no metadata"
        }
        if (!v.isObject()) {
            throw SafetensorsException.of(file, "__metadata__ must be a JSON object of string -> string, got "
                    + abbreviate(v.toString(), 60));
        }
        for (Map.Entry<String, JsonNode> m : v.properties()) {
            if (!m.getValue().isTextual()) {
                throw SafetensorsException.of(file, "__metadata__ must map strings to strings, but key '"
                        + m.getKey() + "' has " + abbreviate(m.getValue().toString(), 60));
            }
            out.put(m.getKey(), m.getValue().textValue());
        }
    }

    private static TensorInfo parseEntry(Path file, String name, JsonNode v) throws SafetensorsException {
        if (!v.isObject()) {
            throw SafetensorsException.of(file, name, "entry must be a JSON object with dtype, shape and "
                    + "data_offsets, got " + abbreviate(v.toString(), 60));
        }
        for (Map.Entry<String, JsonNode> f : v.properties()) {
            String k = f.getKey();
            if (!k.equals("dtype") && !k.equals("shape") && !k.equals("data_offsets")) {
                throw SafetensorsException.of(file, name, "unexpected key '" + k
                        + "' (an entry has only dtype, shape and data_offsets)");
            }
        }
        JsonNode d = require(file, name, v, "dtype");
        if (!d.isTextual()) {
            throw SafetensorsException.of(file, name, "'dtype' must be a string, got " + abbreviate(d.toString(), 60));
        }
        SafeDType dtype = SafeDType.fromHeader(d.textValue());
        if (dtype == null) {
            throw SafetensorsException.of(file, name, "unknown dtype '" + d.textValue() + "' (supported: "
                    + Arrays.toString(SafeDType.values()) + ")");
        }
        long[] shape = longArray(file, name, require(file, name, v, "shape"), "shape", -1);
        for (long dim : shape) {
            if (dim < 0) {
                throw SafetensorsException.of(file, name, "negative dimension " + dim + " in shape "
                        + Arrays.toString(shape));
            }
        }
        long[] off = longArray(file, name, require(file, name, v, "data_offsets"), "data_offsets", 2);
        if (off[0] < 0 || off[1] < off[0]) {
            throw SafetensorsException.of(file, name, "data_offsets " + Arrays.toString(off)
                    + " must be [begin, end] with 0 <= begin <= end");
        }
        long expected;
        try {
            expected = Math.multiplyExact(TensorInfo.numel(shape), dtype.bytes());
        } catch (ArithmeticException ex) {
            throw SafetensorsException.of(file, name, "shape " + Arrays.toString(shape) + " of " + dtype
                    + " has more than 2^63 bytes");
        }
        long actual = off[1] - off[0];
        if (expected != actual) {
            throw SafetensorsException.of(file, name, "shape/offset mismatch: shape " + Arrays.toString(shape)
                    + " of " + dtype + " needs " + expected + " bytes but data_offsets " + Arrays.toString(off)
                    + " hold " + actual + " bytes");
        }
        return new TensorInfo(name, dtype, shape, off[0], off[1]);
    }

    private static JsonNode require(Path file, String name, JsonNode v, String key) throws SafetensorsException {
        JsonNode n = v.get(key);
        if (n == null) {
            throw SafetensorsException.of(file, name, "entry is missing '" + key + "'");
        }
        return n;
    }

    /** A JSON array of integers (exactly {@code len} of them unless len < 0). */
    private static long[] longArray(Path file, String name, JsonNode a, String key, int len)
            throws SafetensorsException {
        String want = len == 2 ? "[begin, end] (two integers)" : "an array of integers";
        if (!a.isArray() || (len >= 0 && a.size() != len)) {
            throw SafetensorsException.of(file, name, "'" + key + "' must be " + want + ", got "
                    + abbreviate(a.toString(), 60));
        }
        long[] out = new long[a.size()];
        for (int i = 0; i < out.length; i++) {
            JsonNode x = a.get(i);
            if (!x.isIntegralNumber() || !x.canConvertToLong()) {
                throw SafetensorsException.of(file, name, "'" + key + "' must be " + want + ", got "
                        + abbreviate(a.toString(), 60));
            }
            out[i] = x.longValue();
        }
        return out;
    }

    /** Tensors sorted by offsets must tile [0, bufferSize) exactly: no overlap, no gap, nothing left over. */
    private static void validateLayout(Path file, Map<String, TensorInfo> tensors, long bufferSize)
            throws SafetensorsException {
        List<TensorInfo> sorted = new ArrayList<>(tensors.values());
        sorted.sort(Comparator.comparingLong(TensorInfo::begin).thenComparingLong(TensorInfo::end));
        long pos = 0;
        TensorInfo prev = null;
        for (TensorInfo t : sorted) {
            if (t.begin() < pos) {
                throw SafetensorsException.of(file, t.name(), "overlapping tensors: '" + t.name() + "' [" + t.begin()
                        + ", " + t.end() + ") overlaps '" + prev.name() + "' [" + prev.begin() + ", " + prev.end() + ")");
            }
            if (t.begin() > pos) {
                throw SafetensorsException.of(file, t.name(), "offsets do not cover the data buffer exactly: bytes ["
                        + pos + ", " + t.begin() + ") before '" + t.name() + "' belong to no tensor");
            }
            if (t.end() > bufferSize) {
                throw SafetensorsException.of(file, t.name(), "offsets do not cover the data buffer exactly: '"
                        + t.name() + "' ends at " + t.end() + " but the data buffer has only " + bufferSize + " bytes");
            }
            pos = t.end();
            if (t.end() > t.begin() || prev == null) {
                prev = t;
            }
        }
        if (pos != bufferSize) {
            throw SafetensorsException.of(file, "offsets do not cover the data buffer exactly: the tensors end at "
                    + pos + " but the data buffer has " + bufferSize + " bytes");
        }
    }

    private static String abbreviate(String s, int max) {
        return s.length() <= max ? s : s.substring(0, max) + "...";
    }

    // ---------------------------------------------------------------- accessors

    public Path path() {
        return path;
    }

    /** Tensor names in header order ({@code __metadata__} excluded). */
    public List<String> names() {
        return List.copyOf(tensors.keySet());
    }

    /** All entries, header order. */
    public Map<String, TensorInfo> tensors() {
        return tensors;
    }

    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The {@code __metadata__} map (empty when absent). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /** The JSON header length N (bytes 8..8+N). */
    public long headerLength() {
        return headerLength;
    }

    /** The entry of {@code name}; IllegalArgumentException (naming the file) if there is none. */
    public TensorInfo info(String name) {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new IllegalArgumentException(path + ": no tensor '" + name + "'");
        }
        return t;
    }

    /** The tensor's bytes as a read-only memory segment (little-endian, row-major). */
    public MemorySegment segment(String name) {
        TensorInfo t = info(name);
        checkOpen();
        return data.asSlice(t.begin(), t.byteSize());
    }

    /** The tensor's bytes: a read-only little-endian ByteBuffer slice of the mapping. */
    public ByteBuffer bytes(String name) {
        TensorInfo t = info(name);
        if (t.byteSize() > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(path + ": tensor '" + name + "' has " + t.byteSize()
                    + " bytes, too large for a ByteBuffer; use segment()");
        }
        return segment(name).asByteBuffer().asReadOnlyBuffer().order(ByteOrder.LITTLE_ENDIAN);
    }

    /** The tensor's values as fp32, any dtype (see {@link ElementCodec} for rounding). */
    public float[] floats(String name) {
        TensorInfo t = info(name);
        return ElementCodec.floats(segment(name), t.dtype(), count(t));
    }

    /** The values of an integer (or BOOL) tensor; throws for float dtypes and for values outside the int range. */
    public int[] ints(String name) {
        long[] v = longs(name);
        int[] out = new int[v.length];
        for (int i = 0; i < v.length; i++) {
            if (v[i] != (int) v[i]) {
                throw new ArithmeticException(path + ": tensor '" + name + "' element " + i + " = " + v[i]
                        + " does not fit in an int; use longs()");
            }
            out[i] = (int) v[i];
        }
        return out;
    }

    /** The values of an integer (or BOOL) tensor as longs; throws for float dtypes and U64 values above 2^63-1. */
    public long[] longs(String name) {
        TensorInfo t = info(name);
        if (!t.dtype().isInteger()) {
            throw new IllegalArgumentException(path + ": tensor '" + name + "' is " + t.dtype()
                    + ", not an integer type; use floats()");
        }
        try {
            return ElementCodec.longs(segment(name), t.dtype(), count(t));
        } catch (ArithmeticException e) {
            throw new ArithmeticException(path + ": tensor '" + name + "': " + e.getMessage());
        }
    }

    private int count(TensorInfo t) {
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException(path + ": tensor '" + t.name() + "' has " + t.numel()
                    + " elements, too many for a Java array");
        }
        return (int) t.numel();
    }

    private void checkOpen() {
        if (!arena.scope().isAlive()) {
            throw new IllegalStateException(path + " is closed");
        }
    }

    /** Unmaps the file; idempotent. */
    @Override
    public void close() {
        if (arena.scope().isAlive()) {
            arena.close();
        }
    }

    @Override
    public String toString() {
        return "SafetensorsFile(" + path + ", " + tensors.size() + " tensors)";
    }
}
