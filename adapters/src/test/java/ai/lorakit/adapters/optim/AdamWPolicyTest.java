package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.Parameter.Role;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static ai.lorakit.adapters.optim.Fixture.assertBitIdentical;
import static ai.lorakit.adapters.optim.Fixture.assertClose;
import static ai.lorakit.adapters.optim.Fixture.param;
import static ai.lorakit.adapters.optim.Fixture.random;
import static ai.lorakit.adapters.optim.Fixture.setGrad;
import static ai.lorakit.adapters.optim.Fixture.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The AdamW policy is torch.optim.AdamW: three steps match the formula computed in double (with and without
 * weight decay), frozen and gradient-less parameters are untouched, setLearningRate takes effect, a non-finite
 * gradient is refused before anything changes, and the state survives a save/load round trip.
 */
class AdamWPolicyTest {
    private final CpuBackend be = new CpuBackend();

    @AfterEach
    void tearDown() {
        be.close();
    }

    @ParameterizedTest(name = "weightDecay={0}")
    @ValueSource(floats = {0f, 0.1f})
    void threeStepsMatchTorchAdamW(float wd) {
        long seed = 11;
        Random rnd = new Random(seed);
        OptimizerConfig cfg = new OptimizerConfig(0.01f, 0.9f, 0.999f, 1e-8f, wd);
        Parameter a = param(be, "m.lora_A", Role.LORA_A, true, random(rnd, 12, 1), 3, 4);
        Parameter m = param(be, "m.lora_magnitude_vector", Role.MAGNITUDE, true, random(rnd, 5, 1), 5);
        Fixture.RefAdamW refA = new Fixture.RefAdamW(values(a));
        Fixture.RefAdamW refM = new Fixture.RefAdamW(values(m));
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), cfg, List.of(a, m), List.of())) {
            assertEquals(1, opt.groups().size());
            assertEquals(List.of(a, m), opt.groups().get(0).params());
            assertEquals(wd, opt.groups().get(0).weightDecay());
            for (int t = 1; t <= 3; t++) {
                float[] ga = random(rnd, 12, 2);
                float[] gm = random(rnd, 5, 0.01);   // small gradients: eps and bias correction matter
                setGrad(a, ga);
                setGrad(m, gm);
                opt.step();
                refA.step(ga, cfg.lr(), cfg, wd);
                refM.step(gm, cfg.lr(), cfg, wd);
                assertClose("A after step " + t + " (seed " + seed + ")", values(a), refA.p);
                assertClose("m after step " + t + " (seed " + seed + ")", values(m), refM.p);
                opt.zeroGrad();
            }
            assertEquals(3, opt.stepCount());
            Optimizer.MomentState s = opt.state().get("m.lora_A");
            assertEquals(3, s.step());
            assertClose("exp_avg of A", values(s.m()), refA.m);
            assertClose("exp_avg_sq of A", values(s.v()), refA.v);
            assertTrue(be.sum(a.grad()) == 0 && be.countNonFinite(a.grad()) == 0, "zeroGrad zeroes the gradient");
        }
    }

    @Test
    void frozenAndGradientlessParametersAreUntouched() {
        Random rnd = new Random(3);
        Parameter w = param(be, "m.base_layer.weight", Role.WEIGHT, false, random(rnd, 6, 1), 2, 3);
        Parameter b = param(be, "m.lora_B", Role.LORA_B, true, random(rnd, 6, 1), 3, 2);
        Parameter noGrad = param(be, "m.lora_A", Role.LORA_A, true, random(rnd, 4, 1), 2, 2);
        float[] w0 = values(w);
        float[] n0 = values(noGrad);
        float[] b0 = values(b);
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(),
                List.of(w, b, noGrad), List.of())) {
            assertEquals(List.of(b, noGrad), opt.groups().get(0).params(), "frozen params are not optimised");
            for (int t = 0; t < 3; t++) {
                setGrad(b, random(rnd, 6, 1));
                opt.step();
            }
            assertBitIdentical("frozen weight", w0, values(w));
            assertBitIdentical("parameter without gradient", n0, values(noGrad));
            assertTrue(!java.util.Arrays.equals(b0, values(b)), "trainable B must move");
            assertEquals(List.of("m.lora_B"), List.copyOf(opt.state().keySet()));
        }
    }

    @Test
    void setLearningRateChangesTheStep() {
        Random rnd = new Random(5);
        OptimizerConfig cfg = OptimizerConfig.defaults();
        Parameter a = param(be, "m.lora_A", Role.LORA_A, true, random(rnd, 8, 1), 2, 4);
        Fixture.RefAdamW ref = new Fixture.RefAdamW(values(a));
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), cfg, List.of(a), List.of())) {
            float[] g1 = random(rnd, 8, 1);
            setGrad(a, g1);
            opt.step();
            ref.step(g1, cfg.lr(), cfg, cfg.weightDecay());
            opt.setLearningRate(0.25f);
            assertEquals(0.25f, opt.learningRate());
            assertEquals(0.25f, opt.groups().get(0).lr());
            float[] g2 = random(rnd, 8, 1);
            setGrad(a, g2);
            opt.step();
            ref.step(g2, 0.25, cfg, cfg.weightDecay());
            assertClose("A after an LR change", values(a), ref.p);
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> opt.setLearningRate(-1f));
            assertTrue(e.getMessage().contains("lr") && e.getMessage().contains("-1.0"), e.getMessage());
        }
    }

    @Test
    void nonFiniteGradientIsRefusedBeforeAnythingChanges() {
        Random rnd = new Random(7);
        Parameter a = param(be, "h.0.attn.lora_A", Role.LORA_A, true, random(rnd, 6, 1), 2, 3);
        Parameter b = param(be, "h.0.attn.lora_B", Role.LORA_B, true, random(rnd, 6, 1), 3, 2);
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), List.of(a, b),
                List.of())) {
            setGrad(a, random(rnd, 6, 1));
            setGrad(b, random(rnd, 6, 1));
            opt.step();
            float[] a1 = values(a);
            float[] b1 = values(b);
            float[] m1 = values(opt.state().get(a.name()).m());
            float[] bad = random(rnd, 6, 1);
            bad[4] = Float.NaN;
            setGrad(a, random(rnd, 6, 1));
            setGrad(b, bad);
            IllegalStateException e = assertThrows(IllegalStateException.class, opt::step);
            assertTrue(e.getMessage().contains("h.0.attn.lora_B"), e.getMessage());
            assertBitIdentical("A (updated before B in group order)", a1, values(a));
            assertBitIdentical("B", b1, values(b));
            assertBitIdentical("A's first moment", m1, values(opt.state().get(a.name()).m()));
            assertEquals(1, opt.stepCount());
            assertEquals(1, opt.state().get(a.name()).step());
            bad[4] = Float.POSITIVE_INFINITY;
            setGrad(b, bad);
            assertThrows(IllegalStateException.class, opt::step);
        }
    }

    @Test
    void stateRoundTripResumesExactly() {
        Random rnd = new Random(9);
        OptimizerConfig cfg = OptimizerConfig.defaults();
        float[] a0 = random(rnd, 6, 1);
        float[][] grads = {random(rnd, 6, 1), random(rnd, 6, 1), random(rnd, 6, 1)};
        Parameter a = param(be, "m.lora_A", Role.LORA_A, true, a0.clone(), 2, 3);
        Parameter a2 = param(be, "m.lora_A", Role.LORA_A, true, a0.clone(), 2, 3);
        try (Optimizer opt = Optimizer.create(new AdamWPolicy(), cfg, List.of(a), List.of());
             Optimizer resumed = Optimizer.create(new AdamWPolicy(), cfg, List.of(a2), List.of())) {
            for (int t = 0; t < 2; t++) {
                setGrad(a, grads[t]);
                opt.step();
            }
            Optimizer.MomentState s = opt.state().get(a.name());
            resumed.loadState(opt.stepCount(), Map.of(a.name(),
                    new Optimizer.SavedMoments(values(s.m()), values(s.v()), s.step())));
            be.copy(a.value(), a2.value());
            setGrad(a, grads[2]);
            setGrad(a2, grads[2]);
            opt.step();
            resumed.step();
            assertBitIdentical("resumed A", values(a), values(a2));
            assertEquals(3, resumed.stepCount());
            assertThrows(IllegalArgumentException.class, () -> resumed.loadState(1,
                    Map.of("nope", new Optimizer.SavedMoments(new float[6], new float[6], 1))));
        }
    }

    @Test
    void closeReleasesTheMomentsAndDuplicateNamesAreRejected() {
        Random rnd = new Random(13);
        Parameter a = param(be, "m.lora_A", Role.LORA_A, true, random(rnd, 4, 1), 2, 2);
        Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), List.of(a), List.of());
        setGrad(a, random(rnd, 4, 1));
        opt.step();
        Optimizer.MomentState s = opt.state().get(a.name());
        opt.close();
        assertTrue(s.m().isClosed() && s.v().isClosed(), "moments released");
        assertThrows(IllegalStateException.class, opt::step);
        opt.close();   // idempotent

        Parameter same = param(be, "m.lora_A", Role.LORA_A, true, new float[4], 2, 2);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), List.of(a, same), List.of()));
        assertTrue(e.getMessage().contains("m.lora_A"), e.getMessage());
    }

    @Test
    void defaultsAreTorchAdamW() {
        OptimizerConfig c = OptimizerConfig.defaults();
        assertEquals(new OptimizerConfig(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f), c);
    }
}
