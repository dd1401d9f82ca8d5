package ai.lorakit.adapters;

import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that an adapted layer's bf16 stages (what the CUDA fast kernels read instead of the fp32 masters) hold the
 * current adapter: after the first bf16 forward they equal bf16(A) and bf16(s B) (VeRA: bf16(A_l) and
 * bf16(λb ∘ B_l ∘ λd)),
 * and after an optimizer step (which changes the masters) the next forward restages them, for both weight layouts;
 * LoRA's margin weight Wm holds W and the current s B, and takes a changed W only when told (weightChanged).
 * A stale dense stage would go unnoticed by the portable defaults, which read the masters, hence this direct check.
 */
class StagingTest {

    private static float[] rand(Random r, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    private static void assertStage(CpuBackend be, String what, Tensor stage, float[] want) {
        float[] got = be.download(stage);
        for (int i = 0; i < want.length; i++) {
            assertEquals(DType.BF16.round(want[i]), got[i], 0f, what + "[" + i + "]");
        }
    }

    private static float[] scaled(float[] v, float s) {
        float[] o = v.clone();
        for (int i = 0; i < o.length; i++) {
            o[i] *= s;
        }
        return o;
    }

    /** One forward, backward and optimizer step of the layer on random bf16 data. */
    private static void trainStep(CpuBackend be, AdaptedLinear layer, Random r, int n, int in, int out) {
        try (Tensor x = be.upload(rand(r, n * in), DType.BF16, n, in); Tensor y = be.zeros(DType.BF16, n, out);
             Tensor dy = be.upload(rand(r, n * out), DType.BF16, n, out); Tensor dx = be.zeros(DType.BF16, n, in);
             Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), layer.parameters(),
                     List.of())) {
            layer.forward(x, y);
            layer.backward(dy, dx);
            opt.step();
        }
    }

    private static void forward(CpuBackend be, AdaptedLinear layer, Random r, int n, int in, int out) {
        try (Tensor x = be.upload(rand(r, n * in), DType.BF16, n, in); Tensor y = be.zeros(DType.BF16, n, out)) {
            layer.forward(x, y);
        }
    }

    @Test
    void loraStagesFollowTheOptimizer() {
        int n = 6, in = 16, out = 24, r = 8;
        Random rnd = new Random(31);
        for (boolean fifo : new boolean[] {false, true}) {
            LoraConfig cfg = new LoraConfig(r, 16f, 0f, false, LoraConfig.Init.NONE, false, List.of("p"), Map.of(),
                    Map.of());
            try (CpuBackend be = new CpuBackend(false);
                 Tensor w = be.upload(rand(rnd, in * out), DType.BF16, fifo ? in : out, fifo ? out : in);
                 AdaptedLinear layer = AdaptedLinear.create("p", w, null, fifo, cfg, null, 5L)) {
                layer.setTraining(true);
                Tensor a = layer.parameter(Parameter.Role.LORA_A).value();
                Tensor b = layer.parameter(Parameter.Role.LORA_B).value();
                float s = layer.scaling();
                forward(be, layer, rnd, n, in, out);
                Tensor aStage = layer.scratch().get("lora.A.bf16", DType.BF16, r, in);
                Tensor sbStage = layer.scratch().get("lora.sB.bf16", DType.BF16, out, r);
                assertStage(be, "A stage fifo=" + fifo, aStage, be.download(a));
                assertStage(be, "s B stage fifo=" + fifo, sbStage, scaled(be.download(b), s));
                float[] before = be.download(b);
                trainStep(be, layer, rnd, n, in, out);
                assertNotEquals(before[0], be.download(b)[0], "the optimizer moved B");
                forward(be, layer, rnd, n, in, out);
                assertStage(be, "A stage after a step fifo=" + fifo, aStage, be.download(a));
                assertStage(be, "s B stage after a step fifo=" + fifo, sbStage, scaled(be.download(b), s));
                LoraMargins g = new LoraMargins(in, out, r, fifo, false);
                Tensor wm = layer.scratch().get("lora.Wm", DType.BF16, g.wmRows(), g.ldw());
                assertEquals(DType.BF16.round(scaled(be.download(b), s)[0]), sbOf(be, wm, g, 0, 0), 0f,
                        "Wm's s B margin after a step fifo=" + fifo);
                assertArrayEquals(be.download(w), baseOf(be, wm, g), "Wm's base block is W fifo=" + fifo);
            }
        }
    }

    @Test
    void loraWmFollowsTheWeightWhenTold() {
        int n = 6, in = 16, out = 24, r = 8;
        Random rnd = new Random(33);
        LoraConfig cfg = new LoraConfig(r, 16f, 0f, false, LoraConfig.Init.NONE, false, List.of("p"), Map.of(),
                Map.of());
        try (CpuBackend be = new CpuBackend(false);
             Tensor w = be.upload(rand(rnd, in * out), DType.BF16, out, in);
             AdaptedLinear layer = AdaptedLinear.create("p", w, null, false, cfg, null, 5L)) {
            layer.setTraining(true);
            forward(be, layer, rnd, n, in, out);
            LoraMargins g = new LoraMargins(in, out, r, false, false);
            Tensor wm = layer.scratch().get("lora.Wm", DType.BF16, g.wmRows(), g.ldw());
            float[] first = be.download(w);
            be.write(w, rand(rnd, in * out));               // W changed in place, as Delta-LoRA's update does
            forward(be, layer, rnd, n, in, out);
            assertArrayEquals(first, baseOf(be, wm, g), "not told: Wm keeps its copy (W is frozen by contract)");
            layer.weightChanged();
            forward(be, layer, rnd, n, in, out);
            assertArrayEquals(be.download(w), baseOf(be, wm, g), "told: Wm holds the new W");
            assertTrue(layer.workBytes() >= 2L * g.wmRows() * g.ldw(), "workBytes counts Wm: " + layer.workBytes());
        }
    }

    /**
     * The staged layer writes its bf16 y and dx straight from its one GEMM, rounded once: the same values as the
     * fp32 outputs rounded to bf16, bit for bit, and no fp32 temporaries (y32, dx32) in its scratch. With a bias,
     * which rides in the GEMM (Xm's ones column), for both layouts.
     */
    @Test
    void stagedLayerRoundsOnceWithoutFp32Temporaries() {
        int n = 6, in = 16, out = 24, r = 8;
        Random rnd = new Random(34);
        LoraConfig cfg = new LoraConfig(r, 16f, 0f, false, LoraConfig.Init.NONE, false, List.of("p"), Map.of(),
                Map.of());
        for (boolean fifo : new boolean[] {false, true}) {
            try (CpuBackend be = new CpuBackend(false);
                 Tensor w = be.upload(rand(rnd, in * out), DType.BF16, fifo ? in : out, fifo ? out : in);
                 Tensor bias = be.upload(rand(rnd, out), DType.BF16, out);
                 Tensor x = be.upload(rand(rnd, n * in), DType.BF16, n, in);
                 Tensor dy = be.upload(rand(rnd, n * out), DType.BF16, n, out);
                 Tensor y16 = be.zeros(DType.BF16, n, out); Tensor y32 = be.zeros(DType.F32, n, out);
                 Tensor dx16 = be.zeros(DType.BF16, n, in); Tensor dx32 = be.zeros(DType.F32, n, in);
                 AdaptedLinear layer = AdaptedLinear.create("p", w, bias, fifo, cfg, null, 5L)) {
                layer.setTraining(true);
                layer.forward(x, y16);
                layer.backward(dy, dx16);
                layer.forward(x, y32);
                layer.backward(dy, dx32);
                String tag = " fifo=" + fifo;
                assertArrayEquals(rounded(be.download(y32)), be.download(y16), "y rounded once" + tag);
                assertArrayEquals(rounded(be.download(dx32)), be.download(dx16), "dx rounded once" + tag);
                assertFalse(layer.scratch().has("y32") || layer.scratch().has("dx32"), "no fp32 temporaries" + tag);
            }
        }
    }

    private static float[] rounded(float[] v) {
        float[] o = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = DType.BF16.round(v[i]);
        }
        return o;
    }

    /**
     * VeRA's staged path (LoRA's K-concat on A_l and B' = λb ∘ B_l ∘ λd, its λ gradients derived from dB') gives
     * the unstaged path's y, dx, dλb and dλd: the same layer fed a bf16 x (staged) and the same x as fp32 (the
     * unstaged reference ops), both layouts, a layer smaller than the shared projections, random λs, with a bias.
     */
    @Test
    void veraStagedPathMatchesTheUnstagedOne() {
        int n = 10, in = 16, out = 24, inMax = 40, outMax = 32, r = 8;
        Random rnd = new Random(35);
        VeraConfig cfg = new VeraConfig(r, 0L, true, 0.1f, 0f, List.of("p"));
        for (boolean fifo : new boolean[] {false, true}) {
            try (CpuBackend be = new CpuBackend(false);
                 VeraProjections shared = VeraProjections.create(be, cfg, inMax, outMax);
                 Tensor w = be.upload(scaled(rand(rnd, in * out), 0.2f), DType.BF16, fifo ? in : out,
                         fifo ? out : in);
                 Tensor bias = be.upload(rand(rnd, out), DType.BF16, out);
                 AdaptedLinear layer = AdaptedLinear.create("p", w, bias, fifo, cfg, shared, 5L)) {
                layer.setTraining(true);
                Parameter lb = layer.parameter(Parameter.Role.VERA_LAMBDA_B);
                Parameter ld = layer.parameter(Parameter.Role.VERA_LAMBDA_D);
                be.write(lb.value(), rand(rnd, out));
                be.write(ld.value(), rand(rnd, r));
                lb.markChanged();
                ld.markChanged();
                float[] xv = rounded(rand(rnd, n * in));              // both passes read the same (bf16) values
                float[] dyv = rounded(rand(rnd, n * out));
                float[][] staged = veraPass(be, layer, xv, dyv, DType.BF16, n, in, out);
                float[][] plain = veraPass(be, layer, xv, dyv, DType.F32, n, in, out);
                String[] what = {"y", "dx", "dλb", "dλd"};
                for (int i = 0; i < what.length; i++) {
                    var res = ai.lorakit.gpu.Tolerance.BF16.compare(what[i] + " fifo=" + fifo, staged[i], plain[i]);
                    assertTrue(res.ok(), res.toString());
                }
            }
        }
    }

    /** One forward and backward of x (as dtype) and dy: {y, dx, dλb, dλd}, gradients zeroed first. */
    private static float[][] veraPass(CpuBackend be, AdaptedLinear layer, float[] xv, float[] dyv, DType dtype, int n,
                                      int in, int out) {
        Parameter lb = layer.parameter(Parameter.Role.VERA_LAMBDA_B);
        Parameter ld = layer.parameter(Parameter.Role.VERA_LAMBDA_D);
        be.fill(lb.gradForAccumulation(), 0f);
        be.fill(ld.gradForAccumulation(), 0f);
        try (Tensor x = be.upload(xv, dtype, n, in); Tensor dy = be.upload(dyv, dtype, n, out);
             Tensor y = be.zeros(dtype, n, out); Tensor dx = be.zeros(dtype, n, in)) {
            layer.forward(x, y);
            layer.backward(dy, dx);
            return new float[][] {be.download(y), be.download(dx), be.download(lb.grad()), be.download(ld.grad())};
        }
    }

    /** Wm's block holding W, in W's layout (LoraMargins). */
    private static float[] baseOf(CpuBackend be, Tensor wm, LoraMargins g) {
        float[] v = be.download(wm);
        int rows = g.fanInFanOut() ? g.in() : g.out();
        int cols = g.fanInFanOut() ? g.out() : g.in();
        float[] w = new float[rows * cols];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(v, i * g.ldw(), w, i * cols, cols);
        }
        return w;
    }

    /** Wm's copy of s B[o,j] (beside W, or below it transposed with fan_in_fan_out). */
    private static float sbOf(CpuBackend be, Tensor wm, LoraMargins g, int o, int j) {
        float[] v = be.download(wm);
        return g.fanInFanOut() ? v[(g.in() + j) * g.ldw() + o] : v[o * g.ldw() + g.in() + j];
    }

    @Test
    void veraStagesFollowTheOptimizer() {
        int n = 6, in = 16, out = 24, inMax = 24, outMax = 32, r = 8;
        Random rnd = new Random(32);
        VeraConfig cfg = new VeraConfig(r, 0L, true, 0.1f, 0f, List.of("p"));
        try (CpuBackend be = new CpuBackend(false); VeraProjections shared = VeraProjections.create(be, cfg, inMax,
                outMax); Tensor w = be.upload(rand(rnd, in * out), DType.BF16, out, in);
             AdaptedLinear layer = AdaptedLinear.create("p", w, null, false, cfg, shared, 5L)) {
            layer.setTraining(true);
            Tensor lb = layer.parameter(Parameter.Role.VERA_LAMBDA_B).value();
            be.write(lb, rand(rnd, out));                  // λb starts at 0; make the stage informative
            layer.parameter(Parameter.Role.VERA_LAMBDA_B).markChanged();
            forward(be, layer, rnd, n, in, out);
            float[] sa = be.download(shared.a());
            float[] sb = be.download(shared.b());
            float[] al = new float[r * in];
            for (int j = 0; j < r; j++) {
                System.arraycopy(sa, j * inMax, al, j * in, in);
            }
            // VeRA stages as LoRA with A = A_l and B' = λb ∘ B_l ∘ λd^T, s = 1 (MarginStage)
            Tensor aStage = layer.scratch().get("lora.A.bf16", DType.BF16, r, in);
            Tensor sbStage = layer.scratch().get("lora.sB.bf16", DType.BF16, out, r);
            Tensor ld = layer.parameter(Parameter.Role.VERA_LAMBDA_D).value();
            assertStage(be, "A_l stage", aStage, al);
            for (int step = 0; step < 2; step++) {
                float[] lbv = be.download(lb);
                float[] ldv = be.download(ld);
                float[] want = new float[out * r];
                for (int o = 0; o < out; o++) {
                    for (int j = 0; j < r; j++) {
                        want[o * r + j] = lbv[o] * sb[o * r + j] * ldv[j];
                    }
                }
                assertStage(be, "λb ∘ B_l ∘ λd stage after " + step + " steps", sbStage, want);
                trainStep(be, layer, rnd, n, in, out);
                forward(be, layer, rnd, n, in, out);
            }
            assertStage(be, "A_l stage kept", aStage, al);
        }
    }
}
