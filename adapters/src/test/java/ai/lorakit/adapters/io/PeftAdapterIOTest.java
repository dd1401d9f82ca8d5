package ai.lorakit.adapters.io;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Consumer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves PEFT adapter IO (VARIANTS.md section 9) on three layers (q_proj [in 8, out 6], v_proj [8, 4], a fifo
 * c_fc [5, 7]) with random W and non-identity adapters: save then load into fresh layers gives identical
 * parameters and outputs for LoRA, DoRA, VeRA and AdaLoRA (also pruned by a rank_pattern); the file holds
 * exactly PEFT's keys and shapes and adapter_config.json PEFT's keys; and every bad directory (missing or extra
 * key, wrong shape or dtype, NaN, truncated file, unknown peft_type, unsupported options, missing files) is
 * refused with a message naming the problem while the target layers stay unchanged.
 */
class PeftAdapterIOTest {

    enum Kind { LORA, DORA, VERA, ADALORA }

    private static final String Q = "model.layers.0.self_attn.q_proj";
    private static final String V = "model.layers.0.self_attn.v_proj";
    private static final String FC = "model.layers.1.mlp.c_fc";
    private static final String[] NAMES = {Q, V, FC};
    private static final int[] IN = {8, 8, 5};
    private static final int[] OUT = {6, 4, 7};
    private static final boolean[] FIFO = {false, false, true};
    private static final int R = 3;
    private static final int IN_MAX = 8;
    private static final int OUT_MAX = 7;

    @TempDir
    Path tmp;

    private final Backend be = new CpuBackend();
    private final List<AutoCloseable> open = new ArrayList<>();

    @AfterEach
    void closeAll() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        be.close();
    }

    // ---------------------------------------------------------------- fixture

    private static AdapterConfig config(Kind k) {
        List<String> targets = List.of("q_proj", "v_proj", "c_fc");
        return switch (k) {
            case LORA -> new LoraConfig(R, 6f, 0.1f, false, LoraConfig.Init.KAIMING, false, targets, Map.of(), Map.of());
            case DORA -> new LoraConfig(R, 5f, 0f, true, LoraConfig.Init.GAUSSIAN, true, targets, Map.of(), Map.of());
            case VERA -> new VeraConfig(R, 11L, true, 0.1f, 0f, targets);
            case ADALORA -> new AdaLoraConfig(R, 2, 1, 2, 1, 0.85f, 0.85f, 0.5f, 10, 4f, 0f, targets, null);
        };
    }

    /** Base weights (shared by original and fresh layers), layers, and VeRA projections. */
    private final class Model {
        final List<Tensor> w = new ArrayList<>();
        final List<Tensor> bias = new ArrayList<>();

        Model(long seed) {
            Random rnd = new Random(seed);
            for (int i = 0; i < NAMES.length; i++) {
                int[] shape = FIFO[i] ? new int[]{IN[i], OUT[i]} : new int[]{OUT[i], IN[i]};
                w.add(track(be.upload(uniform(rnd, IN[i] * OUT[i], 0.5f), DType.F32, shape)));
                bias.add(track(be.upload(uniform(rnd, OUT[i], 0.5f), DType.F32, OUT[i])));
            }
        }

        VeraProjections projections(AdapterConfig c, long key) {
            if (!(c instanceof VeraConfig v)) {
                return null;
            }
            VeraConfig vk = new VeraConfig(v.r(), key, true, v.dInitial(), v.dropout(), v.targetModules());
            return track(VeraProjections.create(be, vk, IN_MAX, OUT_MAX));
        }

        List<AdaptedLinear> layers(AdapterConfig c, VeraProjections shared, long seed) {
            List<AdaptedLinear> out = new ArrayList<>();
            for (int i = 0; i < NAMES.length; i++) {
                out.add(track(AdaptedLinear.create(NAMES[i], w.get(i), bias.get(i), FIFO[i], c, shared, seed + i)));
            }
            return out;
        }
    }

    private <T extends AutoCloseable> T track(T t) {
        open.add(t);
        return t;
    }

    private static float[] uniform(Random rnd, int n, float bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return v;
    }

    /** Random non-identity values for every adapter parameter (DoRA's m positive). */
    private void randomize(List<AdaptedLinear> layers, long seed) {
        Random rnd = new Random(seed);
        for (AdaptedLinear l : layers) {
            for (Parameter p : l.parameters()) {
                float[] v = uniform(rnd, (int) p.value().numel(), 0.5f);
                if (p.role() == Parameter.Role.MAGNITUDE) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] = 1f + v[i];
                    }
                }
                set(p.value(), v);
            }
        }
    }

    private void set(Tensor t, float[] v) {
        try (Tensor s = be.upload(v, DType.F32, t.shape())) {
            be.copy(s, t);
        }
    }

    /** Every adapter parameter (and the shared projections) by name. */
    private Map<String, float[]> snapshot(List<AdaptedLinear> layers, VeraProjections shared) {
        Map<String, float[]> m = new TreeMap<>();
        for (AdaptedLinear l : layers) {
            for (Parameter p : l.parameters()) {
                m.put(p.name(), be.download(p.value()));
            }
        }
        if (shared != null) {
            m.put("vera_A", be.download(shared.a()));
            m.put("vera_B", be.download(shared.b()));
        }
        return m;
    }

    private static void assertSameState(Map<String, float[]> want, Map<String, float[]> got) {
        assertEquals(want.keySet(), got.keySet());
        want.forEach((k, v) -> assertArrayEquals(v, got.get(k), "parameter " + k));
    }

    private List<float[]> outputs(List<AdaptedLinear> layers, long seed) {
        Random rnd = new Random(seed);
        List<float[]> ys = new ArrayList<>();
        for (int i = 0; i < layers.size(); i++) {
            try (Tensor x = be.upload(uniform(rnd, 5 * IN[i], 1f), DType.F32, 5, IN[i]);
                 Tensor y = ai.lorakit.adapters.Fresh.forward(layers.get(i), x)) {
                ys.add(be.download(y));
            }
        }
        return ys;
    }

    /** A saved adapter of kind k in dir, its layers, and the layers' state. */
    private record Saved(Model model, AdapterConfig config, List<AdaptedLinear> layers, VeraProjections shared,
                         Path dir) {
    }

    private Saved saved(Kind k) throws IOException {
        Model model = new Model(1);
        AdapterConfig c = config(k);
        VeraProjections shared = model.projections(c, 11L);
        List<AdaptedLinear> layers = model.layers(c, shared, 100);
        randomize(layers, 7);
        Path dir = tmp.resolve(k.name().toLowerCase()).resolve("adapter");
        PeftAdapterIO.save(dir, c, layers, shared, "openai-community/gpt2");
        return new Saved(model, c, layers, shared, dir);
    }

    /** Fresh layers for the same base model (other seeds, other VeRA projections). */
    private record Fresh(List<AdaptedLinear> layers, VeraProjections shared) {
    }

    private Fresh fresh(Saved s, AdapterConfig c) {
        VeraProjections shared = s.model.projections(c, 99L);
        return new Fresh(s.model.layers(c, shared, 500), shared);
    }

    // ---------------------------------------------------------------- round trips

    @ParameterizedTest
    @EnumSource(Kind.class)
    void roundTripGivesIdenticalParametersAndOutputs(Kind k) throws IOException {
        Saved s = saved(k);
        AdapterConfig read = PeftAdapterIO.readConfig(s.dir);
        assertEquals(s.config, read, "config survives adapter_config.json");
        Fresh f = fresh(s, read);
        List<float[]> want = outputs(s.layers, 3);
        List<float[]> before = outputs(f.layers, 3);
        assertFalse(Arrays.equals(want.get(0), before.get(0)), "fresh layers differ before loading");
        AdapterConfig loaded = PeftAdapterIO.load(s.dir, f.layers, f.shared);
        assertEquals(s.config, loaded);
        assertSameState(snapshot(s.layers, s.shared), snapshot(f.layers, f.shared));
        List<float[]> got = outputs(f.layers, 3);
        for (int i = 0; i < want.size(); i++) {
            Tolerance.Result r = Tolerance.F32.compare(k + " " + NAMES[i] + " output after load", got.get(i), want.get(i));
            assertTrue(r.ok(), r.describe());
        }
    }

    @ParameterizedTest
    @EnumSource(Kind.class)
    void fileHoldsExactlyPeftKeysAndShapes(Kind k) throws IOException {
        Saved s = saved(k);
        Map<String, List<Long>> want = new TreeMap<>();
        for (int i = 0; i < NAMES.length; i++) {
            String p = "base_model.model." + NAMES[i];
            long in = IN[i];
            long out = OUT[i];
            switch (k) {
                case LORA, DORA -> {
                    want.put(p + ".lora_A.weight", List.of((long) R, in));
                    want.put(p + ".lora_B.weight", List.of(out, (long) R));
                    if (k == Kind.DORA) {
                        want.put(p + ".lora_magnitude_vector", List.of(out));
                    }
                }
                case VERA -> {
                    want.put(p + ".vera_lambda_b", List.of(out));
                    want.put(p + ".vera_lambda_d", List.of((long) R));
                }
                case ADALORA -> {
                    want.put(p + ".lora_A", List.of((long) R, in));
                    want.put(p + ".lora_B", List.of(out, (long) R));
                    want.put(p + ".lora_E", List.of((long) R, 1L));
                }
            }
        }
        if (k == Kind.VERA) {
            want.put("base_model.vera_A", List.of((long) R, (long) IN_MAX));
            want.put("base_model.vera_B", List.of((long) OUT_MAX, (long) R));
        }
        try (SafetensorsFile sf = SafetensorsFile.open(s.dir.resolve("adapter_model.safetensors"))) {
            assertEquals(Map.of("format", "pt"), sf.metadata());
            Map<String, List<Long>> got = new TreeMap<>();
            for (String n : sf.names()) {
                assertEquals(SafeDType.F32, sf.info(n).dtype(), n);
                got.put(n, Arrays.stream(sf.info(n).shape()).boxed().toList());
            }
            assertEquals(want, got);
            // values: lora_A of q_proj is the layer's A
            String a = switch (k) {
                case LORA, DORA -> "base_model.model." + Q + ".lora_A.weight";
                case VERA -> "base_model.model." + Q + ".vera_lambda_d";
                case ADALORA -> "base_model.model." + Q + ".lora_A";
            };
            Parameter.Role role = k == Kind.VERA ? Parameter.Role.VERA_LAMBDA_D : Parameter.Role.LORA_A;
            assertArrayEquals(be.download(s.layers.get(0).parameter(role).value()), sf.floats(a));
        }
        assertEquals(List.of("adapter_config.json", "adapter_model.safetensors"), list(s.dir));
    }

    private static List<String> list(Path dir) throws IOException {
        try (var st = Files.list(dir)) {
            return st.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void loraConfigJsonIsPeftsLayout() throws IOException {
        Saved s = saved(Kind.DORA);
        String text = Files.readString(s.dir.resolve("adapter_config.json"));
        JsonNode j = new ObjectMapper().readTree(text);
        assertEquals("LORA", j.get("peft_type").textValue());
        assertEquals("CAUSAL_LM", j.get("task_type").textValue());
        assertEquals(R, j.get("r").intValue());
        assertEquals(5, j.get("lora_alpha").intValue());
        assertTrue(j.get("lora_alpha").isIntegralNumber(), "integral alpha written as 5, not 5.0");
        assertTrue(j.get("use_dora").booleanValue());
        assertTrue(j.get("use_rslora").booleanValue());
        assertTrue(j.get("inference_mode").booleanValue());
        assertTrue(j.get("fan_in_fan_out").booleanValue(), "c_fc is a fifo layer");
        assertEquals("gaussian", j.get("init_lora_weights").textValue());
        assertEquals("none", j.get("bias").textValue());
        assertFalse(j.get("lora_bias").booleanValue());
        assertEquals("openai-community/gpt2", j.get("base_model_name_or_path").textValue());
        assertEquals("megatron.core", j.get("megatron_core").textValue());
        assertTrue(j.get("rank_pattern").isObject() && j.get("rank_pattern").isEmpty());
        assertTrue(j.get("loftq_config").isObject() && j.get("loftq_config").isEmpty());
        assertTrue(j.get("modules_to_save").isNull() && j.get("layers_to_transform").isNull()
                && j.get("trainable_token_indices").isNull() && j.get("auto_mapping").isNull());
        assertEquals(List.of("q_proj", "v_proj", "c_fc"), strings(j.get("target_modules")));
        // json.dumps(indent=2, sort_keys=True): sorted keys, two-space indent, "key": value
        List<String> keys = new ArrayList<>();
        j.fieldNames().forEachRemaining(keys::add);
        assertEquals(keys.stream().sorted().toList(), keys);
        assertTrue(text.startsWith("{\n  \"alora_invocation_tokens\": null,\n  \"alpha_pattern\": {},\n"), text);
        assertTrue(text.contains("\n  \"target_modules\": [\n    \"q_proj\",\n    \"v_proj\",\n    \"c_fc\"\n  ],\n"), text);
        assertTrue(text.contains("\n  \"lora_dropout\": 0.0,\n"), text);
        assertTrue(text.endsWith("\n}"), text);
    }

    @Test
    void veraAndAdaLoraConfigJsonHaveTheirKeys() throws IOException {
        JsonNode v = new ObjectMapper().readTree(saved(Kind.VERA).dir.resolve("adapter_config.json").toFile());
        assertEquals("VERA", v.get("peft_type").textValue());
        assertEquals(R, v.get("r").intValue());
        assertEquals(11, v.get("projection_prng_key").intValue());
        assertTrue(v.get("save_projection").booleanValue());
        assertEquals(0.1, v.get("d_initial").doubleValue(), 1e-9);
        assertEquals(0.0, v.get("vera_dropout").doubleValue());
        assertNull(v.get("lora_alpha"));
        JsonNode a = new ObjectMapper().readTree(saved(Kind.ADALORA).dir.resolve("adapter_config.json").toFile());
        assertEquals("ADALORA", a.get("peft_type").textValue());
        assertEquals(R, a.get("init_r").intValue());
        assertEquals(2, a.get("target_r").intValue());
        assertEquals(1, a.get("tinit").intValue());
        assertEquals(2, a.get("tfinal").intValue());
        assertEquals(1, a.get("deltaT").intValue());
        assertEquals(0.85, a.get("beta1").doubleValue(), 1e-7);
        assertEquals(0.5, a.get("orth_reg_weight").doubleValue());
        assertEquals(10, a.get("total_step").intValue());
        assertEquals(4, a.get("lora_alpha").intValue());
        assertTrue(a.get("rank_pattern").isNull());
        assertFalse(a.get("use_dora").booleanValue());
    }

    /** AdaLoRA after rank allocation: the file keeps the kept triplets only; loads into pruned or full layers. */
    @Test
    void prunedAdaLoraRoundTrip() throws IOException {
        Model model = new Model(2);
        AdaLoraConfig full = (AdaLoraConfig) config(Kind.ADALORA);
        List<AdaptedLinear> layers = model.layers(full, null, 10);
        randomize(layers, 8);
        // the allocator zeroed E of pruned triplet 1 of q_proj
        Parameter e = layers.get(0).parameter(Parameter.Role.LORA_E);
        float[] ev = be.download(e.value());
        ev[1] = 0f;
        set(e.value(), ev);
        Map<String, boolean[]> rp = new LinkedHashMap<>();
        rp.put(Q + ".lora_E", new boolean[]{true, false, true});
        AdaLoraConfig pruned = new AdaLoraConfig(full.initR(), full.targetR(), full.tinit(), full.tfinal(), full.deltaT(),
                full.beta1(), full.beta2(), full.orthRegWeight(), full.totalStep(), full.alpha(), full.dropout(),
                full.targetModules(), rp);
        Path dir = tmp.resolve("pruned");
        PeftAdapterIO.save(dir, pruned, layers, null, null);
        try (SafetensorsFile sf = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            assertArrayEquals(new long[]{2, IN[0]}, sf.info("base_model.model." + Q + ".lora_A").shape());
            assertArrayEquals(new long[]{OUT[0], 2}, sf.info("base_model.model." + Q + ".lora_B").shape());
            assertArrayEquals(new long[]{2, 1}, sf.info("base_model.model." + Q + ".lora_E").shape());
            assertArrayEquals(new long[]{R, IN[1]}, sf.info("base_model.model." + V + ".lora_A").shape());
            float[] a = be.download(layers.get(0).parameter(Parameter.Role.LORA_A).value());
            float[] a2 = sf.floats("base_model.model." + Q + ".lora_A");
            assertArrayEquals(Arrays.copyOfRange(a, 2 * IN[0], 3 * IN[0]), Arrays.copyOfRange(a2, IN[0], 2 * IN[0]));
        }
        AdaLoraConfig read = (AdaLoraConfig) PeftAdapterIO.readConfig(dir);
        assertArrayEquals(new boolean[]{true, false, true}, read.rankPattern().get(Q + ".lora_E"));
        JsonNode j = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals("[true,false,true]", j.get("rank_pattern").get(Q + ".lora_E").toString());
        List<float[]> want = outputs(layers, 4);
        // (a) layers built from the file's config (q_proj physically at rank 2), (b) full-rank layers
        for (AdaLoraConfig c : List.of(read, full)) {
            List<AdaptedLinear> f = model.layers(c, null, 900);
            PeftAdapterIO.load(dir, f, null);
            List<float[]> got = outputs(f, 4);
            for (int i = 0; i < want.size(); i++) {
                Tolerance.Result r = Tolerance.F32.compare("pruned AdaLoRA " + NAMES[i], got.get(i), want.get(i));
                assertTrue(r.ok(), r.describe());
            }
        }
    }

    @Test
    void halfPrecisionFilesAreAccepted() throws IOException {
        Saved s = saved(Kind.LORA);
        Path w = s.dir.resolve("adapter_model.safetensors");
        Map<String, TensorData> t = readAll(w);
        Map<String, TensorData> half = new TreeMap<>();
        boolean bf = true;
        for (Map.Entry<String, TensorData> e : t.entrySet()) {
            float[] v = e.getValue().floats();
            half.put(e.getKey(), bf ? TensorData.bf16(v, e.getValue().shape()) : TensorData.f16(v, e.getValue().shape()));
            bf = !bf;
        }
        Safetensors.write(w, half, Map.of("format", "pt"));
        Fresh f = fresh(s, s.config);
        PeftAdapterIO.load(s.dir, f.layers, null);
        for (AdaptedLinear l : f.layers) {
            for (Parameter p : l.parameters()) {
                String key = PeftAdapterIO.key(l.name(), p.role(), s.config);
                assertArrayEquals(half.get(key).floats(), be.download(p.value()), key);
            }
        }
    }

    @Test
    void unknownConfigKeysAreIgnored() throws IOException {
        Saved s = saved(Kind.LORA);
        editConfig(s.dir, j -> {
            j.put("some_future_option", "x");
            j.putObject("another_config").put("a", 1);
            j.put("peft_version", "0.99.0");
        });
        assertEquals(s.config, PeftAdapterIO.readConfig(s.dir));
        Fresh f = fresh(s, s.config);
        PeftAdapterIO.load(s.dir, f.layers, null);
        assertSameState(snapshot(s.layers, null), snapshot(f.layers, null));
    }

    // ---------------------------------------------------------------- bad directories

    private static Map<String, TensorData> readAll(Path file) throws IOException {
        Map<String, TensorData> m = new LinkedHashMap<>();
        try (SafetensorsFile sf = SafetensorsFile.open(file)) {
            for (String n : sf.names()) {
                ByteBuffer b = sf.bytes(n);
                byte[] d = new byte[b.remaining()];
                b.get(d);
                m.put(n, new TensorData(sf.info(n).dtype(), sf.info(n).shape(), d));
            }
        }
        return m;
    }

    private static void editWeights(Path dir, Consumer<Map<String, TensorData>> edit) throws IOException {
        Path w = dir.resolve("adapter_model.safetensors");
        Map<String, TensorData> m = readAll(w);
        edit.accept(m);
        Safetensors.write(w, m, Map.of("format", "pt"));
    }

    private static void editConfig(Path dir, Consumer<ObjectNode> edit) throws IOException {
        Path c = dir.resolve("adapter_config.json");
        ObjectMapper om = new ObjectMapper();
        ObjectNode j = (ObjectNode) om.readTree(c.toFile());
        edit.accept(j);
        Files.writeString(c, om.writerWithDefaultPrettyPrinter().writeValueAsString(j));
    }

    /** Loading s.dir into fresh layers fails with all fragments in the message and leaves the layers untouched. */
    private <E extends Exception> E assertLoadRejected(Saved s, Class<E> type, String... fragments) {
        Fresh f = fresh(s, s.config);
        randomize(f.layers, 12345);
        Map<String, float[]> before = snapshot(f.layers, f.shared);
        E e = assertThrows(type, () -> PeftAdapterIO.load(s.dir, f.layers, f.shared));
        for (String frag : fragments) {
            assertTrue(e.getMessage().contains(frag), "message should contain <" + frag + ">: " + e.getMessage());
        }
        assertSameState(before, snapshot(f.layers, f.shared));
        return e;
    }

    @Test
    void missingKeyIsRejected() throws IOException {
        Saved s = saved(Kind.LORA);
        String key = "base_model.model." + FC + ".lora_B.weight";
        editWeights(s.dir, m -> m.remove(key));
        assertLoadRejected(s, AdapterFormatException.class, "missing key " + key, "[7, 3]", "nothing was changed");
    }

    @Test
    void missingSharedVeraProjectionIsRejected() throws IOException {
        Saved s = saved(Kind.VERA);
        editWeights(s.dir, m -> m.remove("base_model.vera_B"));
        assertLoadRejected(s, AdapterFormatException.class, "missing key base_model.vera_B", "[7, 3]");
    }

    @Test
    void unexpectedKeyIsRejected() throws IOException {
        Saved s = saved(Kind.DORA);
        editWeights(s.dir, m -> m.put("base_model.model.model.layers.9.mlp.c_proj.lora_A.weight",
                TensorData.f32(new float[6], 3, 2)));
        assertLoadRejected(s, AdapterFormatException.class,
                "unexpected key base_model.model.model.layers.9.mlp.c_proj.lora_A.weight F32[3, 2]");
    }

    @Test
    void wrongRankIsRejected() throws IOException {
        Saved s = saved(Kind.LORA);
        String key = "base_model.model." + FC + ".lora_A.weight";
        editWeights(s.dir, m -> m.put(key, TensorData.f32(new float[4 * 5], 4, 5)));
        assertLoadRejected(s, AdapterFormatException.class, key, "expected shape [3, 5], found [4, 5]", "rank 3 vs 4");
    }

    @Test
    void wrongMagnitudeShapeIsRejected() throws IOException {
        Saved s = saved(Kind.DORA);
        String key = "base_model.model." + FC + ".lora_magnitude_vector";
        editWeights(s.dir, m -> m.put(key, TensorData.f32(new float[6], 6)));
        assertLoadRejected(s, AdapterFormatException.class, key, "expected shape [7], found [6]");
    }

    @Test
    void wrongDtypeIsRejected() throws IOException {
        Saved s = saved(Kind.ADALORA);
        String key = "base_model.model." + FC + ".lora_E";
        editWeights(s.dir, m -> m.put(key, TensorData.i32(new int[3], 3, 1)));
        assertLoadRejected(s, AdapterFormatException.class, key, "dtype I32", "expected F32");
    }

    @Test
    void nanTensorIsRejected() throws IOException {
        Saved s = saved(Kind.VERA);
        String key = "base_model.model." + FC + ".vera_lambda_b";
        editWeights(s.dir, m -> {
            float[] v = m.get(key).floats();
            v[4] = Float.NaN;
            m.put(key, TensorData.f32(v, 7));
        });
        assertLoadRejected(s, AdapterFormatException.class, key, "element 4 is NaN");
    }

    @Test
    void truncatedSafetensorsIsRejected() throws IOException {
        Saved s = saved(Kind.LORA);
        Path w = s.dir.resolve("adapter_model.safetensors");
        byte[] all = Files.readAllBytes(w);
        Files.write(w, Arrays.copyOf(all, all.length - 10));
        assertLoadRejected(s, SafetensorsException.class, "offsets do not cover the data buffer exactly");
    }

    @Test
    void unknownPeftTypeIsRejected() throws IOException {
        Saved s = saved(Kind.LORA);
        editConfig(s.dir, j -> j.put("peft_type", "LOHA"));
        assertLoadRejected(s, AdapterFormatException.class, "peft_type = \"LOHA\"", "LORA (incl. DoRA), VERA or ADALORA");
    }

    @Test
    void configThatDisagreesWithTheLayersIsRejected() throws IOException {
        Saved s = saved(Kind.LORA);
        editConfig(s.dir, j -> j.put("lora_alpha", 12));
        assertLoadRejected(s, AdapterFormatException.class, "scaling s=2.0", "gives s=4.0");
        Saved d = saved(Kind.DORA);
        editConfig(d.dir, j -> j.put("use_dora", false));
        assertLoadRejected(d, AdapterFormatException.class, "is LORA (DoRA) but the file is LORA");
    }

    @Test
    void unsupportedOptionsAreNamed() throws IOException {
        Object[][] cases = {
                {Kind.LORA, "lora_bias", true, "lora_bias = true"},
                {Kind.LORA, "init_lora_weights", "pissa", "init_lora_weights = \"pissa\"", "gaussian"},
                {Kind.LORA, "target_modules", "all-linear", "target_modules = \"all-linear\"", "list"},
                {Kind.LORA, "bias", "all", "bias = \"all\"", "\"none\""},
                {Kind.LORA, "r", "eight", "r = \"eight\"", "an integer"},
                {Kind.LORA, "r", 0, "invalid configuration", "r must be > 0"},
                {Kind.VERA, "save_projection", false, "save_projection = false", "vera_A"},
                {Kind.ADALORA, "use_dora", true, "use_dora = true"},
                {Kind.ADALORA, "total_step", null, "total_step = null"},
        };
        for (Object[] c : cases) {
            Saved s = saved((Kind) c[0]);
            editConfig(s.dir, j -> j.putPOJO((String) c[1], c[2]));
            AdapterFormatException e = assertThrows(AdapterFormatException.class, () -> PeftAdapterIO.readConfig(s.dir));
            for (int i = 3; i < c.length; i++) {
                assertTrue(e.getMessage().contains((String) c[i]), c[1] + ": " + e.getMessage());
            }
            assertTrue(e.getMessage().contains("adapter_config.json"), e.getMessage());
            assertLoadRejected(s, AdapterFormatException.class, (String) c[3]);
        }
    }

    @Test
    void missingFilesAreNamed() throws IOException {
        Saved s = saved(Kind.LORA);
        Files.move(s.dir.resolve("adapter_model.safetensors"), s.dir.resolve("adapter_model.bin"));
        assertLoadRejected(s, AdapterFormatException.class, "missing adapter_model.safetensors",
                "adapter_model.bin", "convert it to safetensors");
        Files.delete(s.dir.resolve("adapter_model.bin"));
        assertLoadRejected(s, AdapterFormatException.class, "missing adapter_model.safetensors");
        Files.delete(s.dir.resolve("adapter_config.json"));
        assertLoadRejected(s, AdapterFormatException.class, "missing adapter_config.json");
        AdapterFormatException e = assertThrows(AdapterFormatException.class,
                () -> PeftAdapterIO.readConfig(tmp.resolve("nowhere")));
        assertTrue(e.getMessage().contains("not a directory"), e.getMessage());
    }

    @Test
    void saveRefusesInconsistentInput() throws IOException {
        Saved s = saved(Kind.LORA);
        byte[] config = Files.readAllBytes(s.dir.resolve("adapter_config.json"));
        byte[] weights = Files.readAllBytes(s.dir.resolve("adapter_model.safetensors"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> PeftAdapterIO.save(s.dir, config(Kind.DORA), s.layers, null, null));
        assertTrue(e.getMessage().contains("is LORA but the config is LORA (DoRA)"), e.getMessage());
        Parameter a = s.layers.get(1).parameter(Parameter.Role.LORA_A);
        float[] v = be.download(a.value());
        v[0] = Float.POSITIVE_INFINITY;
        set(a.value(), v);
        e = assertThrows(IllegalArgumentException.class, () -> PeftAdapterIO.save(s.dir, s.config, s.layers, null, null));
        assertTrue(e.getMessage().contains("base_model.model." + V + ".lora_A.weight element 0 is Infinity"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> PeftAdapterIO.save(s.dir, s.config, List.of(s.layers.get(0), s.layers.get(0)), null, null));
        assertTrue(e.getMessage().contains("two modules are named " + Q), e.getMessage());
        // the directory still holds the previous adapter, byte for byte
        assertArrayEquals(config, Files.readAllBytes(s.dir.resolve("adapter_config.json")));
        assertArrayEquals(weights, Files.readAllBytes(s.dir.resolve("adapter_model.safetensors")));
        assertEquals(List.of("adapter_config.json", "adapter_model.safetensors"), list(s.dir));
    }

    @Test
    void loraPatternsAndRsloraRoundTripThroughConfig() throws IOException {
        LoraConfig c = new LoraConfig(4, 8f, 0.05f, true, LoraConfig.Init.NONE, false, List.of("q_proj", "v_proj"),
                Map.of("v_proj", 2), Map.of("q_proj", 2.5f));
        Path dir = tmp.resolve("patterns");
        Model model = new Model(3);
        List<AdaptedLinear> layers = model.layers(c, null, 1).subList(0, 2);
        PeftAdapterIO.save(dir, c, layers, null, null);
        JsonNode j = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertEquals(2, j.get("rank_pattern").get("v_proj").intValue());
        assertEquals(2.5, j.get("alpha_pattern").get("q_proj").doubleValue());
        assertEquals("0.05", j.get("lora_dropout").asText());
        assertFalse(j.get("init_lora_weights").booleanValue());
        AdapterConfig read = PeftAdapterIO.readConfig(dir);
        assertInstanceOf(LoraConfig.class, read);
        assertEquals(c, read);
        try (SafetensorsFile sf = SafetensorsFile.open(dir.resolve("adapter_model.safetensors"))) {
            assertArrayEquals(new long[]{2, IN[1]}, sf.info("base_model.model." + V + ".lora_A.weight").shape());
        }
        List<AdaptedLinear> f = model.layers(read, null, 77).subList(0, 2);
        assertNotEquals(Arrays.toString(be.download(f.get(0).parameter(Parameter.Role.LORA_B).value())),
                Arrays.toString(be.download(layers.get(0).parameter(Parameter.Role.LORA_B).value())));
        PeftAdapterIO.load(dir, f, null);
        assertSameState(snapshot(layers, null), snapshot(f, null));
    }

    private static List<String> strings(JsonNode a) {
        List<String> l = new ArrayList<>();
        for (Iterator<JsonNode> it = a.elements(); it.hasNext(); ) {
            l.add(it.next().textValue());
        }
        return l;
    }
}
