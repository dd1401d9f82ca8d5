package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.Parameter.Role;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Random;

import static ai.lorakit.adapters.optim.Fixture.assertBitIdentical;
import static ai.lorakit.adapters.optim.Fixture.assertClose;
import static ai.lorakit.adapters.optim.Fixture.param;
import static ai.lorakit.adapters.optim.Fixture.random;
import static ai.lorakit.adapters.optim.Fixture.setGrad;
import static ai.lorakit.adapters.optim.Fixture.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA-FA (VARIANTS.md section 3 and item 12 of section 11): A is frozen and bit-identical after training while B
 * moves; the first moment after step 1 is (1−β1)·g̃_B with g̃_B = (1/s²)·grad_B·(A Aᵀ + 1e-8 I)⁻¹ computed here
 * independently (Gauss-Jordan in double), per pair with its own s (α/r and rsLoRA's α/√r); weight decay follows
 * torch AdamW by default (B_wd = B_no_wd − lr·wd·B_prev, not PEFT's B_no_wd·(1 − lr·wd)) and PEFT's rule with
 * {@link LoraFaPolicy#peft()} (B_wd = B_no_wd·(1 − lr·wd), section 11 item 12, with the same moments); a
 * rank-deficient A is refused with the module's name and without side effects.
 */
class LoraFaTest {
    private final CpuBackend be = new CpuBackend();

    @AfterEach
    void tearDown() {
        be.close();
    }

    /** One LoRA module: A [r,in] Kaiming-uniform-like, B [out,r] (zeros or random). */
    private record Module(Parameter a, Parameter b, float s) {
        LoraPair pair() {
            return new LoraPair(a, b, s);
        }
    }

    private Module module(Random rnd, String name, int r, int in, int out, float s, boolean zeroB) {
        Parameter a = param(be, name + ".lora_A", Role.LORA_A, true, random(rnd, r * in, 1 / Math.sqrt(in)), r, in);
        float[] b0 = zeroB ? new float[out * r] : random(rnd, out * r, 0.5);
        Parameter b = param(be, name + ".lora_B", Role.LORA_B, true, b0, out, r);
        return new Module(a, b, s);
    }

    /** A second module with the same names, values and s (to run two optimizers side by side). */
    private Module copyOf(Module m) {
        return new Module(param(be, m.a.name(), Role.LORA_A, true, values(m.a), m.a.value().shape()),
                param(be, m.b.name(), Role.LORA_B, true, values(m.b), m.b.value().shape()), m.s);
    }

    @Test
    void aFrozenAndUnchangedWhileBTrains() {
        Random rnd = new Random(31);
        Module m = module(rnd, "h.0.attn.c_attn", 4, 16, 6, 2f, true);
        float[] a0 = values(m.a);
        try (Optimizer opt = Optimizer.create(new LoraFaPolicy(), OptimizerConfig.defaults(),
                List.of(m.a, m.b), List.of(m.pair()))) {
            assertFalse(m.a.trainable(), "LoRA-FA freezes A");
            assertTrue(m.b.trainable());
            assertEquals(List.of(m.b), opt.groups().get(0).params());
            for (int t = 0; t < 3; t++) {
                setGrad(m.b, random(rnd, 24, 1));
                opt.step();
                assertNull(m.a.grad(), "frozen A has no gradient");
            }
            assertBitIdentical("A after 3 steps", a0, values(m.a));
            assertTrue(be.countNonFinite(m.b.value()) == 0 && be.dot(m.b.value(), m.b.value()) > 0,
                    "B moved away from zero");
            assertThrows(IllegalStateException.class, m.a::gradForAccumulation);
        }
    }

    @Test
    void firstMomentIsTheProjectedGradientPerPair() {
        long seed = 37;
        Random rnd = new Random(seed);
        // per-pair s: rsLoRA α/√r = 16/√4 = 8, and plain α/r = 8/3 (a rank/alpha-pattern layer)
        Module m1 = module(rnd, "h.0.attn.c_attn", 4, 16, 6, (float) (16 / Math.sqrt(4)), true);
        Module m2 = module(rnd, "h.0.mlp.c_fc", 3, 10, 5, 8f / 3, false);
        OptimizerConfig cfg = new OptimizerConfig(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
        float[] g1 = random(rnd, 6 * 4, 1);
        float[] g2 = random(rnd, 5 * 3, 1);
        double[] want1 = projected(values(m1.a), 4, 16, g1, 6, m1.s);
        double[] want2 = projected(values(m2.a), 3, 10, g2, 5, m2.s);
        Fixture.RefAdamW ref2 = new Fixture.RefAdamW(values(m2.b));
        try (Optimizer opt = Optimizer.create(new LoraFaPolicy(), cfg, List.of(m1.a, m1.b, m2.a, m2.b),
                List.of(m1.pair(), m2.pair()))) {
            setGrad(m1.b, g1);
            setGrad(m2.b, g2);
            opt.step();
            double b1 = cfg.beta1();
            assertClose("m of pair 1 (s = 8, seed " + seed + ")", values(opt.state().get(m1.b.name()).m()),
                    scaled(want1, 1 - b1));
            assertClose("m of pair 2 (s = 8/3, seed " + seed + ")", values(opt.state().get(m2.b.name()).m()),
                    scaled(want2, 1 - b1));
            ref2.step(want2, cfg.lr(), cfg, cfg.weightDecay());
            assertClose("B of pair 2 after AdamW on g̃", values(m2.b), ref2.p);
        }
    }

    @Test
    void weightDecayIsTorchAdamWDecoupledDecayFirst() {
        Random rnd = new Random(41);
        float lr = 0.1f;
        float wd = 0.5f;
        Module plain = module(rnd, "m", 3, 12, 4, 2f, false);
        float[] bPrev = values(plain.b);
        Module decayed = copyOf(plain);
        float[] g = random(rnd, 12, 1);
        OptimizerConfig cfg = new OptimizerConfig(lr, 0.9f, 0.999f, 1e-8f, 0f);
        try (Optimizer o1 = Optimizer.create(new LoraFaPolicy(), cfg, List.of(plain.a, plain.b),
                List.of(plain.pair()));
             Optimizer o2 = Optimizer.create(new LoraFaPolicy(), cfg.withWeightDecay(wd),
                     List.of(decayed.a, decayed.b), List.of(decayed.pair()))) {
            setGrad(plain.b, g);
            setGrad(decayed.b, g);
            o1.step();
            o2.step();
            float[] bNoWd = values(plain.b);
            float[] bWd = values(decayed.b);
            double[] torchRule = new double[12];
            double[] peftRule = new double[12];
            for (int i = 0; i < 12; i++) {
                torchRule[i] = bNoWd[i] - (double) lr * wd * bPrev[i];
                peftRule[i] = bNoWd[i] * (1 - (double) lr * wd);
            }
            assertClose("B_wd = B_no_wd − lr·wd·B_prev", bWd, torchRule);
            assertFalse(Tolerance.F32.compare("PEFT's B_no_wd·(1 − lr·wd)", bWd, peftRule).ok(),
                    "lorakit decays before the Adam step, not after it as PEFT does");
        }
    }

    /** PEFT's LoraFAOptimizer: B_wd == B_no_wd·(1 − lr·wd) (PEFT's test, rtol 1e-5), moments as without decay. */
    @Test
    void peftRuleDecaysAfterTheAdamStep() {
        Random rnd = new Random(47);
        float lr = 0.1f;
        float wd = 0.5f;
        Module plain = module(rnd, "m", 3, 12, 4, 2f, false);
        Module decayed = copyOf(plain);
        OptimizerConfig cfg = new OptimizerConfig(lr, 0.9f, 0.999f, 1e-6f, 0f);
        try (Optimizer o1 = Optimizer.create(LoraFaPolicy.peft(), cfg, List.of(plain.a, plain.b),
                List.of(plain.pair()));
             Optimizer o2 = Optimizer.create(LoraFaPolicy.peft(), cfg.withWeightDecay(wd),
                     List.of(decayed.a, decayed.b), List.of(decayed.pair()))) {
            for (int t = 0; t < 2; t++) {
                float[] g = random(rnd, 12, 1);
                setGrad(plain.b, g);
                setGrad(decayed.b, g);
                float[] noWdBefore = values(plain.b);
                float[] wdBefore = values(decayed.b);
                o1.step();
                o2.step();
                // from the same B, the decayed step is the undecayed one times (1 − lr·wd)
                float[] stepNoWd = values(plain.b);
                double[] want = new double[12];
                for (int i = 0; i < 12; i++) {
                    double adam = stepNoWd[i] - noWdBefore[i];   // −step·m/(√v + eps), same moments in both
                    want[i] = (wdBefore[i] + adam) * (1 - (double) lr * wd);
                }
                Tolerance.Result r = new Tolerance(1e-7, 1e-5).compare("PEFT rule step " + (t + 1)
                        + ": B_wd = (B + Adam step)·(1 − lr·wd)", values(decayed.b), want);
                assertTrue(r.ok(), r.describe());
            }
            assertClose("same first moment with and without decay", values(o2.state().get("m.lora_B").m()),
                    toDouble(values(o1.state().get("m.lora_B").m())));
        }
        // PEFT's factor 1 − lr·wd must stay positive
        Module m = module(rnd, "h.0.q", 2, 8, 3, 1f, true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizer.create(
                LoraFaPolicy.peft(), new OptimizerConfig(2f, 0.9f, 0.999f, 1e-6f, 0.5f), List.of(m.a, m.b),
                List.of(m.pair())));
        assertTrue(e.getMessage().contains("lr·weight_decay") && e.getMessage().contains("1.0"), e.getMessage());
        assertTrue(m.a.trainable(), "a refused optimizer freezes nothing");
        try (Optimizer ok = Optimizer.create(LoraFaPolicy.peft(), new OptimizerConfig(1f, 0.9f, 0.999f, 1e-6f, 0.5f),
                List.of(m.a, m.b), List.of(m.pair()))) {
            assertThrows(IllegalArgumentException.class, () -> ok.setLearningRate(2f));
            assertEquals(1f, ok.learningRate(), "a refused learning rate is not applied");
        }
        assertThrows(IllegalArgumentException.class, () -> new LoraFaPolicy(null));
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    @Test
    void rankDeficientAIsRefusedWithTheModuleNameAndNoSideEffects() {
        Random rnd = new Random(43);
        Module ok = module(rnd, "h.0.attn.c_attn", 3, 8, 4, 2f, true);
        float[] a = random(rnd, 3 * 8, 0.3);
        System.arraycopy(a, 0, a, 2 * 8, 8);                 // row 2 = row 0: rank 2
        Parameter badA = param(be, "h.1.mlp.c_proj.lora_A", Role.LORA_A, true, a, 3, 8);
        Parameter badB = param(be, "h.1.mlp.c_proj.lora_B", Role.LORA_B, true, new float[12], 4, 3);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Optimizer.create(new LoraFaPolicy(), OptimizerConfig.defaults(),
                        List.of(ok.a, ok.b, badA, badB), List.of(ok.pair(), new LoraPair(badA, badB, 2f))));
        assertTrue(e.getMessage().contains("h.1.mlp.c_proj") && e.getMessage().contains("singular"), e.getMessage());
        assertTrue(ok.a.trainable() && badA.trainable(), "nothing frozen when create fails");

        Parameter zeroA = param(be, "wte.lora_A", Role.LORA_A, true, new float[6], 2, 3);
        Parameter zeroB = param(be, "wte.lora_B", Role.LORA_B, true, new float[8], 4, 2);
        e = assertThrows(IllegalArgumentException.class, () -> Optimizer.create(new LoraFaPolicy(),
                OptimizerConfig.defaults(), List.of(zeroA, zeroB), List.of(new LoraPair(zeroA, zeroB, 1f))));
        assertTrue(e.getMessage().contains("wte") && e.getMessage().contains("zeros"), e.getMessage());

        Parameter wideA = param(be, "x.lora_A", Role.LORA_A, true, random(rnd, 8, 1), 4, 2);  // r > in
        Parameter wideB = param(be, "x.lora_B", Role.LORA_B, true, new float[8], 2, 4);
        assertThrows(IllegalArgumentException.class, () -> Optimizer.create(new LoraFaPolicy(),
                OptimizerConfig.defaults(), List.of(wideA, wideB), List.of(new LoraPair(wideA, wideB, 1f))));
    }

    @Test
    void pairsMustCoverTheLoraParameters() {
        Random rnd = new Random(47);
        Module m = module(rnd, "h.0.attn.c_attn", 2, 6, 3, 1f, true);
        Module unpaired = module(rnd, "h.0.attn.c_proj", 2, 6, 3, 1f, true);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> Optimizer.create(
                new LoraFaPolicy(), OptimizerConfig.defaults(), List.of(m.a, m.b, unpaired.a, unpaired.b),
                List.of(m.pair())));
        assertTrue(e.getMessage().contains("h.0.attn.c_proj.lora_A"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Optimizer.create(
                new LoraFaPolicy(), OptimizerConfig.defaults(), List.of(m.b), List.of(m.pair())));
        assertTrue(e.getMessage().contains("h.0.attn.c_attn.lora_A"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new LoraPair(m.a, unpaired.a, 1f));
        assertTrue(e.getMessage().contains("shape of B"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new LoraPair(m.a, m.b, 0f));
    }

    @Test
    void nonFiniteGradientOfBIsRefused() {
        Random rnd = new Random(53);
        Module m = module(rnd, "h.0.attn.c_attn", 2, 6, 3, 1f, false);
        float[] b0 = values(m.b);
        try (Optimizer opt = Optimizer.create(new LoraFaPolicy(), OptimizerConfig.defaults(), List.of(m.a, m.b),
                List.of(m.pair()))) {
            float[] g = random(rnd, 6, 1);
            g[3] = Float.NEGATIVE_INFINITY;
            setGrad(m.b, g);
            IllegalStateException e = assertThrows(IllegalStateException.class, opt::step);
            assertTrue(e.getMessage().contains("h.0.attn.c_attn.lora_B"), e.getMessage());
            assertBitIdentical("B", b0, values(m.b));
            assertEquals(0, opt.stepCount());
        }
    }

    @Test
    void hostInverseOfTheGramMatrix() {
        Random rnd = new Random(59);
        int r = 16;
        int in = 64;
        float[] a = random(rnd, r * in, 1 / Math.sqrt(in));
        double[] inv = GramInverse.invert(a, r, in, LoraFaPolicy.RIDGE, "m");
        double[] want = gaussJordanInverse(gram(a, r, in), r);
        float[] got = new float[inv.length];
        for (int i = 0; i < got.length; i++) {
            got[i] = (float) inv[i];
        }
        assertClose("(A Aᵀ + 1e-8 I)⁻¹", got, want);
    }

    // ---------------------------------------------------------------- independent reference (double)

    /** g̃ = (1/s²) · g [out,r] · (A Aᵀ + 1e-8 I)⁻¹ [r,r]. */
    private static double[] projected(float[] a, int r, int in, float[] g, int out, float s) {
        double[] inv = gaussJordanInverse(gram(a, r, in), r);
        double[] res = new double[out * r];
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < r; j++) {
                double acc = 0;
                for (int k = 0; k < r; k++) {
                    acc += g[o * r + k] * inv[k * r + j];
                }
                res[o * r + j] = acc / ((double) s * s);
            }
        }
        return res;
    }

    /** A Aᵀ + 1e-8 I. */
    private static double[] gram(float[] a, int r, int in) {
        double[] gm = new double[r * r];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < r; j++) {
                double acc = i == j ? 1e-8 : 0;
                for (int k = 0; k < in; k++) {
                    acc += (double) a[i * in + k] * a[j * in + k];
                }
                gm[i * r + j] = acc;
            }
        }
        return gm;
    }

    /** Gauss-Jordan with partial pivoting. */
    private static double[] gaussJordanInverse(double[] m, int n) {
        double[] w = new double[n * 2 * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(m, i * n, w, i * 2 * n, n);
            w[i * 2 * n + n + i] = 1;
        }
        for (int c = 0; c < n; c++) {
            int piv = c;
            for (int i = c + 1; i < n; i++) {
                if (Math.abs(w[i * 2 * n + c]) > Math.abs(w[piv * 2 * n + c])) {
                    piv = i;
                }
            }
            for (int j = 0; j < 2 * n; j++) {
                double t = w[c * 2 * n + j];
                w[c * 2 * n + j] = w[piv * 2 * n + j];
                w[piv * 2 * n + j] = t;
            }
            double d = w[c * 2 * n + c];
            for (int j = 0; j < 2 * n; j++) {
                w[c * 2 * n + j] /= d;
            }
            for (int i = 0; i < n; i++) {
                if (i != c) {
                    double f = w[i * 2 * n + c];
                    for (int j = 0; j < 2 * n; j++) {
                        w[i * 2 * n + j] -= f * w[c * 2 * n + j];
                    }
                }
            }
        }
        double[] inv = new double[n * n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(w, i * 2 * n + n, inv, i * n, n);
        }
        return inv;
    }

    private static double[] scaled(double[] x, double f) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = x[i] * f;
        }
        return y;
    }
}
