package ai.lorakit.models;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.kernel.KernelBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
import ai.lorakit.models.data.Document;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.train.EnglishText;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.OptionalInt;
import java.util.function.Supplier;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The model-level check of the OpenCL backend (issue 5): a few Trainer steps of a tiny random GPT-2
 * (V 37, P 16, C 16, L 2, H 2; B 2, T 8; every linear adapted) with each adapter variant -- LoRA (with
 * dropout and weight decay), LoRA+, LoRA-FA, DoRA, VeRA, AdaLoRA (its budget schedule masks triplets during
 * the run) -- and full fine-tuning give on opencl the same per-step training losses, gradient norms,
 * validation losses and final trainable weights as on cpu. It proves that KernelBackend's ops compose into
 * the same training as CpuBackend's, not only that each op matches alone (the contract suite).
 *
 * <p>Tolerances: {@link Tolerance#F32} for everything (|x - cpu| <= 1e-5 + 1e-4 |cpu| per element). The worst
 * share of that tolerance used on PoCL 3.1 (AVX-512 CPU device), per variant and quantity:
 * <pre>
 *   variant     loss, val_loss   grad norm   weights after 4 steps   training delta (after - before)
 *   lora          0.1 %            0.0 %         0.5 %                  0.5 %
 *   lora-plus     0.1 %            0.0 %         4.1 %                  4.1 %
 *   lora-fa       0.0 %            0.1 %         0.0 %                  0.0 %
 *   dora          0.0 %            0.0 %         0.3 %                  0.3 %
 *   vera          0.1 %            0.0 %         0.7 %                  0.7 %
 *   adalora       0.0 %            0.0 %         0.0 %                  0.0 %
 *   full          0.0 %            0.1 %         1.7 %                  7.1 %
 * </pre>
 * (fp32 sums in another order; Adam divides by sqrt(v), so an element with a tiny gradient moves by ~lr on
 * both backends but with a relative difference near the gradient's own; LoRA+'s B at 16 x lr is the worst.)
 * The training delta is compared separately because a wrong update can hide inside a weight that barely moves.
 * Runs only where an OpenCL device opens ({@code lorakit.test.requireOpenCl=true} turns its absence into a
 * failure).
 */
class OpenClModelTest {

    /** Tiny GPT-2: V 37 (the tokenizer below), n_positions 16, C 16, L 2, H 2. */
    static final Gpt2Config CFG = Gpt2Config.of(37, 16, 16, 2, 2);
    static final int STEPS = 4;
    /**
     * 4 steps of B 2 x T 8 at a fixed peak lr per method (the CLI defaults before the issue-14 sweep; constant),
     * weight decay 0.01, clip 1, validation at steps 2 and 4 on 2 batches, a metrics line every step.
     */
    static TrainConfig train(float lr) {
        return new TrainConfig(STEPS, 2, 8, lr, 0, TrainConfig.Schedule.CONSTANT, 0f, 0.01f, 1f, 1, 2, 2, 0, 5L, 1);
    }
    static final List<String> TARGETS = List.of("c_attn", "c_proj", "c_fc");

    static final Tolerance LOSS = Tolerance.F32;
    static final Tolerance GRAD_NORM = Tolerance.F32;
    static final Tolerance WEIGHTS = Tolerance.F32;
    static final Tolerance DELTA = Tolerance.F32;

    private static Backend cpu;
    private static Backend opencl;
    private static TextDataset.Split data;

    @BeforeAll
    static void open() {
        String reason = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean("lorakit.test.requireOpenCl")) {
            assertEquals(null, reason, "OpenCL required but unavailable");
        }
        assumeTrue(reason == null, () -> "no OpenCL device: " + reason);
        cpu = new CpuBackend();
        opencl = OpenClBackend.open();
        data = TextDataset.of("english", EnglishText.documents(), new Letters37()).split(0.25, 3);
    }

    @AfterAll
    static void close() {
        if (opencl != null) {
            opencl.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    static Stream<Arguments> variants() {
        LoraConfig lora = new LoraConfig(4, 8f, 0f, false, LoraConfig.Init.KAIMING, false, TARGETS, Map.of(), Map.of());
        return Stream.of(
                variant("lora", 1e-3f, () -> lora.withDropout(0.1f), AdamWPolicy::new),
                variant("lora-plus", 1e-3f, () -> lora, () -> LoraPlusPolicy.ofRatio(16f)),
                variant("lora-fa", 1e-3f, () -> lora, LoraFaPolicy::new),
                variant("dora", 1e-3f, () -> lora.withDora(true), AdamWPolicy::new),
                variant("vera", 1e-2f, () -> new VeraConfig(8, 3L, true, 0.1f, 0f, TARGETS), AdamWPolicy::new),
                // tinit 1, tfinal 1: budgeting at steps 2..3 prunes 6 -> 3 triplets per layer
                variant("adalora", 1e-3f, () -> new AdaLoraConfig(6, 3, 1, 1, 1, 0.85f, 0.85f, 0.5f, STEPS, 8f, 0f,
                        TARGETS, null), AdamWPolicy::new),
                variant("full", 3e-4f, () -> null, AdamWPolicy::new));
    }

    private static Arguments variant(String name, float lr, Supplier<AdapterConfig> adapter,
                                     Supplier<OptimizerPolicy> policy) {
        return Arguments.of(name, lr, adapter, policy);
    }

    /** What one run produced: metrics per step and every trainable parameter before and after (model order). */
    record Run(List<JsonNode> metrics, Map<String, float[]> before, Map<String, float[]> after) {
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("variants")
    void trainsAsOnCpu(String name, float lr, Supplier<AdapterConfig> adapter, Supplier<OptimizerPolicy> policy,
                       @TempDir Path dir) throws IOException {
        Run ref = train(cpu, lr, adapter.get(), policy.get(), dir.resolve("cpu"));
        Run got = train(opencl, lr, adapter.get(), policy.get(), dir.resolve("opencl"));

        assertEquals(ref.metrics().size(), got.metrics().size(), name + ": metrics lines");
        assertEquals(STEPS + 1, ref.metrics().size(), name + ": the before-training line and one per step");
        for (String key : new String[] {"loss", "grad_norm", "val_loss"}) {
            float[] r = series(ref.metrics(), key), g = series(got.metrics(), key);
            assertTrue(r.length >= 2, name + ": " + key + " logged");
            Tolerance.Result c = (key.equals("grad_norm") ? GRAD_NORM : LOSS).compare(name + " " + key, g, r);
            assertTrue(c.ok(), c.describe());
        }
        float[] losses = series(ref.metrics(), "loss");
        assertNotEquals(losses[0], losses[losses.length - 1], name + ": training moved the loss");

        assertEquals(ref.after().keySet(), got.after().keySet(), name + ": trainable parameters");
        boolean moved = false;
        for (String p : ref.after().keySet()) {
            float[] r = ref.after().get(p), g = got.after().get(p);
            Tolerance.Result w = WEIGHTS.compare(name + " " + p + " after " + STEPS + " steps", g, r);
            assertTrue(w.ok(), w.describe());
            float[] dr = minus(r, ref.before().get(p)), dg = minus(g, got.before().get(p));
            Tolerance.Result d = DELTA.compare(name + " " + p + " training delta", dg, dr);
            assertTrue(d.ok(), d.describe());
            moved |= maxAbs(dr) > 0;
        }
        assertTrue(moved, name + ": training changed no trainable parameter");
        if (name.equals("adalora")) {
            long masked = got.after().entrySet().stream().filter(e -> e.getKey().endsWith("lora_E"))
                    .mapToLong(e -> zeros(e.getValue())).sum();
            assertTrue(masked > 0, "adalora: the budget schedule masked no triplet (Λ has no zero)");
        }
    }

    /**
     * The bf16 precision policy composes the same way: 4 LoRA steps with BF16 base weights and activations give on
     * opencl the cpu's losses, gradient norms, validation losses and adapter weights to Tolerance.BF16 (a BF16
     * store may round the other way after an fp32 sum in another order: one bf16 ulp, 0.4 %, then propagates).
     */
    @Test
    void trainsAsOnCpuInBf16(@TempDir Path dir) throws IOException {
        LoraConfig lora = new LoraConfig(4, 8f, 0f, false, LoraConfig.Init.KAIMING, false, TARGETS, Map.of(), Map.of());
        Run ref = train(cpu, 1e-3f, lora, new AdamWPolicy(), dir.resolve("cpu"), Precision.BF16);
        Run got = train(opencl, 1e-3f, lora, new AdamWPolicy(), dir.resolve("opencl"), Precision.BF16);
        assertEquals(STEPS + 1, got.metrics().size(), "bf16: the before-training line and one per step");
        for (String key : new String[] {"loss", "grad_norm", "val_loss"}) {
            float[] r = series(ref.metrics(), key), g = series(got.metrics(), key);
            assertTrue(r.length >= 2 && r.length == g.length, "bf16: " + key + " logged on both");
            Tolerance.Result c = Tolerance.BF16.compare("bf16 " + key, g, r);
            assertTrue(c.ok(), c.describe());
        }
        assertEquals(ref.after().keySet(), got.after().keySet(), "bf16: trainable parameters");
        for (String p : ref.after().keySet()) {
            Tolerance.Result w = Tolerance.BF16.compare("bf16 " + p + " after " + STEPS + " steps", got.after().get(p),
                    ref.after().get(p));
            assertTrue(w.ok(), w.describe());
        }
    }

    /** The same model, adapters and data on {@code be}; the Trainer writes metrics.jsonl to {@code out}. */
    private static Run train(Backend be, float lr, AdapterConfig adapter, OptimizerPolicy policy, Path out)
            throws IOException {
        return train(be, lr, adapter, policy, out, Precision.FP32);
    }

    private static Run train(Backend be, float lr, AdapterConfig adapter, OptimizerPolicy policy, Path out,
                             Precision precision) throws IOException {
        try (DecoderModel m = DecoderModel.random(CFG, be, 11, precision)) {
            for (Parameter p : m.baseParameters()) {
                assertEquals(precision.weights(), p.value().dtype(), p.name() + " stored as the policy says");
            }
            if (adapter == null) {
                m.setFullFineTune(true);
            } else {
                m.attachAdapters(adapter, 7);
            }
            Map<String, float[]> before = values(be, m, false);
            try (Trainer t = new Trainer(m, policy, train(lr), data.train(), data.validation(), out)) {
                t.run();
            }
            return new Run(MetricsLog.read(out), before, values(be, m, true));
        }
    }

    /**
     * "index:name" -> values of every parameter, or only the trainable ones (the policy decides those: LoRA-FA
     * freezes A when the Trainer is built), keyed by the index among all parameters so the two maps match.
     */
    private static Map<String, float[]> values(Backend be, DecoderModel m, boolean onlyTrainable) {
        Map<String, float[]> out = new LinkedHashMap<>();
        List<Parameter> all = Trainer.distinct(m.parameters());
        for (int i = 0; i < all.size(); i++) {
            Parameter p = all.get(i);
            if (!onlyTrainable || p.trainable()) {
                out.put(String.format(Locale.ROOT, "%03d:%s", i, p.name()), be.download(p.value()));
            }
        }
        assertTrue(!out.isEmpty(), "no parameter");
        return out;
    }

    /** The values of {@code key} over the metrics lines that have it. */
    private static float[] series(List<JsonNode> lines, String key) {
        List<Float> v = new ArrayList<>();
        for (JsonNode l : lines) {
            if (l.has(key) && !l.get(key).isNull()) {
                v.add((float) l.get(key).asDouble());
            }
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    private static float[] minus(float[] a, float[] b) {
        float[] d = new float[a.length];
        for (int i = 0; i < d.length; i++) {
            d[i] = a[i] - b[i];
        }
        return d;
    }

    private static long zeros(float[] a) {
        long z = 0;
        for (float x : a) {
            z += x == 0f ? 1 : 0;
        }
        return z;
    }

    private static float maxAbs(float[] a) {
        float m = 0;
        for (float x : a) {
            m = Math.max(m, Math.abs(x));
        }
        return m;
    }

    @Test
    void tokenizerFitsTheTinyVocabulary() {
        Letters37 t = new Letters37();
        int[] ids = t.encode("The river, 1 day.");
        for (int id : ids) {
            assertTrue(id > 0 && id < CFG.vocabSize(), "id " + id);
        }
        assertEquals("the river, # day.", t.decode(ids));
    }

    /**
     * A 37-id tokenizer for the tiny model: 0 end of text, 1..26 a-z (case folded), 27 space, 28 '.', 29 ',',
     * 30 newline, 31 '\'', 32 '"', 33 '?', 34 '!', 35 '-', 36 anything else (decoded as '#').
     */
    static final class Letters37 implements Tokenizer {
        private static final String PUNCT = " .,\n'\"?!-";

        @Override
        public int[] encode(String text) {
            int[] ids = new int[text.length()];
            for (int i = 0; i < ids.length; i++) {
                char c = Character.toLowerCase(text.charAt(i));
                int p = PUNCT.indexOf(c);
                ids[i] = c >= 'a' && c <= 'z' ? c - 'a' + 1 : p >= 0 ? 27 + p : 36;
            }
            return ids;
        }

        @Override
        public String decode(int[] ids) {
            StringBuilder sb = new StringBuilder();
            for (int id : ids) {
                if (id < 0 || id >= 37) {
                    throw new IllegalArgumentException("id " + id + " outside [0, 37)");
                }
                sb.append(id == 0 ? "" : id <= 26 ? String.valueOf((char) ('a' + id - 1))
                        : id < 36 ? String.valueOf(PUNCT.charAt(id - 27)) : "#");
            }
            return sb.toString();
        }

        @Override
        public int vocabSize() {
            return 37;
        }

        @Override
        public OptionalInt endOfTextId() {
            return OptionalInt.of(0);
        }
    }
}
