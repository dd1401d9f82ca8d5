package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.io.SafeDType;
import ai.lorakit.adapters.io.Safetensors;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.decoder.DecoderModel;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves DecoderModel's behaviour beyond the gradients: adapters are the identity at init and merge to the same
 * function; HF checkpoints round-trip (F32 exactly, BF16 closely), prefixed and bare keys load, bad checkpoints
 * fail with the key and shapes named; target-module selection (suffix, exact, regex, all-linear, no match);
 * full fine-tuning changes every tensor while LoRA training leaves every base tensor bit-identical; the model is
 * causal; the step API validates its input and accumulates gradients linearly.
 */
class Gpt2ModelTest {

    /** Small but not degenerate: V=19, P=16, C=16, L=2, H=4. */
    private static final Gpt2Config CFG = Gpt2Config.of(19, 16, 16, 2, 4);

    private Backend be;
    private DecoderModel model;

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        model = DecoderModel.random(CFG, be, 42);
        // break symmetry of biases and LayerNorms too (random() sets them to 0 / 1)
        Random rnd = new Random(3);
        for (Parameter p : model.baseParameters()) {
            if (p.value().rank() == 1) {
                float[] v = Gpt2GradientCheckTest.uniform(rnd, (int) p.value().numel(), 0.1);
                if (p.name().endsWith(".weight")) {
                    for (int i = 0; i < v.length; i++) {
                        v[i] += 1f;
                    }
                }
                Gpt2GradientCheckTest.set(be, p.value(), v);
            }
        }
    }

    @AfterEach
    void tearDown() {
        model.close();
        be.close();
    }

    private static final int[] TOKENS = {3, 7, 1, 18, 0, 5, 5, 12, 9};

    private static int[][] windows(long seed, int b, int t) {
        Random rnd = new Random(seed);
        int[][] w = new int[b][t + 1];
        for (int[] row : w) {
            for (int j = 0; j < row.length; j++) {
                row[j] = rnd.nextInt(CFG.vocabSize());
            }
        }
        return w;
    }

    private static void close(String what, float[] got, float[] want, Tolerance tol) {
        Tolerance.Result r = tol.compare(what, got, want);
        assertTrue(r.ok(), r.describe());
    }

    // ---------------------------------------------------------------- adapters: identity and merge

    @Test
    void loraAndVeraAreTheIdentityAtInitAndDoraNearlySo() {
        float[] base = model.logits(TOKENS);
        model.attachAdapters(LoraConfig.of(4, 8f, "c_attn", "c_fc", "c_proj"), 1);
        assertArrayEquals(base, model.logits(TOKENS), "LoRA with B = 0 must not change the logits");
        model.detachAdapters();
        model.attachAdapters(VeraConfig.of(8, "all-linear"), 1);
        assertArrayEquals(base, model.logits(TOKENS), "VeRA with λb = 0 must not change the logits");
        model.detachAdapters();
        model.attachAdapters(AdaLoraConfig.of(100, "c_attn", "mlp.c_proj"), 1);
        assertArrayEquals(base, model.logits(TOKENS), "AdaLoRA with Λ = 0 must not change the logits");
        model.detachAdapters();
        model.attachAdapters(LoraConfig.of(4, 8f, "all-linear").withDora(true), 1);
        close("DoRA at init (m = ||W||)", model.logits(TOKENS), base, Tolerance.F32);
        model.detachAdapters();
        assertArrayEquals(base, model.logits(TOKENS), "detaching unmerged adapters restores the base model");
    }

    @Test
    void mergedLogitsEqualAdaptedLogitsAndUnmergeRestores() {
        float[] base = model.logits(TOKENS);
        for (var cfg : List.of(LoraConfig.of(4, 8f, "all-linear").withInit(LoraConfig.Init.NONE),
                LoraConfig.of(4, 8f, "c_attn", "mlp.c_proj").withInit(LoraConfig.Init.NONE).withDora(true))) {
            model.attachAdapters(cfg, 9);
            float[] adapted = model.logits(TOKENS);
            assertTrue(Tolerance.F32.compare("must differ", adapted, base).worstShare() > 10,
                    "a non-identity adapter changes the logits");
            model.adapters().merge();
            assertTrue(model.adaptedModules().stream().allMatch(AdaptedLinear::merged));
            close("merged vs adapted " + cfg, model.logits(TOKENS), adapted, new Tolerance(1e-4, 1e-4));
            model.adapters().unmerge();
            close("unmerged", model.logits(TOKENS), adapted, new Tolerance(1e-4, 1e-4));
            model.detachAdapters();
            close("base after unmerge + detach", model.logits(TOKENS), base, new Tolerance(1e-5, 1e-4));
        }
    }

    // ---------------------------------------------------------------- checkpoints

    @Test
    void saveHfThenLoadGivesIdenticalLogitsInF32AndCloseInBf16(@TempDir Path dir) throws IOException {
        float[] want = model.logits(TOKENS);
        model.saveHf(dir.resolve("f32"), DType.F32);
        try (DecoderModel back = DecoderModel.load(dir.resolve("f32"), be)) {
            assertEquals(CFG, back.config());
            assertArrayEquals(want, back.logits(TOKENS), "F32 round trip is exact");
        }
        model.saveHf(dir.resolve("bf16"), DType.BF16);
        try (SafetensorsFile f = Safetensors.open(dir.resolve("bf16").resolve("model.safetensors"))) {
            assertEquals(Gpt2Family.INSTANCE.shapes(CFG).keySet(), new java.util.HashSet<>(f.names()),
                    "HF GPT2LMHeadModel keys with the transformer. prefix and no lm_head.weight (tied)");
            assertEquals(SafeDType.BF16, f.info("transformer.h.1.mlp.c_fc.weight").dtype());
            assertTrue(f.info("transformer.h.1.mlp.c_fc.weight").hasShape(16, 64), "Conv1D weight stored [in,out]");
            assertEquals("pt", f.metadata().get("format"));
        }
        try (DecoderModel back = DecoderModel.load(dir.resolve("bf16"), be)) {
            close("BF16 round trip", back.logits(TOKENS), want, Tolerance.BF16);
        }
        String json = Files.readString(dir.resolve("bf16").resolve("config.json"));
        for (String s : List.of("\"model_type\" : \"gpt2\"", "\"GPT2LMHeadModel\"", "\"activation_function\" :"
                + " \"gelu_new\"", "\"n_ctx\" : 16", "\"n_positions\" : 16", "\"torch_dtype\" : \"bfloat16\"")) {
            assertTrue(json.contains(s), "config.json has " + s + ":\n" + json);
        }
    }

    /** Writes the model's tensors under the given keys (and extra ones) in the given dtype, plus config.json. */
    private Path writeCheckpoint(Path dir, Map<String, String> rename, Map<String, TensorData> extra, SafeDType dt)
            throws IOException {
        Map<String, TensorData> data = new LinkedHashMap<>();
        for (Parameter p : model.baseParameters()) {
            String key = rename.getOrDefault(p.name(), p.name());
            if (key == null || key.isEmpty()) {
                continue;
            }
            float[] v = be.download(p.value());
            long[] shape = Arrays.stream(p.value().shape()).asLongStream().toArray();
            data.put(key, switch (dt) {
                case F16 -> TensorData.f16(v, shape);
                case BF16 -> TensorData.bf16(v, shape);
                default -> TensorData.f32(v, shape);
            });
        }
        data.putAll(extra);
        Files.createDirectories(dir);
        Safetensors.write(dir.resolve("model.safetensors"), data, Map.of("format", "pt"));
        CFG.write(dir);
        return dir;
    }

    @Test
    void loadAcceptsBareKeysF16AndIgnoresLmHeadAndAttentionBuffers(@TempDir Path dir) throws IOException {
        float[] want = model.logits(TOKENS);
        Map<String, String> bare = new HashMap<>();
        for (Parameter p : model.baseParameters()) {
            bare.put(p.name(), p.name().substring("transformer.".length()));
        }
        Map<String, TensorData> extra = new LinkedHashMap<>();
        extra.put("lm_head.weight", TensorData.f32(new float[19 * 16], 19, 16));
        extra.put("h.0.attn.bias", TensorData.f32(new float[16 * 16], 1, 1, 16, 16));
        extra.put("h.1.attn.masked_bias", TensorData.f32(new float[] {-1e4f}));
        Path d = writeCheckpoint(dir.resolve("bare"), bare, extra, SafeDType.F16);
        try (DecoderModel back = DecoderModel.load(d, be)) {
            close("bare keys, F16", back.logits(TOKENS), want, Tolerance.F16);
        }
    }

    @Test
    void loadErrorsNameTheKeyAndShapes(@TempDir Path dir) throws IOException {
        Path missing = writeCheckpoint(dir.resolve("missing"), Map.of("transformer.h.1.ln_2.bias", ""), Map.of(),
                SafeDType.F32);
        var e1 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(missing, be));
        assertTrue(e1.getMessage().contains("missing tensor 'transformer.h.1.ln_2.bias'")
                && e1.getMessage().contains("[16]"), e1.getMessage());

        Path wrong = writeCheckpoint(dir.resolve("wrong"), Map.of("transformer.h.0.attn.c_attn.weight", ""),
                Map.of("transformer.h.0.attn.c_attn.weight", TensorData.f32(new float[48 * 16], 48, 16)),
                SafeDType.F32);
        var e2 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(wrong, be));
        assertTrue(e2.getMessage().contains("'transformer.h.0.attn.c_attn.weight' has shape [48, 16], expected [16, 48]"),
                e2.getMessage());

        Path extraLayer = writeCheckpoint(dir.resolve("extra"), Map.of(),
                Map.of("transformer.h.2.ln_1.weight", TensorData.f32(new float[16], 16)), SafeDType.F32);
        var e3 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(extraLayer, be));
        assertTrue(e3.getMessage().contains("unexpected tensors [transformer.h.2.ln_1.weight]"), e3.getMessage());

        Path badConfig = writeCheckpoint(dir.resolve("badcfg"), Map.of(), Map.of(), SafeDType.F32);
        Files.writeString(badConfig.resolve("config.json"), "{\"vocab_size\": 19, \"n_positions\": 16, \"n_embd\": 16,"
                + " \"n_layer\": 2, \"n_head\": 4, \"activation_function\": \"relu\"}", StandardCharsets.UTF_8);
        var e4 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(badConfig, be));
        assertTrue(e4.getMessage().contains("activation_function \"relu\" is not supported"), e4.getMessage());

        Files.writeString(badConfig.resolve("config.json"), "{\"vocab_size\": 19, \"n_positions\": 16,"
                + " \"n_layer\": 2, \"n_head\": 4}", StandardCharsets.UTF_8);
        var e5 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(badConfig, be));
        assertTrue(e5.getMessage().contains("missing required key \"n_embd\""), e5.getMessage());

        Path noWeights = dir.resolve("noweights");
        CFG.write(noWeights);
        var e6 = assertThrows(CheckpointFormatException.class, () -> DecoderModel.load(noWeights, be));
        assertTrue(e6.getMessage().contains("model.safetensors: missing"), e6.getMessage());
    }

    // ---------------------------------------------------------------- target modules

    private List<String> attachedNames(List<String> targets) {
        model.attachAdapters(new LoraConfig(2, 2f, 0f, false, LoraConfig.Init.KAIMING, false, targets, Map.of(),
                Map.of()), 1);
        try {
            return model.adaptedModules().stream().map(AdaptedLinear::name).toList();
        } finally {
            model.detachAdapters();
        }
    }

    @Test
    void targetModulesBySuffixExactRegexAndAllLinear() {
        assertEquals(List.of("transformer.h.0.attn.c_attn", "transformer.h.1.attn.c_attn"),
                attachedNames(List.of("c_attn")));
        assertEquals(List.of("transformer.h.0.attn.c_proj", "transformer.h.1.attn.c_proj"),
                attachedNames(List.of("attn.c_proj")), "a dotted suffix does not select mlp.c_proj");
        assertEquals(List.of("transformer.h.0.attn.c_proj", "transformer.h.0.mlp.c_proj",
                "transformer.h.1.attn.c_proj", "transformer.h.1.mlp.c_proj"), attachedNames(List.of("c_proj")));
        assertEquals(List.of("transformer.h.1.mlp.c_fc"), attachedNames(List.of("transformer.h.1.mlp.c_fc")));
        assertEquals(List.of("transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_fc"),
                attachedNames(List.of("re:.*\\.h\\.1\\..*c_(attn|fc)")));
        assertEquals(List.of("transformer.h.0.mlp.c_proj"),
                attachedNames(List.of("transformer\\.h\\.0\\.mlp\\.c_pro[j]")), "metacharacters make a regex");
        assertEquals(model.linearModuleNames(), attachedNames(List.of("all-linear")));
        assertEquals(8, model.linearModuleNames().size());
        var e = assertThrows(IllegalArgumentException.class, () -> attachedNames(List.of("c_attn", "q_proj")));
        assertTrue(e.getMessage().contains("[q_proj]") && e.getMessage().contains("transformer.h.0.attn.c_attn"),
                e.getMessage());
        var partial = assertThrows(IllegalArgumentException.class, () -> attachedNames(List.of("re:c_attn")));
        assertTrue(partial.getMessage().contains("match no module"), "a regex must match the whole name");
        assertTrue(model.adaptedModules().isEmpty(), "a failed attach leaves no adapter");
    }

    @Test
    void veraProjectionsAreSizedToTheLargestTargetedModule() {
        model.attachAdapters(VeraConfig.of(8, "c_attn", "c_fc"), 1);
        assertEquals(16, model.adapters().veraProjections().inMax());
        assertEquals(64, model.adapters().veraProjections().outMax(), "c_fc: 4C");
        assertTrue(model.parameters().stream().anyMatch(p -> p.role() == Parameter.Role.VERA_A && !p.trainable()));
        assertThrows(IllegalStateException.class, () -> model.attachAdapters(VeraConfig.of(8, "c_attn"), 1));
    }

    // ---------------------------------------------------------------- training

    private static Map<String, float[]> snapshot(Backend be, List<Parameter> ps) {
        Map<String, float[]> m = new LinkedHashMap<>();
        ps.forEach(p -> m.put(p.name(), be.download(p.value())));
        return m;
    }

    private void train(int steps) {
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults().withLr(1e-2f),
                model.parameters(), List.of())) {
            for (int s = 0; s < steps; s++) {
                opt.zeroGrad();
                double loss = model.trainStep(windows(s, 3, 7), 1f);
                assertTrue(Double.isFinite(loss) && loss > 0, "loss " + loss);
                opt.step();
            }
        }
    }

    @Test
    void fullFineTuneChangesEveryTensor() {
        Map<String, float[]> before = snapshot(be, model.baseParameters());
        model.setFullFineTune(true);
        assertTrue(model.fullFineTune());
        train(3);
        for (Parameter p : model.baseParameters()) {
            float[] now = be.download(p.value());
            float[] old = before.get(p.name());
            int changed = 0;
            for (int i = 0; i < now.length; i++) {
                changed += now[i] != old[i] ? 1 : 0;
            }
            assertTrue(changed > now.length / 2, p.name() + ": only " + changed + " of " + now.length + " changed");
        }
        model.setFullFineTune(false);
        assertTrue(model.baseParameters().stream().allMatch(p -> !p.trainable() && p.grad() == null));
    }

    @Test
    void loraTrainingLeavesEveryBaseTensorBitIdentical() {
        Map<String, float[]> before = snapshot(be, model.baseParameters());
        model.attachAdapters(LoraConfig.of(4, 8f, "c_attn", "c_fc"), 7);
        Map<String, float[]> adapterBefore = snapshot(be, model.parameters().stream()
                .filter(Parameter::trainable).toList());
        assertEquals(8, adapterBefore.size(), "A and B of 4 modules");
        train(3);
        for (Parameter p : model.baseParameters()) {
            assertArrayEquals(before.get(p.name()), be.download(p.value()), p.name() + " must not change");
            assertEquals(null, p.grad(), p.name() + " must have no gradient");
        }
        adapterBefore.forEach((name, old) -> {
            float[] now = be.download(model.parameters().stream().filter(p -> p.name().equals(name)).findFirst()
                    .orElseThrow().value());
            assertFalse(Arrays.equals(old, now), name + " must train");
        });
    }

    @Test
    void logitsAtPositionTDoNotDependOnLaterTokens() {
        model.attachAdapters(LoraConfig.of(4, 8f, "all-linear").withInit(LoraConfig.Init.NONE), 3);
        float[] a = model.logits(TOKENS);
        int[] changed = TOKENS.clone();
        int t = 4;
        for (int j = t + 1; j < changed.length; j++) {
            changed[j] = (changed[j] + 5) % CFG.vocabSize();
        }
        float[] b = model.logits(changed);
        int v = CFG.vocabSize();
        assertArrayEquals(Arrays.copyOf(a, (t + 1) * v), Arrays.copyOf(b, (t + 1) * v), "positions 0..t");
        assertFalse(Arrays.equals(Arrays.copyOfRange(a, (t + 1) * v, a.length),
                Arrays.copyOfRange(b, (t + 1) * v, b.length)), "later positions see the changed tokens");
    }

    @Test
    void gradientsAccumulateLinearlyAndEvalLossMatchesTrainLoss() {
        model.setFullFineTune(true);
        int[][] w = windows(5, 2, 6);
        double loss = model.trainStep(w, 1f);
        assertEquals(loss, model.evalLoss(w), 1e-6, "no dropout: eval loss = training loss");
        Map<String, float[]> once = new HashMap<>();
        model.parameters().forEach(p -> once.put(p.name(), be.download(p.grad())));
        model.parameters().forEach(Parameter::zeroGrad);
        model.trainStep(w, 0.25f);
        model.evalLoss(windows(6, 3, 4));          // another shape in between: must not disturb anything
        model.trainStep(w, 0.75f);
        for (Parameter p : model.parameters()) {
            close(p.name() + " accumulated", be.download(p.grad()), once.get(p.name()), new Tolerance(1e-6, 1e-4));
        }
    }

    @Test
    void adapterDropoutAppliesInTrainStepOnlyAndEvalIsDeterministic() {
        model.attachAdapters(LoraConfig.of(4, 8f, "all-linear").withInit(LoraConfig.Init.NONE).withDropout(0.5f), 2);
        int[][] w = windows(8, 2, 6);
        double eval = model.evalLoss(w);
        double train1 = model.trainStep(w, 1f);
        double train2 = model.trainStep(w, 1f);
        assertEquals(eval, model.evalLoss(w), 0.0, "eval mode: no dropout, deterministic");
        assertTrue(train1 != eval && train2 != train1, "fresh dropout masks per step: " + eval + " " + train1 + " "
                + train2);
        model.setTraining(false);
        assertTrue(model.adaptedModules().stream().noneMatch(AdaptedLinear::training));
        assertEquals(eval, model.evalLoss(w), 0.0);
        model.setTraining(true);
        assertTrue(model.adaptedModules().stream().allMatch(AdaptedLinear::training));
    }

    @Test
    void stepInputIsValidated() {
        var ragged = assertThrows(IllegalArgumentException.class,
                () -> model.trainStep(new int[][] {{1, 2, 3}, {1, 2}}, 1f));
        assertTrue(ragged.getMessage().contains("window 1 has 2"), ragged.getMessage());
        var range = assertThrows(IllegalArgumentException.class, () -> model.trainStep(new int[][] {{1, 19}}, 1f));
        assertTrue(range.getMessage().contains("id 19, outside [0, vocab_size=19)"), range.getMessage());
        var tooLong = assertThrows(IllegalArgumentException.class, () -> model.logits(new int[17]));
        assertTrue(tooLong.getMessage().contains("T=17 exceeds n_positions=16"), tooLong.getMessage());
        assertThrows(IllegalArgumentException.class, () -> model.trainStep(new int[][] {{1}}, 1f));
        model.setTraining(false);
        assertThrows(IllegalStateException.class, () -> model.trainStep(windows(1, 1, 3), 1f));
        assertNotNull(model.logits(new int[16]));
        model.close();
        assertThrows(IllegalStateException.class, () -> model.logits(TOKENS));
    }
}
