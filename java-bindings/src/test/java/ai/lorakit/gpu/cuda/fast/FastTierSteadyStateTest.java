package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;


import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves on the in-memory CUDA driver that the fast tier allocates nothing in the steady state: every wired fast op
 * (adamw, deltaLoraUpdate, doraWeightNorm, loraLinearForwardStaged, veraForward), called as one training step calls it, makes
 * cuMemAlloc / cuMemFree calls on its first call only (its scratch: bf16 copies of A, the Gram matrix, VeRA's
 * product) and none over the next 50 calls; a larger shape grows the scratch once; closing the backend frees it all.
 * (Done at the op level, each op launched through the tier, which the kernel names prove; models'
 * ModelSteadyStateTest counts the same calls over whole Trainer steps of every method.)
 */
class FastTierSteadyStateTest {
    private static final int STEPS = 50;
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

    /** Runs {@code step} once, then 50 more times, and checks that only the first call allocated or freed. */
    private void steadyState(String what, String kernel, Runnable step) {
        int from = fake.launches().size();
        step.run();
        assertTrue(fake.kernelsSince(from).contains(kernel), what + " went through the fast tier: "
                + fake.kernelsSince(from));
        long afterFirst = fake.allocsAndFrees();
        for (int i = 0; i < STEPS; i++) {
            step.run();
        }
        assertEquals(afterFirst, fake.allocsAndFrees(), what + ": cuMemAlloc*/cuMemFree* calls after the first step");
        assertEquals(STEPS + 1, fake.kernelsSince(from).stream().filter(kernel::equals).count(), what + " launches");
    }

    @Test
    void adamw() {
        Tensor p = be.zeros(DType.F32, 64, 16);
        Tensor g = be.zeros(DType.F32, 64, 16);
        Tensor m = be.zeros(DType.F32, 64, 16);
        Tensor v = be.zeros(DType.F32, 64, 16);
        int[] step = {0};
        steadyState("adamw", FusedKernelsTier.ADAMW,
                () -> be.adamw(p, g, m, v, new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, ++step[0])));
    }

    @Test
    void deltaLoraUpdate() {
        Tensor w = be.zeros(DType.BF16, 48, 32);
        Tensor aNew = be.zeros(DType.F32, 4, 32);
        Tensor aOld = be.zeros(DType.F32, 4, 32);
        Tensor bNew = be.zeros(DType.F32, 48, 4);
        Tensor bOld = be.zeros(DType.F32, 48, 4);
        steadyState("deltaLoraUpdate", FusedKernelsTier.DELTA_LORA,
                () -> be.deltaLoraUpdate(w, false, 0.5f, bNew, aNew, bOld, aOld));
    }

    @Test
    void doraWeightNorm() {
        Tensor w = be.zeros(DType.BF16, 40, 32);
        Tensor a = be.zeros(DType.F32, 8, 32);
        Tensor b = be.zeros(DType.F32, 40, 8);
        Tensor n = be.zeros(DType.F32, 40);
        steadyState("doraWeightNorm", FusedKernelsTier.DORA_NORM, () -> be.doraWeightNorm(w, false, a, b, 2f, n));
    }

    @Test
    void doraWeightNormFanInFanOut() {
        Tensor w = be.zeros(DType.BF16, 32, 40);
        Tensor a = be.zeros(DType.F32, 8, 32);
        Tensor b = be.zeros(DType.F32, 40, 8);
        Tensor n = be.zeros(DType.F32, 40);
        steadyState("doraWeightNorm fanInFanOut", FusedKernelsTier.DORA_NORM_FIFO,
                () -> be.doraWeightNorm(w, true, a, b, 2f, n));
    }

    @Test
    void loraLinearForwardStaged() {
        StagedLora l = StagedLora.of(be, 24, 32, 16, 4, 0.5f);
        Tensor x = be.zeros(DType.BF16, 24, 32);
        steadyState("loraLinearForwardStaged", FusedKernelsTier.LORA_SHRINK, () -> l.forward(x));
    }

    @Test
    void veraForward() {
        Tensor x = be.zeros(DType.BF16, 20, 16);
        Tensor sa = be.zeros(DType.F32, 8, 32);
        Tensor sb = be.zeros(DType.F32, 24, 8);
        Tensor ld = be.zeros(DType.F32, 8);
        Tensor lb = be.zeros(DType.F32, 12);
        Tensor u = be.zeros(DType.F32, 20, 8);
        Tensor v = be.zeros(DType.F32, 20, 8);
        Tensor y = be.zeros(DType.F32, 20, 12);
        steadyState("veraForward", FusedKernelsTier.VERA_SHRINK, () -> be.veraForward(x, sa, sb, ld, lb, u, v, y));
    }

    /** The DoRA norm's bf16 copy of A (slot "a_bf16") grows with in; the Gram matrix [r,r] keeps its slot. */
    @Test
    void aLargerShapeGrowsTheScratchOnceAndCloseFreesEverything() {
        Tensor a = be.zeros(DType.F32, 4, 32);
        Tensor a2 = be.zeros(DType.F32, 4, 128);   // in 128: the bf16 copy of A needs 4 x the bytes
        Tensor b = be.zeros(DType.F32, 16, 4);
        Tensor w = be.zeros(DType.BF16, 16, 32);
        Tensor w2 = be.zeros(DType.BF16, 16, 128);
        Tensor n = be.zeros(DType.F32, 16);
        Runnable small = () -> be.doraWeightNorm(w, false, a, b, 1f, n);
        Runnable big = () -> be.doraWeightNorm(w2, false, a2, b, 1f, n);
        int from = fake.launches().size();
        small.run();
        long c0 = fake.allocsAndFrees();
        long n0 = be.cudaDevice().allocations();
        big.run();
        long c1 = fake.allocsAndFrees();
        assertEquals(2, fake.kernelsSince(from).stream().filter(FusedKernelsTier.DORA_NORM::equals).count(),
                "both shapes went through the fast tier: " + fake.kernelsSince(from));
        assertEquals(n0 + 1, be.cudaDevice().allocations(), "the device counts the one allocation of the growth");
        assertEquals(2, c1 - c0, "one cuMemFree of the small slot and one cuMemAlloc of the grown one: "
                + fake.calls().stream().filter(c -> c.startsWith("cuMem")).toList());
        small.run();
        big.run();
        assertEquals(c1, fake.allocsAndFrees(), "the grown slot serves both shapes");
        long held = be.cudaDevice().allocatedBytes();
        assertTrue(be.cudaDevice().peakAllocatedBytes() >= held, "peak >= current");
        for (Tensor t : new Tensor[] {a, a2, b, w, w2, n}) {
            t.close();
        }
        assertEquals(held - (4 * 32 + 4 * 128 + 16 * 4 + 16) * 4L - (16 * 32 + 16 * 128) * 2L,
                be.cudaDevice().allocatedBytes(), "closing the tensors gives their bytes back; the scratch stays");
        be.close();
        be = null;
        assertEquals(0, fake.liveAllocations(), "device memory left after close");
    }
}
