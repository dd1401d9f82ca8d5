package ai.lorakit.adapters.io;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonGenerator;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * Writes safetensors files (VARIANTS.md section 9) the way huggingface/safetensors' Rust writer does: compact
 * JSON header with {@code __metadata__} first, padded with spaces so that N (and so 8 + N) is a multiple of 8,
 * tensors laid out by descending dtype (= descending alignment, {@link SafeDType} order) then by name in byte
 * order, little-endian, row-major, no gaps. Reading is {@link SafetensorsFile#open}.
 */
public final class Safetensors {

    private static final JsonFactory JSON = new JsonFactory();

    private Safetensors() {
    }

    /** Maps and validates a file; same as {@link SafetensorsFile#open}. */
    public static SafetensorsFile open(Path file) throws IOException {
        return SafetensorsFile.open(file);
    }

    /**
     * Writes {@code tensors} (name -> data) and {@code metadata} (null = no {@code __metadata__} entry) to
     * {@code file}, atomically (temp file, fsync, rename; see {@link AtomicFiles}). Everything is validated
     * before the temp file is created: names non-empty and not {@code __metadata__}, no null values.
     */
    public static void write(Path file, Map<String, TensorData> tensors, Map<String, String> metadata)
            throws IOException {
        List<Map.Entry<String, TensorData>> order = layout(tensors);
        if (metadata != null) {
            metadata.forEach((k, v) -> {
                if (k == null || v == null) {
                    throw new IllegalArgumentException("safetensors metadata: null key or value (" + k + " -> " + v + ")");
                }
            });
        }
        byte[] header = header(order, metadata);
        if (header.length > SafetensorsFile.MAX_HEADER) {
            throw new IllegalArgumentException("safetensors header would be " + header.length
                    + " bytes, over the " + SafetensorsFile.MAX_HEADER + "-byte limit of readers");
        }
        AtomicFiles.write(file, ch -> {
            ByteBuffer len = ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(header.length).flip();
            AtomicFiles.writeFully(ch, len);
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(header));
            for (Map.Entry<String, TensorData> e : order) {
                AtomicFiles.writeFully(ch, ByteBuffer.wrap(e.getValue().data()));
            }
        });
    }

    /** Tensors in file order: descending dtype (alignment), then name by UTF-8 bytes (the Rust writer's order). */
    static List<Map.Entry<String, TensorData>> layout(Map<String, TensorData> tensors) {
        List<Map.Entry<String, TensorData>> order = new ArrayList<>(tensors.size());
        for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
            String name = e.getKey();
            if (name == null || name.isEmpty()) {
                throw new IllegalArgumentException("safetensors: tensor names must be non-empty, got '" + name + "'");
            }
            if (name.equals("__metadata__")) {
                throw new IllegalArgumentException("safetensors: '__metadata__' is reserved and cannot name a tensor");
            }
            if (e.getValue() == null) {
                throw new IllegalArgumentException("safetensors: tensor '" + name + "' is null");
            }
            order.add(Map.entry(name, e.getValue()));
        }
        order.sort((x, y) -> {
            int c = Integer.compare(y.getValue().dtype().ordinal(), x.getValue().dtype().ordinal());
            return c != 0 ? c : Arrays.compareUnsigned(utf8(x.getKey()), utf8(y.getKey()));
        });
        return order;
    }

    /** The JSON header, padded with spaces to a multiple of 8 bytes. */
    static byte[] header(List<Map.Entry<String, TensorData>> order, Map<String, String> metadata) throws IOException {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        try (JsonGenerator g = JSON.createGenerator(out)) {
            g.writeStartObject();
            if (metadata != null) {
                g.writeObjectFieldStart("__metadata__");
                for (Map.Entry<String, String> m : metadata.entrySet()) {
                    g.writeStringField(m.getKey(), m.getValue());
                }
                g.writeEndObject();
            }
            long offset = 0;
            for (Map.Entry<String, TensorData> e : order) {
                TensorData t = e.getValue();
                g.writeObjectFieldStart(e.getKey());
                g.writeStringField("dtype", t.dtype().headerName());
                g.writeArrayFieldStart("shape");
                for (long d : t.shape()) {
                    g.writeNumber(d);
                }
                g.writeEndArray();
                g.writeArrayFieldStart("data_offsets");
                g.writeNumber(offset);
                offset += t.data().length;
                g.writeNumber(offset);
                g.writeEndArray();
                g.writeEndObject();
            }
            g.writeEndObject();
        }
        int pad = (8 - out.size() % 8) % 8;
        for (int i = 0; i < pad; i++) {
            out.write(' ');
        }
        return out.toByteArray();
    }

    private static byte[] utf8(String s) {
        return s.getBytes(StandardCharsets.UTF_8);
    }
}
