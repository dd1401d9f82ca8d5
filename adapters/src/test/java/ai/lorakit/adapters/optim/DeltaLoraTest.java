package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves Delta-LoRA: over several real training steps (forward, backward, AdamW, hook) W follows
 * W += λ·s·(B_t A_t − B_{t−1} A_{t−1}) from the step after the first snapshot at t = K+1, computed independently in
 * double from the recorded A, B (plain and fan_in_fan_out layers), and telescopes to W_0 + λ·s·(B_T A_T − B_K' A_K');
 * the rank-2r export (A' = [A_T; A_K'], B' = [(1+λ)B_T, −λB_K'], r' = 2r, alpha' = 2alpha, or alpha·√2 with rsLoRA)
 * on the ORIGINAL W reproduces the trained layer's output, also after a PEFT save and load, and its reconstructed
 * W_0 equals the original; a BF16 W is updated through an fp32 master; dropout, other adapters and other policies
 * are refused, and so are skipped, early or missing hook calls; the state round-trips.
 */
class DeltaLoraTest {

    private static final int IN = 6;
    private static final int OUT = 5;
    private static final int R = 2;
    private static final int N = 4;

    /** One layer with its own W (copy of the original kept), optimizer and updater. */
    private static final class Run implements AutoCloseable {
        final Backend be;
        final Tensor w;
        final Tensor bias;
        final float[] w0;
        final AdaptedLinear layer;
        final Optimizer opt;
        final DeltaLoraUpdater hook;
        final List<float[]> as = new ArrayList<>();
        final List<float[]> bs = new ArrayList<>();
        final Random rnd = new Random(21);

        Run(Backend be, LoraConfig cfg, boolean fifo, DeltaLoraPolicy policy, DType wType) {
            this.be = be;
            Random r = new Random(3);
            w0 = Fixture.random(r, OUT * IN, 0.5);
            w = be.upload(w0, wType, fifo ? new int[] {IN, OUT} : new int[] {OUT, IN});
            bias = be.upload(Fixture.random(r, OUT, 0.1), OUT);
            layer = AdaptedLinear.create("h.0.proj", w, bias, fifo, cfg, null, 5);
            opt = Optimizer.create(policy, OptimizerConfig.defaults().withLr(0.02f), layer.parameters(), List.of());
            hook = DeltaLoraUpdater.create(opt, List.of(layer));
        }

        /** One training step t (0-based): forward/backward on random data, AdamW, the hook; records A, B. */
        void step(int t) {
            layer.setTraining(true);
            try (Tensor x = be.upload(Fixture.random(rnd, N * IN, 1), N, IN); Tensor y = Fresh.forward(layer, x);
                 Tensor g = be.upload(Fixture.random(rnd, N * OUT, 1), N, OUT); Tensor dx = Fresh.backward(layer, g)) {
                assertEquals(N * IN, dx.numel());
            }
            opt.step();
            hook.afterOptimizerStep(t);
            opt.zeroGrad();
            as.add(Fixture.values(layer.parameter(Parameter.Role.LORA_A)));
            bs.add(Fixture.values(layer.parameter(Parameter.Role.LORA_B)));
        }

        float[] output(float[] x) {
            layer.setTraining(false);
            try (Tensor xt = be.upload(x, N, IN); Tensor y = Fresh.forward(layer, xt)) {
                return be.download(y);
            }
        }

        @Override
        public void close() {
            hook.close();
            opt.close();
            layer.close();
            w.close();
            bias.close();
        }
    }

    /** B A in double, [out,in]. */
    private static double[] ba(float[] b, float[] a) {
        double[] d = new double[OUT * IN];
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < IN; i++) {
                double s = 0;
                for (int k = 0; k < R; k++) {
                    s += (double) b[o * R + k] * a[k * IN + i];
                }
                d[o * IN + i] = s;
            }
        }
        return d;
    }

    /** [out,in] values in W's layout. */
    private static double[] layout(double[] outIn, boolean fifo) {
        if (!fifo) {
            return outIn;
        }
        double[] t = new double[outIn.length];
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < IN; i++) {
                t[i * OUT + o] = outIn[o * IN + i];
            }
        }
        return t;
    }

    @Test
    void inPlaceUpdateEqualsItsFormulaOverSeveralSteps() {
        for (boolean fifo : new boolean[] {false, true}) {
            float lambda = 2f;
            int k = 2;
            try (Backend be = new CpuBackend();
                 Run run = new Run(be, LoraConfig.of(R, 4f, "proj"), fifo, new DeltaLoraPolicy(lambda, k), DType.F32)) {
                double s = run.layer.scaling();
                double[] want = Fixture.toDouble(run.w0);                 // W in its layout (fifo: w0 read as [in,out])
                for (int t = 0; t < 7; t++) {
                    run.step(t);
                    int done = t + 1;
                    if (done == k + 1) {
                        assertTrue(run.hook.snapshotted(), "first step past K only snapshots");
                    }
                    if (done > k + 1) {
                        double[] now = layout(ba(run.bs.get(t), run.as.get(t)), fifo);
                        double[] prev = layout(ba(run.bs.get(t - 1), run.as.get(t - 1)), fifo);
                        for (int i = 0; i < want.length; i++) {
                            want[i] += lambda * s * (now[i] - prev[i]);
                        }
                    }
                    Tolerance.Result r = Tolerance.F32.compare("W after step " + t + (fifo ? " (fifo)" : ""),
                            be.download(run.w), want);
                    assertTrue(r.ok(), r.describe());
                    if (done <= k + 1) {
                        assertArrayEquals(run.w0, be.download(run.w), "W untouched up to the snapshot step");
                    }
                }
                // telescoped: W_T = W_0 + λ s (B_T A_T − B_K' A_K'), K' = the snapshot (after step index k)
                double[] bt = layout(ba(run.bs.get(6), run.as.get(6)), fifo);
                double[] bk = layout(ba(run.bs.get(k), run.as.get(k)), fifo);
                double[] tel = new double[want.length];
                for (int i = 0; i < tel.length; i++) {
                    tel[i] = run.w0[i] + lambda * s * (bt[i] - bk[i]);
                }
                Fixture.assertClose("telescoped W" + (fifo ? " (fifo)" : ""), be.download(run.w), tel);
                assertFalse(java.util.Arrays.equals(run.w0, be.download(run.w)), "W must have moved");
            }
        }
    }

    @Test
    void rankTwoRExportReproducesTheTrainedLayerOnTheOriginalW(@TempDir Path dir) throws Exception {
        for (boolean rslora : new boolean[] {false, true}) {
            LoraConfig cfg = LoraConfig.of(R, 4f, "proj").withRslora(rslora);
            try (Backend be = new CpuBackend();
                 Run run = new Run(be, cfg, false, new DeltaLoraPolicy(2f, 1), DType.F32)) {
                for (int t = 0; t < 6; t++) {
                    run.step(t);
                }
                float[] x = Fixture.random(new Random(9), N * IN, 1);
                float[] trained = run.output(x);
                DeltaLoraUpdater.Export ex = run.hook.export(cfg);
                assertEquals(2 * R, ex.config().r());
                assertEquals(rslora ? 4f * (float) Math.sqrt(2) : 8f, ex.config().alpha(), 1e-6f);
                DeltaLoraUpdater.ExportedModule em = ex.modules().getFirst();
                assertEquals(2 * R * IN, em.a().length);
                assertEquals(OUT * 2 * R, em.b().length);
                Fixture.assertClose("reconstructed W_0", em.originalWeight(), Fixture.toDouble(run.w0));
                // a plain rank-2r LoRA on the ORIGINAL W
                try (Tensor w0 = be.upload(run.w0, OUT, IN);
                     AdaptedLinear exported = AdaptedLinear.create("h.0.proj", w0, run.bias, false, ex.config(), null, 1)) {
                    copy(be, exported.parameter(Parameter.Role.LORA_A), em.a());
                    copy(be, exported.parameter(Parameter.Role.LORA_B), em.b());
                    float[] got;
                    try (Tensor xt = be.upload(x, N, IN); Tensor y = Fresh.forward(exported, xt)) {
                        got = be.download(y);
                    }
                    Fixture.assertClose("rank-2r export" + (rslora ? " (rsLoRA)" : ""), got, Fixture.toDouble(trained));
                }
                // and through the PEFT files
                Path out = dir.resolve(rslora ? "rs" : "plain");
                DeltaLoraUpdater.save(ex, be, out, "base");
                assertEquals(2 * R, ((LoraConfig) PeftAdapterIO.readConfig(out)).r());
                try (Tensor w0 = be.upload(run.w0, OUT, IN);
                     AdaptedLinear loaded = AdaptedLinear.create("h.0.proj", w0, run.bias, false, ex.config(), null, 2)) {
                    PeftAdapterIO.load(out, List.of(loaded), null);
                    try (Tensor xt = be.upload(x, N, IN); Tensor y = Fresh.forward(loaded, xt)) {
                        Fixture.assertClose("export loaded from PEFT files", be.download(y), Fixture.toDouble(trained));
                    }
                }
            }
        }
    }

    @Test
    void exportBeforeAnyUpdateIsTheCurrentLora() {
        try (Backend be = new CpuBackend();
             Run run = new Run(be, LoraConfig.of(R, 4f, "proj"), false, DeltaLoraPolicy.defaults(), DType.F32)) {
            run.step(0);
            float[] x = Fixture.random(new Random(2), N * IN, 1);
            float[] trained = run.output(x);
            DeltaLoraUpdater.Export ex = run.hook.export(LoraConfig.of(R, 4f, "proj"));
            DeltaLoraUpdater.ExportedModule em = ex.modules().getFirst();
            assertArrayEquals(run.w0, em.originalWeight(), "W_0 = W before K");
            try (Tensor w0 = be.upload(run.w0, OUT, IN);
                 AdaptedLinear exported = AdaptedLinear.create("h.0.proj", w0, run.bias, false, ex.config(), null, 1)) {
                copy(be, exported.parameter(Parameter.Role.LORA_A), em.a());
                copy(be, exported.parameter(Parameter.Role.LORA_B), em.b());
                try (Tensor xt = be.upload(x, N, IN); Tensor y = Fresh.forward(exported, xt)) {
                    Fixture.assertClose("export at t <= K", be.download(y), Fixture.toDouble(trained));
                }
            }
        }
    }

    @Test
    void bf16WeightIsUpdatedThroughAnFp32Master() {
        float lambda = 2f;
        try (Backend be = new CpuBackend()) {
            float[] w0 = Fixture.random(new Random(1), OUT * IN, 4);
            try (Tensor w = be.upload(w0, DType.BF16, OUT, IN);
                 AdaptedLinear layer = AdaptedLinear.create("p", w, null, false,
                         LoraConfig.of(R, 4f, "p").withInit(LoraConfig.Init.NONE), null, 3);
                 Optimizer opt = Optimizer.create(new DeltaLoraPolicy(lambda, 0), OptimizerConfig.defaults()
                         .withLr(1e-4f).withWeightDecay(0f), layer.parameters(), List.of());
                 DeltaLoraUpdater hook = DeltaLoraUpdater.create(opt, List.of(layer))) {
                float[] wStart = be.download(w);
                double[] master = Fixture.toDouble(wStart);
                double s = layer.scaling();
                Random rnd = new Random(4);
                float[] aPrev = null;
                float[] bPrev = null;
                for (int t = 0; t < 8; t++) {
                    for (Parameter p : layer.parameters()) {
                        Fixture.setGrad(p, Fixture.random(rnd, (int) p.value().numel(), 1));
                    }
                    opt.step();
                    hook.afterOptimizerStep(t);
                    float[] a = Fixture.values(layer.parameter(Parameter.Role.LORA_A));
                    float[] b = Fixture.values(layer.parameter(Parameter.Role.LORA_B));
                    if (aPrev != null) {
                        double[] now = ba(b, a);
                        double[] prev = ba(bPrev, aPrev);
                        for (int i = 0; i < master.length; i++) {
                            master[i] += lambda * s * (now[i] - prev[i]);
                        }
                    }
                    aPrev = a;
                    bPrev = b;
                }
                Tensor m = hook.state().get("p.weight.fp32_master");
                Fixture.assertClose("fp32 master", be.download(m), master);
                float[] wNow = be.download(w);
                float[] rounded = be.download(m);
                for (int i = 0; i < rounded.length; i++) {
                    rounded[i] = DType.BF16.round(rounded[i]);
                }
                assertArrayEquals(rounded, wNow, "W = bf16(master)");
                double moved = 0;
                for (int i = 0; i < master.length; i++) {
                    moved = Math.max(moved, Math.abs(master[i] - wStart[i]));
                }
                assertTrue(moved > 1e-5, "the updates must be visible in the master: " + moved);
            }
        }
    }

    @Test
    void dropoutAndOtherAdaptersAndPoliciesAreRefused() {
        try (Backend be = new CpuBackend(); Tensor w = be.upload(new float[OUT * IN], OUT, IN)) {
            try (AdaptedLinear drop = AdaptedLinear.create("h.0.proj", w, null, false,
                    LoraConfig.of(R, 4f, "proj").withDropout(0.1f), null, 1);
                 Optimizer opt = Optimizer.create(DeltaLoraPolicy.defaults(), OptimizerConfig.defaults(),
                         drop.parameters(), List.of())) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> DeltaLoraUpdater.create(opt, List.of(drop)));
                assertTrue(e.getMessage().contains("refuses dropout") && e.getMessage().contains("h.0.proj")
                        && e.getMessage().contains("0.1"), e.getMessage());
            }
            try (AdaptedLinear dora = AdaptedLinear.create("d", w, null, false,
                    LoraConfig.of(R, 4f, "d").withDora(true), null, 1);
                 Optimizer opt = Optimizer.create(DeltaLoraPolicy.defaults(), OptimizerConfig.defaults(),
                         dora.parameters(), List.of());
                 Optimizer adam = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), dora.parameters(),
                         List.of())) {
                assertThrows(IllegalArgumentException.class, () -> DeltaLoraUpdater.create(opt, List.of(dora)));
                IllegalArgumentException p = assertThrows(IllegalArgumentException.class,
                        () -> DeltaLoraUpdater.create(adam, List.of(dora)));
                assertTrue(p.getMessage().contains("DeltaLoraPolicy"), p.getMessage());
                assertEquals(1, opt.groups().size(), "Delta-LoRA optimises A and B as plain AdamW: one group");
            }
        }
        assertThrows(IllegalArgumentException.class, () -> new DeltaLoraPolicy(-1f, 500));
        assertThrows(IllegalArgumentException.class, () -> new DeltaLoraPolicy(Float.NaN, 500));
        assertThrows(IllegalArgumentException.class, () -> new DeltaLoraPolicy(2f, -1));
        assertEquals(new DeltaLoraPolicy(2f, 500), DeltaLoraPolicy.defaults());
    }

    @Test
    void missedEarlyOrSkippedCallsAreRefused() {
        try (Backend be = new CpuBackend();
             Run run = new Run(be, LoraConfig.of(R, 4f, "proj"), false, new DeltaLoraPolicy(2f, 0), DType.F32)) {
            run.step(0);
            run.step(1);
            IllegalStateException early = assertThrows(IllegalStateException.class, () -> run.hook.afterOptimizerStep(2));
            assertTrue(early.getMessage().contains("optimizer.step()"), early.getMessage());
            run.opt.step();                                   // step 2 taken, hook forgotten
            IllegalStateException export = assertThrows(IllegalStateException.class,
                    () -> run.hook.export(LoraConfig.of(R, 4f, "proj")));
            assertTrue(export.getMessage().contains("every optimizer step"), export.getMessage());
            run.opt.step();                                   // step 3
            IllegalStateException skip = assertThrows(IllegalStateException.class, () -> run.hook.afterOptimizerStep(3));
            assertTrue(skip.getMessage().contains("after step 1"), skip.getMessage());
        }
    }

    @Test
    void stateRoundTrips() {
        try (Backend be = new CpuBackend();
             Run run = new Run(be, LoraConfig.of(R, 4f, "proj"), false, new DeltaLoraPolicy(2f, 1), DType.F32)) {
            for (int t = 0; t < 4; t++) {
                run.step(t);
            }
            Map<String, Tensor> st = run.hook.state();
            assertTrue(st.containsKey("h.0.proj.weight"), "W is part of the state: " + st.keySet());
            assertTrue(st.containsKey("h.0.proj.delta_lora.A_first"), st.keySet().toString());
            try (DeltaLoraUpdater fresh = DeltaLoraUpdater.create(run.opt, List.of(run.layer))) {
                Map<String, Tensor> into = fresh.state();
                assertEquals(st.keySet(), into.keySet());
                st.forEach((k, t) -> {
                    if (into.get(k) != t) {
                        be.copy(t, into.get(k));
                    }
                });
                fresh.stateRestored();
                assertTrue(fresh.snapshotted());
                run.opt.step();
                fresh.afterOptimizerStep(4);                  // continues where the first one stopped
                assertThrows(IllegalStateException.class, () -> fresh.afterOptimizerStep(6));
            }
        }
    }

    private static void copy(Backend be, Parameter p, float[] v) {
        try (Tensor t = be.upload(v, p.value().shape())) {
            be.copy(t, p.value());
        }
    }
}
