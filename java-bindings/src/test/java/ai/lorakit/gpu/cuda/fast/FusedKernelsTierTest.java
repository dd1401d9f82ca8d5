package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on the in-memory CUDA driver (no GPU), that each wired Backend op of {@link FusedKernelsTier} launches its
 * cuda-kernels/cuda kernel by extern "C" name with the grid, block and argument list its .cu header documents
 * (expected values written here from those headers), and declines to the portable kernels when a requirement fails
 * (dtype, multiple of 8, DoRA r <= 64, the layout of W for the norm). For LoRA that op is the staged forward (the
 * training path; the unstaged loraLinearForward is not accelerated).
 */
class FusedKernelsTierTest {
    private static final int[] BLOCK = {256, 1, 1};
    private FakeCuda fake;
    private CudaBackend be;

    @BeforeEach
    void open() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        fake = new FakeCuda(true);
        be = fake.backend;
    }

    @AfterEach
    void close() {
        if (be != null) {
            be.close();
        }
    }

    private FakeCuda.Launch only(int from, String kernel) {
        List<FakeCuda.Launch> ls = fake.launches().subList(from, fake.launches().size()).stream()
                .filter(l -> l.kernel().equals(kernel)).toList();
        assertEquals(1, ls.size(), kernel + " launches among " + fake.kernelsSince(from));
        return ls.get(0);
    }

    private long addr(Tensor t) {
        return be.address("test", t);
    }

    private static void assertNone(List<String> launched, String... kernels) {
        for (String k : kernels) {
            assertFalse(launched.contains(k), k + " must not run: " + launched);
        }
    }

    @Test
    void descriptionNamesTheTier() {
        assertTrue(be.description().contains("fast tier: " + FusedKernelsTier.NAME), be.description());
    }

    // ---------------------------------------------------------------------------------------------- adamw

    @Test
    void adamwLaunchesKernel2WithHostFoldedScalars() {
        Tensor p = be.zeros(DType.F32, 3, 5);
        Tensor g = be.zeros(DType.F32, 3, 5);
        Tensor m = be.zeros(DType.F32, 3, 5);
        Tensor v = be.zeros(DType.F32, 3, 5);
        AdamW hp = new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
        int from = fake.launches().size();
        be.adamw(p, g, m, v, hp);
        assertEquals(List.of("adamw_fwd_kernel2"), fake.kernelsSince(from));
        FakeCuda.Launch l = only(from, "adamw_fwd_kernel2");
        assertArrayEquals(new int[] {1, 1, 1}, l.grid());       // min(ceil(15/1024), 65535)
        assertArrayEquals(BLOCK, l.block());
        // (param, grad, m, v, n, beta1, beta2, eps, decay, step_size, bc2_sqrt)
        assertEquals(11, l.slots().length);
        assertArrayEquals(new long[] {addr(p), addr(g), addr(m), addr(v), 15L},
                java.util.Arrays.copyOf(l.slots(), 5));
        assertEquals(0.9f, l.slotFloat(5));
        assertEquals(0.999f, l.slotFloat(6));
        assertEquals(1e-8f, l.slotFloat(7));
        assertEquals(1f - 1e-3f * 0.01f, l.slotFloat(8));
        assertEquals((float) (1e-3f / (1.0 - Math.pow(0.9f, 3))), l.slotFloat(9));
        assertEquals((float) Math.sqrt(1.0 - Math.pow(0.999f, 3)), l.slotFloat(10));
    }

    @Test
    void adamwClippedIsOneLaunchWithAReusedTableAndGroupScalars() {
        int[] sizes = {15, 300, 8};
        List<Tensor> ps = new java.util.ArrayList<>(), gs = new java.util.ArrayList<>();
        List<Tensor> ms = new java.util.ArrayList<>(), vs = new java.util.ArrayList<>();
        for (int n : sizes) {
            ps.add(be.zeros(DType.F32, n));
            gs.add(be.zeros(DType.F32, n));
            ms.add(be.zeros(DType.F32, n));
            vs.add(be.zeros(DType.F32, n));
        }
        Tensor stats = be.zeros(DType.F32, 4);
        AdamW a = new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 3);
        AdamW b = a.withLr(16e-3f);                                   // LoRA+: B at 16 x A's lr
        List<AdamW> hps = List.of(a, b, a);
        for (int call = 0; call < 2; call++) {
            int from = fake.launches().size();
            int callsFrom = fake.calls().size();
            be.adamwClipped(ps, gs, ms, vs, hps, stats, 1, 1f);
            assertEquals(List.of("adamw_multi_fwd_kernel2"), fake.kernelsSince(from), "one launch per step");
            List<String> calls = fake.calls().subList(callsFrom, fake.calls().size());
            assertEquals(call == 0 ? 1 : 0, calls.stream().filter(c -> c.startsWith("cuMemcpyHtoD")).count(),
                    "call " + call + ": the table is uploaded once, then reused: " + calls);
            assertEquals(call == 0 ? 1 : 0, calls.stream().filter(c -> c.startsWith("cuMemAlloc")).count(),
                    "call " + call + ": only the table is allocated, once: " + calls);
            assertEquals(0, calls.stream().filter(c -> c.startsWith("cuMemcpyDtoH")).count(),
                    "call " + call + " reads nothing back (the norm stays on the device): " + calls);
            FakeCuda.Launch l = only(from, "adamw_multi_fwd_kernel2");
            assertArrayEquals(new int[] {2, 3, 1}, l.grid());          // (ceil(300/256), tensors, 1)
            assertArrayEquals(BLOCK, l.block());
            // (ptrs, numel, group, stats, normAt, maxNorm, beta1, beta2, decay0..3, stepSize0..3, bc2Sqrt0..3, eps0..3)
            assertEquals(24, l.slots().length);
            assertEquals(l.slots()[0] + 32L * 3, l.slots()[1], "numel follows the 3 x 4 addresses");
            assertEquals(l.slots()[0] + 40L * 3, l.slots()[2], "group follows the 3 numels");
            assertEquals(addr(stats), l.slots()[3]);
            assertEquals(1, l.slotInt(4));
            assertEquals(1f, l.slotFloat(5));
            assertEquals(0.9f, l.slotFloat(6));
            assertEquals(0.999f, l.slotFloat(7));
            assertEquals(1f - 1e-3f * 0.01f, l.slotFloat(8), "group 0 (a) decay");
            assertEquals(1f - 16e-3f * 0.01f, l.slotFloat(9), "group 1 (b) decay");
            assertEquals((float) (1e-3f / (1.0 - Math.pow(0.9f, 3))), l.slotFloat(12), "group 0 step size");
            assertEquals((float) (16e-3f / (1.0 - Math.pow(0.9f, 3))), l.slotFloat(13), "group 1 step size");
            assertEquals((float) Math.sqrt(1.0 - Math.pow(0.999f, 3)), l.slotFloat(16));
            assertEquals(1e-8f, l.slotFloat(20));
            int[] table = new int[33];                                 // [ptrs 24 | numel 6 | group 3] ints
            fake.driver.memcpyDtoH(table, l.slots()[0], 4L * table.length);
            assertEquals(addr(ps.get(1)), (table[8] & 0xffffffffL) | ((long) table[9] << 32), "ptrs[1][0] = param 1");
            assertEquals(addr(vs.get(2)), (table[22] & 0xffffffffL) | ((long) table[23] << 32), "ptrs[2][3] = v 2");
            assertEquals(300, table[24 + 2]);
            assertArrayEquals(new int[] {0, 1, 0}, java.util.Arrays.copyOfRange(table, 30, 33), "groups");
        }
        Tensor bf = be.zeros(DType.BF16, 15);
        int from = fake.launches().size();
        be.adamwClipped(List.of(bf), List.of(gs.get(0)), List.of(ms.get(0)), List.of(vs.get(0)), List.of(a), stats, 1, 1f);
        assertEquals(List.of("adamw_clip_fwd_kernel1"), fake.kernelsSince(from), "BF16 param: portable");
    }

    @Test
    void adamwDeclinesNonF32AndAliasedState() {
        Tensor p = be.zeros(DType.BF16, 8);
        Tensor g = be.zeros(DType.F32, 8);
        Tensor m = be.zeros(DType.F32, 8);
        Tensor v = be.zeros(DType.F32, 8);
        AdamW hp = new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1);
        int from = fake.launches().size();
        be.adamw(p, g, m, v, hp);
        assertEquals(List.of("adamw_fwd_kernel1"), fake.kernelsSince(from), "BF16 param: portable");
        Tensor pf = be.zeros(DType.F32, 8);
        from = fake.launches().size();
        be.adamw(pf, g, m, m, hp);
        assertEquals(List.of("adamw_fwd_kernel1"), fake.kernelsSince(from), "m aliases v: portable");
    }

    // ---------------------------------------------------------------------------------------------- Delta-LoRA

    @Test
    void deltaLoraLaunchesOneTiledPassInBothOrientations() {
        int out = 200;
        int in = 300;
        int r = 4;
        Tensor aNew = be.zeros(DType.F32, r, in);
        Tensor aOld = be.zeros(DType.F32, r, in);
        Tensor bNew = be.zeros(DType.F32, out, r);
        Tensor bOld = be.zeros(DType.F32, out, r);
        for (boolean fif : new boolean[] {false, true}) {
            Tensor w = fif ? be.zeros(DType.BF16, in, out) : be.zeros(DType.BF16, out, in);
            int from = fake.launches().size();
            be.deltaLoraUpdate(w, fif, 0.25f, bNew, aNew, bOld, aOld);
            assertEquals(List.of("delta_lora_update_fwd_kernel1"), fake.kernelsSince(from));
            FakeCuda.Launch l = only(from, "delta_lora_update_fwd_kernel1");
            // grid (ceil(cols/128), ceil(rows/64), 1) for W [rows, cols]
            assertArrayEquals(fif ? new int[] {2, 5, 1} : new int[] {3, 4, 1}, l.grid());
            assertArrayEquals(BLOCK, l.block());
            // (W, ldw, master, ldm, comp, ldc, fanInFanOut, c, aNew, aOld, bNew, bOld, out, in, r)
            assertEquals(15, l.slots().length);
            assertEquals(addr(w), l.slots()[0]);
            assertEquals(fif ? out : in, l.slotInt(1));
            assertEquals(0L, l.slots()[2]);
            assertEquals(0L, l.slots()[4]);
            assertEquals(fif ? 1 : 0, l.slotInt(6));
            assertEquals(0.25f, l.slotFloat(7));
            assertEquals(List.of(addr(aNew), addr(aOld), addr(bNew), addr(bOld)),
                    List.of(l.slots()[8], l.slots()[9], l.slots()[10], l.slots()[11]));
            assertEquals(List.of(out, in, r), List.of(l.slotInt(12), l.slotInt(13), l.slotInt(14)));
        }
    }

    @Test
    void deltaLoraDeclinesAnF32BaseWeight() {
        Tensor w = be.zeros(DType.F32, 16, 24);
        int from = fake.launches().size();
        be.deltaLoraUpdate(w, false, 1f, be.zeros(DType.F32, 16, 2), be.zeros(DType.F32, 2, 24),
                be.zeros(DType.F32, 16, 2), be.zeros(DType.F32, 2, 24));
        List<String> launched = fake.kernelsSince(from);
        assertNone(launched, "delta_lora_update_fwd_kernel1");
        assertFalse(launched.isEmpty(), "the portable path ran");
    }

    // ---------------------------------------------------------------------------------------------- DoRA

    @Test
    void doraNormLaunchesGramThenFactoredNorm() {
        int out = 300;
        int in = 32;
        int r = 8;
        Tensor w = be.zeros(DType.BF16, out, in);
        Tensor a = be.zeros(DType.F32, r, in);
        Tensor b = be.zeros(DType.F32, out, r);
        Tensor n = be.zeros(DType.F32, out);
        int from = fake.launches().size();
        be.doraWeightNorm(w, false, a, b, 2f, n);
        List<String> launched = fake.kernelsSince(from);
        assertTrue(launched.indexOf("dora_gram_fwd_kernel1") < launched.indexOf("dora_norm_fwd_kernel2"), launched.toString());
        FakeCuda.Launch gram = only(from, "dora_gram_fwd_kernel1");
        assertArrayEquals(new int[] {r, r, 1}, gram.grid());                 // grid (r, r, 1)
        assertArrayEquals(BLOCK, gram.block());
        // (A, lda, in, r, G)
        assertEquals(5, gram.slots().length);
        assertEquals(addr(a), gram.slots()[0]);
        assertEquals(List.of(in, in, r), List.of(gram.slotInt(1), gram.slotInt(2), gram.slotInt(3)));
        long gAddr = gram.slots()[4];
        FakeCuda.Launch norm = only(from, "dora_norm_fwd_kernel2");
        assertArrayEquals(new int[] {1, 3, 1}, norm.grid());                 // grid (1, ceil(300/128), 1)
        assertArrayEquals(BLOCK, norm.block());
        // (W, ldw, A_bf16, lda, B, G, s, m, n, g, out, in, r)
        assertEquals(13, norm.slots().length);
        assertEquals(addr(w), norm.slots()[0]);
        assertEquals(in, norm.slotInt(1));
        assertNotEquals(0L, norm.slots()[2]);
        assertNotEquals(addr(a), norm.slots()[2], "the norm kernel reads a bf16 copy of A");
        assertEquals(in, norm.slotInt(3));
        assertEquals(addr(b), norm.slots()[4]);
        assertEquals(gAddr, norm.slots()[5], "G from the gram kernel");
        assertEquals(2f, norm.slotFloat(6));
        assertEquals(0L, norm.slots()[7]);
        assertEquals(addr(n), norm.slots()[8]);
        assertEquals(0L, norm.slots()[9]);
        assertEquals(List.of(out, in, r), List.of(norm.slotInt(10), norm.slotInt(11), norm.slotInt(12)));
    }

    @Test
    void doraNormDeclinesLargeRankAndUnalignedIn() {
        int from = fake.launches().size();
        be.doraWeightNorm(be.zeros(DType.BF16, 16, 32), false, be.zeros(DType.F32, 65, 32),
                be.zeros(DType.F32, 16, 65), 1f, be.zeros(DType.F32, 16));                    // r = 65 > 64
        be.doraWeightNorm(be.zeros(DType.BF16, 16, 12), false, be.zeros(DType.F32, 4, 12),
                be.zeros(DType.F32, 16, 4), 1f, be.zeros(DType.F32, 16));                     // in = 12
        assertNone(fake.kernelsSince(from), "dora_gram_fwd_kernel1", "dora_norm_fwd_kernel2",
                "dora_norm_fifo_fwd_kernel1");
        assertTrue(fake.kernelsSince(from).contains("gemm_fwd_kernel1"), "the portable composition ran");
    }

    /** GPT-2's Conv1D layout: one launch of the column-norm kernel on W [in,out] and the fp32 A (no bf16 copy). */
    @Test
    void doraNormOfFanInFanOutLaunchesTheColumnKernel() {
        int out = 100;
        int in = 12;   // not a multiple of 8: the column kernel has no such requirement
        int r = 5;
        Tensor w = be.zeros(DType.BF16, in, out);
        Tensor a = be.zeros(DType.F32, r, in);
        Tensor b = be.zeros(DType.F32, out, r);
        Tensor n = be.zeros(DType.F32, out);
        int from = fake.launches().size();
        be.doraWeightNorm(w, true, a, b, 0.75f, n);
        assertEquals(List.of("dora_norm_fifo_fwd_kernel1"), fake.kernelsSince(from), "one launch, no copy of A");
        FakeCuda.Launch l = only(from, "dora_norm_fifo_fwd_kernel1");
        assertArrayEquals(new int[] {4, 1, 1}, l.grid());                    // grid (ceil(100/32), 1, 1)
        assertArrayEquals(BLOCK, l.block());
        // (W, ldw, A, lda, B, s, n, out, in, r)
        assertEquals(10, l.slots().length);
        assertEquals(addr(w), l.slots()[0]);
        assertEquals(out, l.slotInt(1), "ldw: W [in,out] rows are out long");
        assertEquals(addr(a), l.slots()[2], "the fp32 master A");
        assertEquals(in, l.slotInt(3));
        assertEquals(addr(b), l.slots()[4]);
        assertEquals(0.75f, l.slotFloat(5));
        assertEquals(addr(n), l.slots()[6]);
        assertEquals(List.of(out, in, r), List.of(l.slotInt(7), l.slotInt(8), l.slotInt(9)));
    }

    @Test
    void doraNormOfFanInFanOutDeclinesLargeRankAndOtherDtypes() {
        int from = fake.launches().size();
        be.doraWeightNorm(be.zeros(DType.BF16, 32, 16), true, be.zeros(DType.F32, 65, 32),
                be.zeros(DType.F32, 16, 65), 1f, be.zeros(DType.F32, 16));                    // r = 65 > 64
        be.doraWeightNorm(be.zeros(DType.F32, 32, 16), true, be.zeros(DType.F32, 4, 32),
                be.zeros(DType.F32, 16, 4), 1f, be.zeros(DType.F32, 16));                     // F32 W
        be.doraWeightNorm(be.zeros(DType.BF16, 32, 16), true, be.zeros(DType.F32, 4, 32),
                be.zeros(DType.F32, 16, 4), 1f, be.zeros(DType.BF16, 16));                    // BF16 n
        assertNone(fake.kernelsSince(from), "dora_norm_fifo_fwd_kernel1", "dora_gram_fwd_kernel1",
                "dora_norm_fwd_kernel2");
    }

    // ---------------------------------------------------------------------------------------------- LoRA

    /** The staged K-concat forward: the shrink reads x once and packs Xm = [x | S] (no staging per call). */
    @Test
    void stagedLoraForwardUsesThePackingShrink() {
        int nRows = 300;
        int in = 16;
        int out = 24;
        int r = 72;
        int ldx = 96;                                           // Xm's pitch: in + r + 1 (the bias) rounded up to 8
        StagedLora l = StagedLora.of(be, nRows, in, out, r, 0.5f);
        assertEquals(ldx, l.xm().cols());
        Tensor x = be.zeros(DType.BF16, nRows, in);
        int from = fake.launches().size();
        l.forward(x);
        List<String> launched = fake.kernelsSince(from);
        assertNone(launched, FusedKernelsTier.LORA_MARGIN);                  // staged after an optimizer step only
        assertTrue(launched.indexOf(FusedKernelsTier.LORA_SHRINK) < launched.indexOf("gemm_fwd_kernel1"),
                "the shrink, then the one GEMM over in + r (portable here: no cuBLAS): " + launched);
        FakeCuda.Launch s = only(from, FusedKernelsTier.LORA_SHRINK);
        assertArrayEquals(new int[] {2, 3, 1}, s.grid());                    // (ceil(72/64), ceil(300/128), 1)
        assertArrayEquals(BLOCK, s.block());
        // (X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r): x dense, A the bf16 stage, S and the pack in Xm
        assertEquals(12, s.slots().length);
        assertEquals(addr(x), s.slots()[0]);
        assertEquals(in, s.slotInt(1));
        assertEquals(addr(l.aStage()), s.slots()[2], "the staged bf16 A, no per-call copy");
        assertEquals(in, s.slotInt(3));
        assertEquals(0L, s.slots()[4], "no fp32 u: the backward reads S from Xm");
        assertEquals(addr(l.xm()) + 2L * in, s.slots()[5], "S = Xm's columns in..in+r-1");
        assertEquals(ldx, s.slotInt(6));
        assertEquals(addr(l.xm()), s.slots()[7], "x packed into Xm's first in columns");
        assertEquals(ldx, s.slotInt(8));
        assertEquals(List.of(nRows, in, r), List.of(s.slotInt(9), s.slotInt(10), s.slotInt(11)));
    }

    @Test
    void stagedLoraForwardDeclinesUnalignedInAndFp32Activations() {
        StagedLora in12 = StagedLora.of(be, 4, 12, 8, 2, 1f);
        StagedLora in16 = StagedLora.of(be, 4, 16, 8, 2, 1f);
        int from = fake.launches().size();
        in12.forward(be.zeros(DType.BF16, 4, 12));                    // in = 12
        in16.forward(be.zeros(DType.F32, 4, 16));                     // fp32 x
        List<String> launched = fake.kernelsSince(from);
        assertNone(launched, FusedKernelsTier.LORA_SHRINK);
        assertTrue(launched.contains("gemm_fwd_kernel1"), "the portable composition ran: " + launched);
        from = fake.launches().size();
        in16.forward(be.zeros(DType.BF16, 4, 16));                    // the same layer with bf16 x: the kernel
        assertTrue(fake.kernelsSince(from).contains(FusedKernelsTier.LORA_SHRINK), fake.kernelsSince(from).toString());
    }

    // ---------------------------------------------------------------------------------------------- VeRA

    @Test
    void veraForwardUsesTheScaledShrink() {
        int nRows = 130;
        int in = 16;
        int inMax = 32;
        int out = 8;
        int r = 256;
        Tensor x = be.zeros(DType.BF16, nRows, in);
        Tensor sa = be.zeros(DType.F32, r, inMax);
        Tensor sb = be.zeros(DType.F32, 12, r);
        Tensor ld = be.zeros(DType.F32, r);
        Tensor lb = be.zeros(DType.F32, out);
        Tensor u = be.zeros(DType.F32, nRows, r);
        Tensor v = be.zeros(DType.F32, nRows, r);
        Tensor y = be.zeros(DType.F32, nRows, out);
        int from = fake.launches().size();
        be.veraForward(x, sa, sb, ld, lb, u, v, y);
        FakeCuda.Launch l = only(from, "vera_shrink_fwd_kernel1");
        assertArrayEquals(new int[] {4, 2, 1}, l.grid());                    // (ceil(256/64), ceil(130/128), 1)
        assertArrayEquals(BLOCK, l.block());
        // (X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r)
        assertEquals(11, l.slots().length);
        assertEquals(addr(x), l.slots()[0]);
        assertEquals(in, l.slotInt(1));
        assertNotEquals(addr(sa), l.slots()[2], "a bf16 copy of the shared A");
        assertEquals(inMax, l.slotInt(3));
        assertEquals(addr(ld), l.slots()[4]);
        assertEquals(addr(u), l.slots()[5]);
        assertEquals(0L, l.slots()[6]);
        assertEquals(List.of(nRows, in, r), List.of(l.slotInt(8), l.slotInt(9), l.slotInt(10)));
    }

    @Test
    void veraForwardDeclinesAnUnalignedSharedA() {
        int from = fake.launches().size();
        be.veraForward(be.zeros(DType.BF16, 4, 8), be.zeros(DType.F32, 4, 12), be.zeros(DType.F32, 8, 4),
                be.zeros(DType.F32, 4), be.zeros(DType.F32, 8), be.zeros(DType.F32, 4, 4), be.zeros(DType.F32, 4, 4),
                be.zeros(DType.F32, 4, 8));                                               // in_max = 12
        List<String> launched = fake.kernelsSince(from);
        assertNone(launched, "vera_shrink_fwd_kernel1");
        assertTrue(launched.contains("gemm_fwd_kernel1"), "the portable composition ran: " + launched);
    }
}
