package ai.lorakit.adapters.io;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The weights of a Hugging Face model folder, as {@code save_pretrained} writes them: one {@code model.safetensors},
 * or shards {@code model-00001-of-0000N.safetensors} listed by {@code model.safetensors.index.json}
 * ({@code {"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}}).
 *
 * <p>Reading follows transformers' order of preference: the single file when it exists, else the index. Every
 * shard is memory-mapped and validated by {@link SafetensorsFile#open}; tensor data stays in the mappings until
 * asked for. The index is checked as strictly as a shard: a JSON object with a {@code weight_map} of strings, shard
 * names that are plain file names in the folder, every listed tensor present in its shard, and every tensor of a
 * shard listed (a tensor the index does not name, or names in another shard, would be silently shadowed).
 * Problems are {@link SafetensorsException}s naming the file and the tensor.
 *
 * <p>Writing ({@link #write}) splits the tensors into shards of at most {@code maxShardBytes} of data (a larger
 * tensor gets a shard of its own), writes each shard, then the index, each atomically, and then removes what an
 * earlier write left that would shadow or contradict the new one (a single {@code model.safetensors}, or shards of
 * another count). Up to the index's rename, a reader sees the old checkpoint whole.
 */
public final class HfWeights implements AutoCloseable {

    public static final String SINGLE_FILE = "model.safetensors";
    public static final String INDEX_FILE = "model.safetensors.index.json";
    /** transformers' default {@code max_shard_size} (5 GB). */
    public static final long DEFAULT_MAX_SHARD_BYTES = 5_000_000_000L;

    private static final Pattern SHARD_NAME = Pattern.compile("model-\\d{5}-of-\\d{5}\\.safetensors");
    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
            .build();

    private final Path dir;
    private final List<SafetensorsFile> shards;
    /** tensor name -> the shard holding it, in index (or file) order. */
    private final Map<String, SafetensorsFile> byName;

    private HfWeights(Path dir, List<SafetensorsFile> shards, Map<String, SafetensorsFile> byName) {
        this.dir = dir;
        this.shards = shards;
        this.byName = byName;
    }

    /** Whether {@code dir} holds weights this class reads (a single file or an index). */
    public static boolean present(Path dir) {
        return Files.isRegularFile(dir.resolve(SINGLE_FILE)) || Files.isRegularFile(dir.resolve(INDEX_FILE));
    }

    /** Opens the folder's weights; see the class comment for what is validated. */
    public static HfWeights open(Path dir) throws IOException {
        Path single = dir.resolve(SINGLE_FILE);
        if (Files.isRegularFile(single)) {
            SafetensorsFile f = SafetensorsFile.open(single);
            Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
            f.names().forEach(n -> byName.put(n, f));
            return new HfWeights(dir, List.of(f), byName);
        }
        Path index = dir.resolve(INDEX_FILE);
        if (!Files.isRegularFile(index)) {
            String hint = Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                    || Files.isRegularFile(dir.resolve("pytorch_model.bin.index.json"))
                    ? " (found pytorch_model.bin, a torch pickle lorakit does not read: convert it with"
                    + " model.save_pretrained(dir, safe_serialization=True))" : "";
            throw new SafetensorsException(dir + ": no " + SINGLE_FILE + " and no " + INDEX_FILE + hint);
        }
        return openSharded(dir, index);
    }

    private static HfWeights openSharded(Path dir, Path index) throws IOException {
        Map<String, String> weightMap = readWeightMap(index);
        Map<String, SafetensorsFile> files = new LinkedHashMap<>();
        boolean ok = false;
        try {
            for (String shard : new LinkedHashSet<>(weightMap.values())) {
                Path p = dir.resolve(shard);
                if (!Files.isRegularFile(p)) {
                    throw SafetensorsException.of(index, "shard '" + shard + "' is listed but " + p + " is missing");
                }
                files.put(shard, SafetensorsFile.open(p));
            }
            Map<String, SafetensorsFile> byName = new LinkedHashMap<>();
            for (Map.Entry<String, String> e : weightMap.entrySet()) {
                SafetensorsFile f = files.get(e.getValue());
                if (!f.contains(e.getKey())) {
                    throw SafetensorsException.of(index, e.getKey(), "listed in shard '" + e.getValue()
                            + "', which does not hold it");
                }
                byName.put(e.getKey(), f);
            }
            for (SafetensorsFile f : files.values()) {
                for (String n : f.names()) {
                    if (byName.get(n) != f) {
                        throw SafetensorsException.of(f.path(), n, weightMap.containsKey(n)
                                ? "also present here, but the index maps it to '" + weightMap.get(n) + "'"
                                : "present in the shard but not listed in " + INDEX_FILE);
                    }
                }
            }
            ok = true;
            return new HfWeights(dir, List.copyOf(files.values()), byName);
        } finally {
            if (!ok) {
                files.values().forEach(SafetensorsFile::close);
            }
        }
    }

    /** The index's weight_map (tensor -> shard file name), validated. */
    private static Map<String, String> readWeightMap(Path index) throws IOException {
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(index));
        } catch (JsonProcessingException e) {
            throw SafetensorsException.of(index, "not valid JSON: " + e.getOriginalMessage());
        }
        if (root == null || !root.isObject()) {
            throw SafetensorsException.of(index, "must be a JSON object with a \"weight_map\"");
        }
        JsonNode map = root.get("weight_map");
        if (map == null || !map.isObject() || map.isEmpty()) {
            throw SafetensorsException.of(index, "\"weight_map\" must be a non-empty object of tensor -> shard file");
        }
        Map<String, String> out = new LinkedHashMap<>();
        for (Iterator<Map.Entry<String, JsonNode>> it = map.fields(); it.hasNext(); ) {
            Map.Entry<String, JsonNode> e = it.next();
            JsonNode v = e.getValue();
            if (!v.isTextual()) {
                throw SafetensorsException.of(index, e.getKey(), "weight_map value must be a shard file name, got " + v);
            }
            String shard = v.asText();
            Path name = Path.of(shard).getFileName();
            if (shard.isEmpty() || name == null || !name.toString().equals(shard) || shard.equals("..")
                    || shard.equals(".") || !shard.endsWith(".safetensors")) {
                throw SafetensorsException.of(index, e.getKey(), "shard '" + shard
                        + "' must be a plain .safetensors file name in the model folder");
            }
            out.put(e.getKey(), shard);
        }
        return out;
    }

    // ---------------------------------------------------------------- reading

    public Path dir() {
        return dir;
    }

    /** Every tensor name, index (or file) order. */
    public List<String> names() {
        return List.copyOf(byName.keySet());
    }

    public boolean contains(String name) {
        return byName.containsKey(name);
    }

    /** The file that holds {@code name}, for messages; IllegalArgumentException if none does. */
    public Path fileOf(String name) {
        return shard(name).path();
    }

    public TensorInfo info(String name) {
        return shard(name).info(name);
    }

    /** The tensor's values as fp32, converted from its stored dtype. */
    public float[] floats(String name) {
        return shard(name).floats(name);
    }

    /** The shard files, in index order (one for a single-file checkpoint). */
    public List<Path> files() {
        return shards.stream().map(SafetensorsFile::path).toList();
    }

    private SafetensorsFile shard(String name) {
        SafetensorsFile f = byName.get(name);
        if (f == null) {
            throw new IllegalArgumentException(dir + ": no tensor '" + name + "' in " + files());
        }
        return f;
    }

    /** Unmaps every shard; idempotent. */
    @Override
    public void close() {
        shards.forEach(SafetensorsFile::close);
    }

    // ---------------------------------------------------------------- writing

    /**
     * Writes {@code tensors} (in their iteration order) into {@code dir}: one {@code model.safetensors} when their
     * data fits in {@code maxShardBytes}, else shards plus the index; see the class comment. Returns the files
     * written, the index last.
     */
    public static List<Path> write(Path dir, Map<String, TensorData> tensors, Map<String, String> metadata,
                                   long maxShardBytes) throws IOException {
        if (maxShardBytes <= 0) {
            throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
        }
        if (tensors.isEmpty()) {
            throw new IllegalArgumentException("no tensors to write to " + dir);
        }
        List<Map<String, TensorData>> groups = pack(tensors, maxShardBytes);
        Files.createDirectories(dir);
        List<Path> written = new ArrayList<>();
        if (groups.size() == 1) {
            Path single = dir.resolve(SINGLE_FILE);
            Safetensors.write(single, tensors, metadata);
            written.add(single);
            Files.deleteIfExists(dir.resolve(INDEX_FILE));
            deleteShardsExcept(dir, List.of());
            return written;
        }
        ObjectNode index = JSON.createObjectNode();
        long total = tensors.values().stream().mapToLong(t -> t.data().length).sum();
        index.putObject("metadata").put("total_size", total);
        ObjectNode map = index.putObject("weight_map");
        for (int i = 0; i < groups.size(); i++) {
            String name = String.format("model-%05d-of-%05d.safetensors", i + 1, groups.size());
            Path p = dir.resolve(name);
            Safetensors.write(p, groups.get(i), metadata);
            written.add(p);
            groups.get(i).keySet().forEach(t -> map.put(t, name));
        }
        Path indexFile = dir.resolve(INDEX_FILE);
        AtomicFiles.write(indexFile, JSON.writerWithDefaultPrettyPrinter().writeValueAsBytes(index));
        written.add(indexFile);
        // the index is in place: now nothing may shadow it (a single file is preferred by readers) or linger
        Files.deleteIfExists(dir.resolve(SINGLE_FILE));
        deleteShardsExcept(dir, written);
        return written;
    }

    /** Greedy split in iteration order: a shard is closed when the next tensor would take it past the limit. */
    static List<Map<String, TensorData>> pack(Map<String, TensorData> tensors, long maxShardBytes) {
        List<Map<String, TensorData>> groups = new ArrayList<>();
        Map<String, TensorData> cur = new LinkedHashMap<>();
        long bytes = 0;
        for (Map.Entry<String, TensorData> e : tensors.entrySet()) {
            long n = e.getValue().data().length;
            if (!cur.isEmpty() && bytes + n > maxShardBytes) {
                groups.add(cur);
                cur = new LinkedHashMap<>();
                bytes = 0;
            }
            cur.put(e.getKey(), e.getValue());
            bytes += n;
        }
        groups.add(cur);
        return groups;
    }

    private static void deleteShardsExcept(Path dir, List<Path> keep) throws IOException {
        List<Path> stale;
        try (Stream<Path> s = Files.list(dir)) {
            stale = s.filter(p -> SHARD_NAME.matcher(p.getFileName().toString()).matches())
                    .filter(p -> !keep.contains(p)).toList();
        }
        for (Path p : stale) {
            Files.deleteIfExists(p);
        }
    }
}
