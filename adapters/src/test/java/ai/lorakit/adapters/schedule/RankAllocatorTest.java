package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves AdaLoRA's rank allocator: the budget schedule equals PEFT's formula (values computed independently in
 * Python at chosen steps, integer floor included); in a crafted case the triplets with the lowest scores are exactly
 * the ones pruned; over a whole schedule (warm-up, cubic phase with deltaT, final mask, re-masking) Λ, the scores and
 * rank_pattern equal a double-precision host re-implementation of PEFT's RankAllocator; init_r == target_r prunes
 * nothing; the mask waits for afterStep (between steps) and a forgotten afterStep is refused; skipped steps and
 * missing gradients are refused; configs are validated; the state survives a
 * checkpoint round trip.
 */
class RankAllocatorTest {

    private static final int IN = 6;
    private static final int OUT = 5;

    private static AdaLoraConfig config(int initR, int targetR, int tinit, int tfinal, int deltaT, int total) {
        return new AdaLoraConfig(initR, targetR, tinit, tfinal, deltaT, 0.85f, 0.85f, 0.5f, total, 8f, 0f,
                List.of("proj"), null);
    }

    @Test
    void budgetScheduleMatchesPeftFormulaAtChosenSteps() {
        AdaLoraConfig c = config(12, 8, 10, 20, 5, 100);
        // (step, budget, mask) from PEFT's budget_schedule evaluated in Python for init_bgt 48, target_bgt 32
        int[][] expected = {
                {0, 48, 0}, {10, 48, 0}, {11, 47, 0}, {12, 46, 0}, {15, 44, 1}, {20, 42, 1}, {30, 37, 1},
                {45, 34, 1}, {60, 32, 1}, {79, 32, 0}, {80, 32, 1}, {81, 32, 1}, {100, 32, 1}};
        for (int[] e : expected) {
            RankAllocator.Budget b = RankAllocator.budget(c, 48, 32, e[0]);
            assertEquals(e[1], b.budget(), "budget at step " + e[0]);
            assertEquals(e[2] == 1, b.mask(), "mask flag at step " + e[0]);
        }
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            for (int i = 0; i < 4; i++) {
                ls.add("h." + i + ".proj", IN, OUT, c, i);
            }
            try (RankAllocator ra = RankAllocator.create(c, ls.modules)) {
                assertEquals(48, ra.initBudget());
                assertEquals(32, ra.targetBudget());
                assertEquals(new RankAllocator.Budget(37, true), ra.budget(30));
            }
        }
    }

    /**
     * Two layers with init_r 4 (init_bgt 8), target_r 2 (target_bgt 4). Only E has a gradient, so S_k is a
     * monotone function of I_k = |E_k g_k|; at step 1 the budget is floor(4·0.9³ + 4) = 6, so the 2 triplets with the
     * smallest I are pruned: layer 0 triplet 2 (I=0.01) and layer 1 triplet 0 (I=0.02).
     */
    @Test
    void masksFollowTheScores() {
        AdaLoraConfig c = config(4, 2, 0, 0, 1, 10);
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            AdaptedLinear l0 = ls.add("h.0.proj", IN, OUT, c, 1);
            AdaptedLinear l1 = ls.add("h.1.proj", IN, OUT, c, 2);
            float[] e0 = {1f, 1f, 0.1f, 1f};
            float[] g0 = {0.5f, 0.3f, 0.1f, 0.9f};      // I = 0.5, 0.3, 0.01, 0.9
            float[] e1 = {0.2f, 1f, 1f, 1f};
            float[] g1 = {0.1f, 0.2f, 0.4f, 0.05f};     // I = 0.02, 0.2, 0.4, 0.05
            Layers.set(l0.parameter(Parameter.Role.LORA_E), e0);
            Layers.set(l1.parameter(Parameter.Role.LORA_E), e1);
            for (AdaptedLinear l : List.of(l0, l1)) {
                Layers.setGrad(l.parameter(Parameter.Role.LORA_A), new float[4 * IN]);
                Layers.setGrad(l.parameter(Parameter.Role.LORA_B), new float[OUT * 4]);
            }
            Layers.setGrad(l0.parameter(Parameter.Role.LORA_E), g0);
            Layers.setGrad(l1.parameter(Parameter.Role.LORA_E), g1);
            try (RankAllocator ra = RankAllocator.create(c, ls.modules)) {
                ra.afterOptimizerStep(0);                // step 0 <= tinit: importance only
                ra.afterStep(0);
                assertNull(ra.rankPattern(), "no allocation during warm-up");
                assertArrayEquals(e0, Layers.values(l0.parameter(Parameter.Role.LORA_E)));
                assertEquals(6, ra.budget(1).budget());
                ra.afterOptimizerStep(1);
                assertArrayEquals(e0, Layers.values(l0.parameter(Parameter.Role.LORA_E)),
                        "the mask waits for afterStep (outside the device step)");
                IllegalStateException due = assertThrows(IllegalStateException.class, ra::state);
                assertTrue(due.getMessage().contains("afterStep(1)"), due.getMessage());
                due = assertThrows(IllegalStateException.class, () -> ra.afterOptimizerStep(2));
                assertTrue(due.getMessage().contains("still due"), due.getMessage());
                assertThrows(IllegalStateException.class, () -> ra.afterStep(0), "afterStep of the last step only");
                ra.afterStep(1);
                assertArrayEquals(new float[] {1f, 1f, 0f, 1f}, Layers.values(l0.parameter(Parameter.Role.LORA_E)));
                assertArrayEquals(new float[] {0f, 1f, 1f, 1f}, Layers.values(l1.parameter(Parameter.Role.LORA_E)));
                Map<String, boolean[]> rp = ra.rankPattern();
                assertArrayEquals(new boolean[] {true, true, false, true}, rp.get("h.0.proj.lora_E"));
                assertArrayEquals(new boolean[] {false, true, true, true}, rp.get("h.1.proj.lora_E"));
                assertEquals(rp.keySet(), ra.adapterConfig().rankPattern().keySet());
            }
        }
    }

    /** Whole schedule against {@link PeftReference}: warm-up, cubic phase with deltaT 2, final mask, re-masking. */
    @Test
    void wholeScheduleEqualsHostReimplementationOfPeft() {
        int r = 4;
        AdaLoraConfig c = config(r, 2, 2, 3, 2, 12);     // T = 9
        int layers = 3;
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            for (int i = 0; i < layers; i++) {
                ls.add("h." + i + ".proj", IN, OUT, c, 10 + i);
            }
            PeftReference ref = new PeftReference(c, layers, r, IN, OUT);
            Random rnd = new Random(99);
            try (RankAllocator ra = RankAllocator.create(c, ls.modules)) {
                for (int step = 0; step < 12; step++) {
                    // "optimizer": perturb every A, E, B, set fresh random gradients; mirror into the reference
                    for (int i = 0; i < layers; i++) {
                        AdaptedLinear m = ls.modules.get(i);
                        float[][] p = new float[3][];
                        float[][] g = new float[3][];
                        Parameter[] ps = {m.parameter(Parameter.Role.LORA_A), m.parameter(Parameter.Role.LORA_E),
                                m.parameter(Parameter.Role.LORA_B)};
                        for (int j = 0; j < 3; j++) {
                            p[j] = Layers.values(ps[j]);
                            float[] d = Layers.uniform(rnd, p[j].length, 0.3);
                            for (int k = 0; k < d.length; k++) {
                                p[j][k] += d[k];
                            }
                            g[j] = Layers.uniform(rnd, p[j].length, 1.0);
                            Layers.set(ps[j], p[j]);
                            Layers.setGrad(ps[j], g[j]);
                        }
                        ref.setLayer(i, p[0], p[1], p[2], g[0], g[1], g[2]);
                    }
                    ra.afterOptimizerStep(step);
                    ra.afterStep(step);
                    ref.updateAndAllocate(step);
                    for (int i = 0; i < layers; i++) {
                        String e = "h." + i + ".proj.lora_E";
                        float[] eDev = Layers.values(ls.modules.get(i).parameter(Parameter.Role.LORA_E));
                        assertArrayEquals(ref.eAsFloat(i), eDev, "Λ of layer " + i + " after step " + step);
                        if (ref.pattern != null) {
                            assertArrayEquals(ref.pattern[i], ra.rankPattern().get(e), "rank_pattern " + e
                                    + " after step " + step);
                        }
                    }
                    if (ref.pattern == null) {
                        assertNull(ra.rankPattern(), "no pattern yet at step " + step);
                    }
                    if (step < 9) {
                        Map<String, float[]> s = ra.tripletScores();
                        for (int i = 0; i < layers; i++) {
                            Layers.assertClose("scores of layer " + i + " at step " + step,
                                    s.get("h." + i + ".proj.lora_E"), ref.scores(i));
                        }
                    }
                }
                assertTrue(ra.finalized());
                int kept = 0;
                for (boolean[] k : ra.rankPattern().values()) {
                    for (boolean b : k) {
                        kept += b ? 1 : 0;
                    }
                }
                assertTrue(kept <= ra.targetBudget(), "final budget " + ra.targetBudget() + " kept " + kept);
                assertTrue(ref.masksApplied >= 4, "the schedule must have masked several times: " + ref.masksApplied);
            }
        }
    }

    @Test
    void equalInitAndTargetRankPrunesNothing() {
        AdaLoraConfig c = config(3, 3, 0, 1, 1, 5);
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            AdaptedLinear l0 = ls.add("h.0.proj", IN, OUT, c, 1);
            ls.add("h.1.proj", IN, OUT, c, 2);
            Random rnd = new Random(3);
            float[] e = {0.1f, 0.2f, 0.3f};
            Layers.set(l0.parameter(Parameter.Role.LORA_E), e);
            try (RankAllocator ra = RankAllocator.create(c, ls.modules)) {
                for (int step = 0; step < 7; step++) {
                    for (AdaptedLinear m : ls.modules) {
                        for (Parameter p : m.parameters()) {
                            Layers.setGrad(p, Layers.uniform(rnd, (int) p.value().numel(), 1));
                        }
                    }
                    ra.afterOptimizerStep(step);
                    ra.afterStep(step);
                }
                assertTrue(ra.finalized());
                assertArrayEquals(e, Layers.values(l0.parameter(Parameter.Role.LORA_E)), "nothing may be masked");
                for (boolean[] k : ra.rankPattern().values()) {
                    assertArrayEquals(new boolean[] {true, true, true}, k);
                }
                assertNotNull(ra.adapterConfig().rankPattern());
            }
        }
    }

    @Test
    void skippedStepsAndMissingGradientsAreRefused() {
        AdaLoraConfig c = config(3, 2, 0, 0, 1, 10);
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            AdaptedLinear l0 = ls.add("h.0.proj", IN, OUT, c, 1);
            try (RankAllocator ra = RankAllocator.create(c, ls.modules)) {
                IllegalStateException noGrad = assertThrows(IllegalStateException.class, () -> ra.afterOptimizerStep(0));
                assertTrue(noGrad.getMessage().contains("zeroGrad"), noGrad.getMessage());
                for (Parameter p : l0.parameters()) {
                    Layers.setGrad(p, new float[(int) p.value().numel()]);
                }
                ra.afterOptimizerStep(0);
                ra.afterStep(0);
                ra.afterOptimizerStep(1);
                ra.afterStep(1);
                IllegalStateException skip = assertThrows(IllegalStateException.class, () -> ra.afterOptimizerStep(3));
                assertTrue(skip.getMessage().contains("every optimizer step"), skip.getMessage());
            }
        }
    }

    @Test
    void configValidationErrorsNameTheField() {
        String[][] bad = {
                {"total_step", "0"}, {"tinit", "tinit"}, {"orth_reg_weight", "orth"}, {"target_r", "target"},
                {"deltaT", "deltaT"}};
        List<Runnable> makers = List.of(
                () -> config(4, 2, 0, 0, 1, 0),
                () -> config(4, 2, 5, 5, 1, 10),             // tinit 5 >= total - tfinal = 5: no budgeting phase
                () -> new AdaLoraConfig(4, 2, 0, 0, 1, 0.85f, 0.85f, -0.1f, 10, 8f, 0f, List.of("proj"), null),
                () -> config(4, 5, 0, 0, 1, 10),
                () -> config(4, 2, 0, 0, 0, 10));
        for (int i = 0; i < bad.length; i++) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, makers.get(i)::run);
            assertTrue(e.getMessage().startsWith(bad[i][0]), e.getMessage());
        }
        AdaLoraConfig c = config(4, 2, 0, 0, 1, 10);
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            assertThrows(IllegalArgumentException.class, () -> RankAllocator.create(c, List.of()));
            AdaptedLinear lora = ls.add("h.0.lora", IN, OUT, LoraConfig.of(2, 2f, "lora"), 1);
            IllegalArgumentException notAda = assertThrows(IllegalArgumentException.class,
                    () -> RankAllocator.create(c, List.of(lora)));
            assertTrue(notAda.getMessage().contains("not ADALORA"), notAda.getMessage());
            AdaptedLinear other = ls.add("h.1.proj", IN, OUT, config(4, 2, 0, 0, 1, 20), 2);
            assertThrows(IllegalArgumentException.class, () -> RankAllocator.create(c, List.of(other)));
            Map<String, boolean[]> rp = Map.of("h.2.proj.lora_E", new boolean[] {true, false, true, false});
            AdaLoraConfig pruned = new AdaLoraConfig(4, 2, 0, 0, 1, 0.85f, 0.85f, 0.5f, 10, 8f, 0f, List.of("proj"), rp);
            AdaptedLinear small = ls.add("h.2.proj", IN, OUT, pruned, 3);
            IllegalArgumentException rank = assertThrows(IllegalArgumentException.class,
                    () -> RankAllocator.create(pruned, List.of(small)));
            assertTrue(rank.getMessage().contains("full-rank"), rank.getMessage());
        }
    }

    @Test
    void stateSurvivesACheckpointRoundTrip() {
        AdaLoraConfig c = config(4, 2, 0, 2, 1, 8);      // T = 6
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            ls.add("h.0.proj", IN, OUT, c, 1);
            ls.add("h.1.proj", IN, OUT, c, 2);
            Random rnd = new Random(5);
            try (RankAllocator first = RankAllocator.create(c, ls.modules);
                 RankAllocator second = RankAllocator.create(c, ls.modules)) {
                for (int step = 0; step <= 4; step++) {
                    for (AdaptedLinear m : ls.modules) {
                        for (Parameter p : m.parameters()) {
                            Layers.setGrad(p, Layers.uniform(rnd, (int) p.value().numel(), 1));
                        }
                    }
                    first.afterOptimizerStep(step);
                    first.afterStep(step);
                }
                Map<String, Tensor> saved = first.state();
                Map<String, Tensor> into = second.state();
                assertEquals(saved.keySet(), into.keySet());
                saved.forEach((k, t) -> be.copy(t, into.get(k)));
                second.stateRestored();
                assertEquals(4, second.lastStep());
                assertFalse(second.finalized());
                for (String k : first.rankPattern().keySet()) {
                    assertArrayEquals(first.rankPattern().get(k), second.rankPattern().get(k), k);
                    assertArrayEquals(first.tripletScores().get(k), second.tripletScores().get(k), k);
                }
                assertThrows(IllegalStateException.class, () -> second.afterOptimizerStep(6), "step 5 comes next");
                second.afterOptimizerStep(5);
                second.afterStep(5);
            }
        }
    }

    // ---------------------------------------------------------------- reference

    /** PEFT's RankAllocator + update_and_allocate, re-written in double on the host from VARIANTS.md section 6. */
    static final class PeftReference {
        final AdaLoraConfig c;
        final int n;
        final int r;
        final int in;
        final int out;
        final double[][] a;
        final double[][] e;
        final double[][] b;
        final double[][][] grads;
        final double[][][] ipt;
        final double[][][] unc;
        boolean[][] pattern;
        int masksApplied;

        PeftReference(AdaLoraConfig c, int n, int r, int in, int out) {
            this.c = c;
            this.n = n;
            this.r = r;
            this.in = in;
            this.out = out;
            a = new double[n][];
            e = new double[n][];
            b = new double[n][];
            grads = new double[n][3][];
            ipt = new double[n][3][];
            unc = new double[n][3][];
            int[] sizes = {r * in, r, out * r};
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < 3; j++) {
                    ipt[i][j] = new double[sizes[j]];
                    unc[i][j] = new double[sizes[j]];
                }
            }
        }

        void setLayer(int i, float[] av, float[] ev, float[] bv, float[] ga, float[] ge, float[] gb) {
            a[i] = d(av);
            e[i] = d(ev);
            b[i] = d(bv);
            grads[i][0] = d(ga);
            grads[i][1] = d(ge);
            grads[i][2] = d(gb);
        }

        void updateAndAllocate(int step) {
            int tEnd = c.totalStep() - c.tfinal();
            if (step < tEnd) {
                for (int i = 0; i < n; i++) {
                    double[][] p = {a[i], e[i], b[i]};
                    for (int j = 0; j < 3; j++) {
                        for (int k = 0; k < p[j].length; k++) {
                            double I = Math.abs(p[j][k] * grads[i][j][k]);
                            ipt[i][j][k] = c.beta1() * ipt[i][j][k] + (1 - c.beta1()) * I;
                            unc[i][j][k] = c.beta2() * unc[i][j][k] + (1 - c.beta2()) * Math.abs(I - ipt[i][j][k]);
                        }
                    }
                }
                int[] bm = budget(step);
                if (bm[1] == 1) {
                    mask(bm[0]);
                }
            } else if (step == tEnd) {
                mask(budget(step)[0]);
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < 3; j++) {
                        Arrays.fill(ipt[i][j], 0);
                        Arrays.fill(unc[i][j], 0);
                    }
                }
            } else {
                for (int i = 0; i < n; i++) {
                    for (int k = 0; k < r; k++) {
                        if (!pattern[i][k]) {
                            e[i][k] = 0;
                        }
                    }
                }
            }
        }

        int[] budget(int step) {
            int init = n * r;
            int target = n * c.targetR();
            int tEnd = c.totalStep() - c.tfinal();
            if (step <= c.tinit()) {
                return new int[] {init, 0};
            }
            if (step > tEnd) {
                return new int[] {target, 1};
            }
            double mul = 1 - (double) (step - c.tinit()) / (tEnd - c.tinit());
            return new int[] {(int) ((init - target) * mul * mul * mul + target), step % c.deltaT() == 0 ? 1 : 0};
        }

        double[] scores(int i) {
            double[] s = new double[r];
            for (int k = 0; k < r; k++) {
                double sa = 0;
                for (int col = 0; col < in; col++) {
                    sa += ipt[i][0][k * in + col] * unc[i][0][k * in + col];
                }
                double sb = 0;
                for (int o = 0; o < out; o++) {
                    sb += ipt[i][2][o * r + k] * unc[i][2][o * r + k];
                }
                s[k] = ipt[i][1][k] * unc[i][1][k] + (sa / in + sb / out);
            }
            return s;
        }

        void mask(int budget) {
            double[][] s = new double[n][];
            double[] all = new double[n * r];
            for (int i = 0; i < n; i++) {
                s[i] = scores(i);
                System.arraycopy(s[i], 0, all, i * r, r);
            }
            Arrays.sort(all);
            double thr = all[n * r - budget - 1];
            pattern = new boolean[n][r];
            for (int i = 0; i < n; i++) {
                for (int k = 0; k < r; k++) {
                    pattern[i][k] = s[i][k] > thr;
                    if (!pattern[i][k]) {
                        e[i][k] = 0;
                    }
                }
            }
            masksApplied++;
        }

        float[] eAsFloat(int i) {
            float[] f = new float[r];
            for (int k = 0; k < r; k++) {
                f[k] = (float) e[i][k];
            }
            return f;
        }

        private static double[] d(float[] f) {
            double[] x = new double[f.length];
            for (int i = 0; i < f.length; i++) {
                x[i] = f[i];
            }
            return x;
        }
    }
}
