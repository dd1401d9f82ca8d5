package ai.lorakit.adapters.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that HF model-folder weights are read and written in both of transformers' layouts: a single
 * model.safetensors, and shards with model.safetensors.index.json (an index laid out by hand as transformers
 * writes it is read; what lorakit writes splits at the size limit, reads back bit-exact in F32, BF16 and F16, and
 * replaces an earlier checkpoint of the other layout without leaving anything that shadows it). Every
 * inconsistency between index and shards is refused with a message naming the file and the tensor.
 */
class HfWeightsTest {

    @TempDir
    Path dir;

    /** Three tensors of 4 x 4 floats: 64 bytes each in F32. */
    private static Map<String, TensorData> tensors() {
        Map<String, TensorData> m = new LinkedHashMap<>();
        for (int t = 0; t < 3; t++) {
            float[] v = new float[16];
            for (int i = 0; i < v.length; i++) {
                v[i] = t * 100 + i * 0.37f - 2.5f;
            }
            m.put("model.layers." + t + ".mlp.up_proj.weight", TensorData.f32(v, 4, 4));
        }
        return m;
    }

    private static List<String> listing(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.map(p -> p.getFileName().toString()).filter(n -> !AtomicFiles.isTempFile(Path.of(n)))
                    .sorted().toList();
        }
    }

    @Test
    void splitsAtTheLimitAndReadsBackExactly() throws IOException {
        Map<String, TensorData> in = tensors();
        // 128 bytes per shard: two 64-byte tensors, then one
        List<Path> files = HfWeights.write(dir, in, Map.of("format", "pt"), 128);
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                HfWeights.INDEX_FILE), files.stream().map(p -> p.getFileName().toString()).toList());
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                HfWeights.INDEX_FILE), listing(dir));
        try (HfWeights w = HfWeights.open(dir)) {
            assertEquals(List.copyOf(in.keySet()), w.names());
            assertEquals(dir.resolve("model-00002-of-00002.safetensors"),
                    w.fileOf("model.layers.2.mlp.up_proj.weight"));
            for (Map.Entry<String, TensorData> e : in.entrySet()) {
                assertArrayEquals(e.getValue().floats(), w.floats(e.getKey()), e.getKey());
            }
        }
        String index = Files.readString(dir.resolve(HfWeights.INDEX_FILE));
        assertTrue(index.contains("\"total_size\" : 192"), index);
    }

    @Test
    void everyStorageDtypeRoundTrips() throws IOException {
        float[] v = {1f, -2.5f, 3.140625f, 0f, 65504f, -0.000061035156f};
        for (TensorData t : List.of(TensorData.f32(v, 2, 3), TensorData.bf16(v, 2, 3), TensorData.f16(v, 2, 3))) {
            Path d = dir.resolve(t.dtype().name());
            HfWeights.write(d, Map.of("w", t, "w2", t), null, t.data().length);
            try (HfWeights w = HfWeights.open(d)) {
                assertEquals(2, w.files().size(), "one tensor per shard");
                assertEquals(t.dtype(), w.info("w2").dtype());
                assertArrayEquals(t.floats(), w.floats("w2"));
            }
        }
    }

    @Test
    void aTensorLargerThanTheLimitGetsAShardOfItsOwn() {
        List<Map<String, TensorData>> groups = HfWeights.pack(tensors(), 10);
        assertEquals(3, groups.size());
        groups.forEach(g -> assertEquals(1, g.size()));
        assertEquals(1, HfWeights.pack(tensors(), 192).size());
    }

    @Test
    void rewritingSwitchesLayoutsWithoutLeftovers() throws IOException {
        HfWeights.write(dir, tensors(), null, 64);                     // 3 shards + index
        assertEquals(4, listing(dir).size());
        HfWeights.write(dir, tensors(), null, 128);                    // 2 shards: the third must go
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                HfWeights.INDEX_FILE), listing(dir));
        HfWeights.write(dir, tensors(), null, HfWeights.DEFAULT_MAX_SHARD_BYTES);
        assertEquals(List.of(HfWeights.SINGLE_FILE), listing(dir));
        HfWeights.write(dir, tensors(), null, 128);                    // the single file would shadow the index
        assertFalse(Files.exists(dir.resolve(HfWeights.SINGLE_FILE)));
        try (HfWeights w = HfWeights.open(dir)) {
            assertEquals(2, w.files().size());
        }
    }

    /** An index written the way transformers' save_pretrained writes it (pretty JSON, metadata first). */
    @Test
    void readsAnIndexLaidOutAsTransformersWritesIt() throws IOException {
        Map<String, TensorData> in = tensors();
        Safetensors.write(dir.resolve("model-00001-of-00002.safetensors"),
                Map.of("model.layers.0.mlp.up_proj.weight", in.get("model.layers.0.mlp.up_proj.weight")),
                Map.of("format", "pt"));
        Map<String, TensorData> rest = new LinkedHashMap<>(in);
        rest.remove("model.layers.0.mlp.up_proj.weight");
        Safetensors.write(dir.resolve("model-00002-of-00002.safetensors"), rest, Map.of("format", "pt"));
        Files.writeString(dir.resolve(HfWeights.INDEX_FILE), """
                {
                  "metadata": {
                    "total_parameters": 48,
                    "total_size": 192
                  },
                  "weight_map": {
                    "model.layers.0.mlp.up_proj.weight": "model-00001-of-00002.safetensors",
                    "model.layers.1.mlp.up_proj.weight": "model-00002-of-00002.safetensors",
                    "model.layers.2.mlp.up_proj.weight": "model-00002-of-00002.safetensors"
                  }
                }
                """);
        try (HfWeights w = HfWeights.open(dir)) {
            assertEquals(3, w.names().size());
            assertArrayEquals(in.get("model.layers.1.mlp.up_proj.weight").floats(),
                    w.floats("model.layers.1.mlp.up_proj.weight"));
        }
    }

    private String refusal(String indexJson) throws IOException {
        HfWeights.write(dir, tensors(), null, 128);
        Files.writeString(dir.resolve(HfWeights.INDEX_FILE), indexJson, StandardCharsets.UTF_8);
        return assertThrows(SafetensorsException.class, () -> HfWeights.open(dir).close()).getMessage();
    }

    private static final String S1 = "model-00001-of-00002.safetensors";
    private static final String S2 = "model-00002-of-00002.safetensors";
    private static final String T0 = "model.layers.0.mlp.up_proj.weight";
    private static final String T1 = "model.layers.1.mlp.up_proj.weight";
    private static final String T2 = "model.layers.2.mlp.up_proj.weight";

    private static String index(String t0, String t1, String t2) {
        return "{\"weight_map\": {\"" + T0 + "\": \"" + t0 + "\", \"" + T1 + "\": \"" + t1 + "\", \"" + T2
                + "\": \"" + t2 + "\"}}";
    }

    @Test
    void refusesIndexesThatDisagreeWithTheShards() throws IOException {
        String m = refusal(index(S1, S1, S1));
        assertTrue(m.contains(T2) && m.contains("does not hold it"), m);

        m = refusal("{\"weight_map\": {\"" + T0 + "\": \"" + S1 + "\", \"" + T2 + "\": \"" + S2 + "\"}}");
        assertTrue(m.contains(S1) && m.contains(T1) && m.contains("not listed"), m);

        m = refusal(index(S1, S1, "model-00003-of-00003.safetensors"));
        assertTrue(m.contains("model-00003-of-00003.safetensors") && m.contains("missing"), m);

        m = refusal(index(S1, "../" + S1, S2));
        assertTrue(m.contains("plain .safetensors file name"), m);

        m = refusal("{\"weight_map\": {}}");
        assertTrue(m.contains("non-empty object"), m);

        m = refusal("{\"weight_map\": {\"" + T0 + "\": 3}}");
        assertTrue(m.contains(T0) && m.contains("shard file name"), m);

        m = refusal("{\"weight_map\": {\"a\": \"" + S1 + "\", \"a\": \"" + S2 + "\"}}");
        assertTrue(m.contains("not valid JSON") && m.contains("Duplicate"), m);

        m = refusal("[1, 2]");
        assertTrue(m.contains(HfWeights.INDEX_FILE) && m.contains("JSON object"), m);
    }

    @Test
    void aMissingCheckpointNamesBothLayoutsAndThePickleRemedy() throws IOException {
        String m = assertThrows(SafetensorsException.class, () -> HfWeights.open(dir)).getMessage();
        assertTrue(m.contains(HfWeights.SINGLE_FILE) && m.contains(HfWeights.INDEX_FILE), m);
        assertFalse(HfWeights.present(dir));
        Files.writeString(dir.resolve("pytorch_model.bin"), "pickle");
        m = assertThrows(SafetensorsException.class, () -> HfWeights.open(dir)).getMessage();
        assertTrue(m.contains("safe_serialization=True"), m);
    }

    @Test
    void aCorruptShardIsNamed() throws IOException {
        HfWeights.write(dir, tensors(), null, 128);
        Files.write(dir.resolve(S2), new byte[] {1, 2, 3});
        String m = assertThrows(SafetensorsException.class, () -> HfWeights.open(dir)).getMessage();
        assertTrue(m.contains(S2), m);
    }
}
