package ai.lorakit.gpu.cuda;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on the fake driver (kernels recorded, not run), that an adapted torch-Linear layer (W [out,in]) in the
 * bf16 policy reaches the fast kernels through its layer-owned bf16 stages: LoRA stages A and s B once
 * (lora_margin_fwd_kernel1 twice) and again only after a parameter changed; its forward is the K-concat of
 * LoraMargins: the shrink reads the staged A and packs x and S into Xm, then ONE GEMM over in + r reads Xm and Wm;
 * its backward's lora_linear_bwd_x_kernel1 reads that S with the staged s B and packs dy and dS into dYm, then ONE
 * GEMM over out + r gives dx and one more dA (pointers, pitches and sizes compared); VeRA runs the same kernels on
 * A_l and the folded λb ∘ B_l ∘ λd (s = 1), restaged when a λ changed; an r that is not a multiple
 * of 8 declines the backward kernel (portable path); fp32 activations stay off the staged path; Delta-LoRA's
 * master update is one launch with the master's address, in both layouts.
 */
class FastTierLayerTest {
    private static final int N = 16;
    private static final int IN = 32;
    private static final int OUT = 48;
    private FakeDriver driver;
    private CudaBackend be;

    @BeforeEach
    void open() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        driver = new FakeDriver();
        be = ModelSteadyStateTest.fakeBackend(driver);
    }

    @AfterEach
    void close() {
        if (be != null) {
            be.close();
        }
    }

    private List<FakeDriver.Launch> fastSince(int from) {
        return driver.launches.subList(from, driver.launches.size()).stream()
                .filter(l -> FastTierReachabilityTest.fast(l.kernel())).toList();
    }

    private static List<String> names(List<FakeDriver.Launch> ls) {
        return ls.stream().map(FakeDriver.Launch::kernel).toList();
    }

    /** The portable GEMM launches since {@code from} (the fake backend has no cuBLAS), as their parameter slots. */
    private List<long[]> gemmsSince(int from) {
        return driver.launches.subList(from, driver.launches.size()).stream()
                .filter(l -> l.kernel().equals("gemm_fwd_kernel1")).map(FakeDriver.Launch::slots).toList();
    }

    /**
     * gemm_fwd_kernel1(A, dtA, B, dtB, C, dtC, transA, transB, m, n, k, alpha, beta, offA, lda, strideA, offB, ldb,
     * ...): which buffers, transposes, sizes and pitches.
     */
    private static void assertGemm(long[] g, long a, long b, boolean transA, boolean transB, int m, int n, int k,
                                   int lda, int ldb) {
        assertEquals(List.of(a, b), List.of(g[0], g[2]), "operands");
        assertEquals(List.of(transA ? 1 : 0, transB ? 1 : 0, m, n, k, lda, ldb),
                List.of((int) g[6], (int) g[7], (int) g[8], (int) g[9], (int) g[10], (int) g[14], (int) g[17]),
                "transA, transB, m, n, k, lda, ldb");
    }

    private static LoraConfig lora(int r) {
        return new LoraConfig(r, 16f, 0f, false, LoraConfig.Init.NONE, false, List.of("proj"), Map.of(), Map.of());
    }

    @Test
    void loraLinearLayoutStagesOnceAndFeedsTheKernels() {
        try (Tensor w = be.zeros(DType.BF16, OUT, IN); Tensor bias = be.zeros(DType.BF16, OUT);
             Tensor x = be.zeros(DType.BF16, N, IN); Tensor y = be.zeros(DType.BF16, N, OUT);
             Tensor dy = be.zeros(DType.BF16, N, OUT); Tensor dx = be.zeros(DType.BF16, N, IN);
             AdaptedLinear layer = AdaptedLinear.create("proj", w, bias, false, lora(8), null, 3L)) {
            layer.setTraining(true);
            int from = driver.launches.size();
            int fwdFrom = from;
            layer.forward(x, y);
            List<FakeDriver.Launch> fwd = fastSince(from);
            assertEquals(List.of("lora_margin_fwd_kernel1", "lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2"),
                    names(fwd));
            long sbStage = fwd.get(0).slots()[3];          // (A, B, s, Wm, ldw, out, in, r): Wm = s B's stage
            long aStage = fwd.get(1).slots()[3];
            long[] m0 = fwd.get(0).slots();
            long[] m1 = fwd.get(1).slots();
            Tensor a = layer.parameter(Parameter.Role.LORA_A).value();
            Tensor b = layer.parameter(Parameter.Role.LORA_B).value();
            assertEquals(be.address("test", a), m0[0]);
            assertEquals(be.address("test", b), m0[1]);
            assertEquals(layer.scaling(), Float.intBitsToFloat((int) m0[2]));
            // in = 0, ldw = r: s B [out,r] dense; out = 0, ldw = in: A [r,in] dense
            assertEquals(List.of(8, OUT, 0, 8), List.of((int) m0[4], (int) m0[5], (int) m0[6], (int) m0[7]));
            assertEquals(List.of(IN, 0, IN, 8), List.of((int) m1[4], (int) m1[5], (int) m1[6], (int) m1[7]));
            assertEquals(2, fwd.get(0).grid()[0], "ceil(48*8/256)");
            assertEquals(1, fwd.get(1).grid()[0], "ceil(8*32/256)");
            LoraMargins g = new LoraMargins(IN, OUT, 8, false, true);
            FakeDriver.Launch shrink = fwd.get(2);          // (X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r)
            long xm = shrink.slots()[7];                    // Xc: the layer's Xm
            assertEquals(be.address("test", x), shrink.slots()[0]);
            assertEquals(aStage, shrink.slots()[2], "the shrink reads the staged A");
            assertTrue(xm != 0 && xm != be.address("test", x), "the shrink packs x into the layer's Xm");
            assertEquals(xm + 2L * IN, shrink.slots()[5], "and S into Xm's margin");
            assertEquals(List.of(g.ldx(), g.ldx()), List.of((int) shrink.slots()[6], (int) shrink.slots()[8]));
            // the forward's one GEMM: y = Xm Wm^T over K = in + r + 1 (the bias rides in the ones column)
            List<long[]> fwdGemms = gemmsSince(fwdFrom);
            assertEquals(1, fwdGemms.size(), "one GEMM in the forward");
            long wm = fwdGemms.getFirst()[2];
            assertTrue(wm != be.address("test", w), "the GEMM reads Wm, not the dense W");
            assertGemm(fwdGemms.getFirst(), xm, wm, false, true, N, OUT, IN + 8 + 1, g.ldx(), g.ldw());
            from = driver.launches.size();
            layer.backward(dy, dx);
            List<FakeDriver.Launch> bwd = fastSince(from);
            assertEquals(List.of("lora_linear_bwd_x_kernel1"), names(bwd));
            // (dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc, dB, N, r)
            long[] k = bwd.get(0).slots();
            long dym = k[11];                               // dYc: the layer's dYm
            assertEquals(be.address("test", dy), k[0]);
            assertEquals(sbStage, k[3], "the backward reads the staged s B");
            assertEquals(shrink.slots()[5], k[5], "the backward reads the S the forward wrote");
            assertEquals(dym + 2L * OUT, k[9], "dS goes into dYm's margin");
            assertTrue(dym != 0 && dym != xm, "dy is packed into the layer's dYm");
            assertEquals(be.address("test", layer.parameter(Parameter.Role.LORA_B).grad()), k[13], "dB");
            // dx = dYm Wm over K = out + r (one GEMM), then dA += dS^T x from dYm and Xm
            List<long[]> bwdGemms = gemmsSince(from);
            assertEquals(2, bwdGemms.size(), "dx and dA: " + bwdGemms.size() + " GEMMs");
            assertGemm(bwdGemms.get(0), dym, wm, false, false, N, IN, OUT + 8, g.ldy(), g.ldw());
            assertGemm(bwdGemms.get(1), dym, xm, true, false, 8, IN, N, g.ldy(), g.ldx());

            from = driver.launches.size();
            layer.forward(x, y);                            // nothing changed: no staging
            assertEquals(List.of("lora_shrink_fwd_kernel2"), names(fastSince(from)));
            layer.parameter(Parameter.Role.LORA_B).markChanged();   // as the optimizer does after its update
            from = driver.launches.size();
            layer.forward(x, y);
            List<FakeDriver.Launch> again = fastSince(from);
            assertEquals(List.of("lora_margin_fwd_kernel1", "lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2"),
                    names(again));
            assertEquals(sbStage, again.get(0).slots()[3], "the same layer-owned stage is refreshed");
        }
    }

    @Test
    void rankNotAMultipleOf8DeclinesTheBackwardKernel() {
        try (Tensor w = be.zeros(DType.BF16, OUT, IN); Tensor x = be.zeros(DType.BF16, N, IN);
             Tensor y = be.zeros(DType.BF16, N, OUT); Tensor dy = be.zeros(DType.BF16, N, OUT);
             Tensor dx = be.zeros(DType.BF16, N, IN);
             AdaptedLinear layer = AdaptedLinear.create("proj", w, null, false, lora(4), null, 3L)) {
            layer.setTraining(true);
            layer.forward(x, y);
            int from = driver.launches.size();
            layer.backward(dy, dx);
            List<String> all = driver.launches.subList(from, driver.launches.size()).stream()
                    .map(FakeDriver.Launch::kernel).toList();
            assertFalse(all.contains("lora_linear_bwd_x_kernel1"), "r = 4 must take the portable path: " + all);
            assertTrue(all.contains("gemm_fwd_kernel1"), "the portable composition ran: " + all);
        }
    }

    @Test
    void fp32ActivationsStayOffTheStagedPath() {
        try (Tensor w = be.zeros(DType.F32, OUT, IN); Tensor x = be.zeros(DType.F32, N, IN);
             Tensor y = be.zeros(DType.F32, N, OUT);
             AdaptedLinear layer = AdaptedLinear.create("proj", w, null, false, lora(8), null, 3L)) {
            layer.setTraining(true);
            int from = driver.launches.size();
            layer.forward(x, y);
            assertEquals(List.of(), names(fastSince(from)), "fp32 x: no bf16 stage, no bf16 kernel");
        }
    }

    @Test
    void veraRunsLorasKernelsOnTheFoldedFactor() {
        VeraConfig cfg = new VeraConfig(16, 0L, true, 0.1f, 0f, List.of("proj"));
        try (VeraProjections shared = VeraProjections.create(be, cfg, IN, OUT);
             Tensor w = be.zeros(DType.BF16, OUT, IN); Tensor x = be.zeros(DType.BF16, N, IN);
             Tensor y = be.zeros(DType.BF16, N, OUT); Tensor dy = be.zeros(DType.BF16, N, OUT);
             Tensor dx = be.zeros(DType.BF16, N, IN);
             AdaptedLinear layer = AdaptedLinear.create("proj", w, null, false, cfg, shared, 3L)) {
            layer.setTraining(true);
            int from = driver.launches.size();
            layer.forward(x, y);
            List<FakeDriver.Launch> fwd = fastSince(from);
            // staged as LoRA with A = A_l, B' = λb ∘ B_l ∘ λd and s = 1: (A, B, s, Wm, ldw, out, in, r)
            assertEquals(List.of("lora_margin_fwd_kernel1", "lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2"),
                    names(fwd));
            assertEquals(1f, Float.intBitsToFloat((int) fwd.get(0).slots()[2]), "s = 1: the scalings are in B'");
            assertEquals(16, (int) fwd.get(0).slots()[7], "r");
            from = driver.launches.size();
            layer.backward(dy, dx);
            List<FakeDriver.Launch> bwd = fastSince(from);
            assertEquals(List.of("lora_linear_bwd_x_kernel1"), names(bwd));
            assertEquals(fwd.get(2).slots()[5], bwd.get(0).slots()[5], "the backward reads the S the forward wrote");
            long dbFolded = bwd.get(0).slots()[13];
            assertTrue(dbFolded != 0 && dbFolded != be.address("test", layer.parameter(Parameter.Role.VERA_LAMBDA_B)
                    .grad()), "dB' goes to a scratch, from which the λ gradients are formed");
            layer.parameter(Parameter.Role.VERA_LAMBDA_D).markChanged();   // as the optimizer does
            from = driver.launches.size();
            layer.forward(x, y);
            assertEquals(List.of("lora_margin_fwd_kernel1", "lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2"),
                    names(fastSince(from)), "a new λd refolds B' and restages it");
        }
    }

    @Test
    void deltaLoraMasterUpdateIsOneLaunchInBothLayouts() {
        for (boolean fifo : new boolean[] {false, true}) {
            int rows = fifo ? IN : OUT;
            int cols = fifo ? OUT : IN;
            try (Tensor w = be.zeros(DType.BF16, rows, cols); Tensor master = be.zeros(DType.F32, rows, cols);
                 Tensor a1 = be.zeros(DType.F32, 8, IN); Tensor a0 = be.zeros(DType.F32, 8, IN);
                 Tensor b1 = be.zeros(DType.F32, OUT, 8); Tensor b0 = be.zeros(DType.F32, OUT, 8)) {
                int from = driver.launches.size();
                be.deltaLoraUpdateMaster(w, master, fifo, 0.5f, b1, a1, b0, a0);
                List<FakeDriver.Launch> ls = driver.launches.subList(from, driver.launches.size());
                assertEquals(List.of("delta_lora_update_fwd_kernel1"), names(ls), "fifo=" + fifo);
                long[] k = ls.get(0).slots();   // (W, ldw, master, ldm, comp, ldc, fanInFanOut, c, ...)
                assertEquals(be.address("test", w), k[0]);
                assertEquals(cols, (int) k[1]);
                assertEquals(be.address("test", master), k[2], "fifo=" + fifo + ": the fp32 master");
                assertEquals(fifo ? 1 : 0, (int) k[6]);
            }
        }
    }
}
