package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the whole GPT-2's forward and hand-written backward: on a tiny config (V=11, P=8, C=8, L=2, H=2; B=2,
 * T=5) with random, non-trivial parameters, lorakit's logits and loss equal an independent double-precision
 * forward ({@link DoubleGpt2}), and every gradient lorakit computes equals central finite differences of that
 * double forward, for EVERY coordinate of every trainable tensor: full fine-tuning (all base tensors, wte with
 * both its embedding and tied lm_head gradient), LoRA on c_attn + c_fc, DoRA likewise (norm held constant as
 * lorakit and PEFT detach it, DoRA section 4.3), and VeRA on all linear modules. Frozen tensors must have no
 * gradient.
 */
class Gpt2GradientCheckTest {

    private static final Gpt2Config CFG = new Gpt2Config(11, 8, 8, 2, 2, 1e-5f);
    private static final int B = 2;
    private static final int T = 5;
    private static final double STEP = 1e-5;

    @Test
    void fullFineTuneGradientsMatchFiniteDifferences() {
        try (Backend be = new CpuBackend(); DecoderModel model = DecoderModel.random(CFG, be, 1)) {
            Random rnd = new Random(11);
            DoubleGpt2 ref = randomize(be, model, rnd);
            model.setFullFineTune(true);
            int[][] windows = windows(rnd);
            checkForward(model, ref, windows);
            double loss = model.trainStep(windows, 1f);
            assertEquals(ref.loss(windows), loss, 1e-5, "trainStep loss vs the double forward");
            int checked = checkGradients(be, model, ref, windows);
            assertEquals(model.baseParameters().size(), checked, "every base tensor is trainable and checked");
        }
    }

    @Test
    void loraGradientsMatchFiniteDifferences() {
        adapterCase(LoraConfig.of(2, 4f, "c_attn", "c_fc").withInit(LoraConfig.Init.NONE), DoubleGpt2.Kind.LORA, 8);
    }

    @Test
    void doraGradientsMatchFiniteDifferences() {
        adapterCase(LoraConfig.of(2, 4f, "c_attn", "c_fc").withInit(LoraConfig.Init.NONE).withDora(true),
                DoubleGpt2.Kind.DORA, 12);
    }

    @Test
    void veraGradientsMatchFiniteDifferences() {
        adapterCase(VeraConfig.of(3, "all-linear"), DoubleGpt2.Kind.VERA, 16);
    }

    private void adapterCase(AdapterConfig cfg, DoubleGpt2.Kind kind, int expectedTrainable) {
        try (Backend be = new CpuBackend(); DecoderModel model = DecoderModel.random(CFG, be, 2)) {
            Random rnd = new Random(13);
            DoubleGpt2 ref = randomize(be, model, rnd);
            model.attachAdapters(cfg, 5);
            for (var a : model.adaptedModules()) {
                for (Parameter p : a.parameters()) {
                    float[] v = uniform(rnd, (int) p.value().numel(), 0.6);
                    if (p.role() == Parameter.Role.MAGNITUDE) {
                        for (int i = 0; i < v.length; i++) {
                            v[i] += 1.5f;      // a magnitude, away from 0
                        }
                    }
                    set(be, p.value(), v);
                    ref.params.put(p.name(), toDouble(v));
                }
                ref.adapters.put(a.name(), new DoubleGpt2.Adapter(kind, a.rank(), a.scaling()));
            }
            if (model.adapters().veraProjections() != null) {
                ref.params.put("vera_A", toDouble(be.download(model.adapters().veraProjections().a())));
                ref.params.put("vera_B", toDouble(be.download(model.adapters().veraProjections().b())));
            }
            int[][] windows = windows(rnd);
            checkForward(model, ref, windows);
            double loss = model.trainStep(windows, 1f);
            assertEquals(ref.loss(windows), loss, 1e-5, "trainStep loss vs the double forward");
            if (kind == DoubleGpt2.Kind.DORA) {      // detached norm: a constant for the derivative
                for (var a : model.adaptedModules()) {
                    ref.doraNorm.put(a.name(), ref.doraNorm(a.name(), a.inFeatures(), a.outFeatures()));
                }
            }
            for (Parameter p : model.baseParameters()) {
                assertNull(p.grad(), "frozen base tensor " + p.name() + " must get no gradient");
            }
            assertEquals(expectedTrainable, checkGradients(be, model, ref, windows), "trainable adapter tensors");
        }
    }

    /** Compares every coordinate of every trainable parameter's gradient with central differences. */
    private static int checkGradients(Backend be, DecoderModel model, DoubleGpt2 ref, int[][] windows) {
        int checked = 0;
        for (Parameter p : model.parameters()) {
            if (!p.trainable()) {
                assertNull(p.grad(), p.name() + " is frozen but has a gradient");
                continue;
            }
            assertNotNull(p.grad(), p.name() + " is trainable but got no gradient");
            float[] got = be.download(p.grad());
            double[] fd = new double[got.length];
            double max = 0;
            for (int i = 0; i < fd.length; i++) {
                fd[i] = ref.finiteDifference(windows, p.name(), i, STEP);
                max = Math.max(max, Math.abs(fd[i]));
            }
            assertTrue(max > 1e-6, p.name() + ": the reference gradient is ~0, the check would be vacuous");
            // fp32 against exact: 1e-3 relative, with an absolute floor at 1e-4 of the tensor's largest entry
            Tolerance tol = new Tolerance(1e-4 * max + 1e-7, 1e-3);
            Tolerance.Result r = tol.compare("d" + p.name(), got, fd);
            assertTrue(r.ok(), r.describe());
            checked++;
        }
        return checked;
    }

    private static void checkForward(DecoderModel model, DoubleGpt2 ref, int[][] windows) {
        for (int[] w : windows) {
            int[] in = java.util.Arrays.copyOf(w, T);
            double[][] want = ref.logits(new int[][] {in});
            double[] flat = new double[T * CFG.vocabSize()];
            for (int t = 0; t < T; t++) {
                System.arraycopy(want[t], 0, flat, t * CFG.vocabSize(), CFG.vocabSize());
            }
            Tolerance.Result r = Tolerance.F32.compare("logits", model.logits(in), flat);
            assertTrue(r.ok(), r.describe());
        }
    }

    /**
     * Replaces every base tensor with random values large enough to make every path matter (weights U(±0.5),
     * biases U(±0.2), LayerNorm gamma 1 ± 0.3) and returns a double model holding the same values.
     */
    static DoubleGpt2 randomize(Backend be, DecoderModel model, Random rnd) {
        DoubleGpt2 ref = new DoubleGpt2(CFG.vocabSize(), CFG.nPositions(), CFG.nEmbd(), CFG.nLayer(), CFG.nHead(),
                CFG.layerNormEpsilon());
        for (Parameter p : model.baseParameters()) {
            int n = (int) p.value().numel();
            float[] v;
            if (p.name().contains(".ln_") && p.name().endsWith(".weight")) {
                v = uniform(rnd, n, 0.3);
                for (int i = 0; i < n; i++) {
                    v[i] += 1f;
                }
            } else {
                v = uniform(rnd, n, p.name().endsWith(".bias") ? 0.2 : 0.5);
            }
            set(be, p.value(), v);
            ref.params.put(p.name(), toDouble(v));
        }
        assertFalse(ref.params.isEmpty());
        return ref;
    }

    static int[][] windows(Random rnd) {
        int[][] w = new int[B][T + 1];
        for (int[] row : w) {
            for (int j = 0; j < row.length; j++) {
                row[j] = rnd.nextInt(CFG.vocabSize());
            }
        }
        return w;
    }

    static void set(Backend be, Tensor dst, float[] v) {
        try (Tensor src = be.upload(v, dst.shape())) {
            be.copy(src, dst);
        }
    }

    static float[] uniform(Random rnd, int n, double bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return v;
    }

    static double[] toDouble(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }
}
