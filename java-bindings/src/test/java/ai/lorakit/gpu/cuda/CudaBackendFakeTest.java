package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.cuda.fast.FusedKernelsTier;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves CudaBackend's host logic without a GPU, on the in-memory driver: tensors round-trip through device memory,
 * interop wraps a user's device pointer (a raw address or a MemorySegment) without a copy and never frees it, the
 * fast tier runs first for an op it accelerates and is skipped entirely when switched off (the flag and the
 * {@value CudaBackend#FAST_TIER_PROPERTY} property the GPU check uses to run the contract suite both ways), GEMM
 * falls back to the portable kernel without cuBLAS and the description says so, and a step captured through the
 * backend becomes a replayable graph.
 */
class CudaBackendFakeTest {
    private FakeDriver driver;
    private CudaBackend be;
    @BeforeEach
    void open() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        driver = new FakeDriver();
        be = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true, false, false);
    }

    @AfterEach
    void close() {
        if (be != null) {
            be.close();
        }
    }

    @Test
    void tensorsRoundTripAndTheDescriptionNamesTheGemmPath() {
        Tensor t = be.upload(new float[] {1, 2, 3, 4, 5, 6}, 2, 3);
        assertArrayEquals(new float[] {1, 2, 3, 4, 5, 6}, be.download(t));
        Tensor z = be.zeros(DType.BF16, 4);
        assertArrayEquals(new float[4], be.download(z));
        assertNull(be.blas());
        assertTrue(be.description().contains("GEMM: portable kernel (cuBLAS not requested)"), be.description());
        assertTrue(be.description().contains("fast tier: none"), be.description());
        Tensor c = be.zeros(DType.F32, 2, 2);
        be.matmul(t, false, t, true, c, 1f, 0f);
        assertEquals("gemm_fwd_kernel1", driver.launches.get(driver.launches.size() - 1).kernel());
    }

    @Test
    void theFastTierRunsFirstWhenOnAndNeverWhenOff() {
        FakeDriver other = new FakeDriver();
        try (CudaBackend on = new CudaBackend(new FakeDriver.Device(other, 0), "cuda-fake", true, true, false)) {
            assertTrue(on.description().contains("fast tier: " + FusedKernelsTier.NAME), on.description());
            assertEquals("adamw_fwd_kernel2", adamwKernel(other, on), "on: the fast kernel");
        }
        assertEquals("adamw_fwd_kernel1", adamwKernel(driver, be), "off: the portable kernel");
        String before = System.getProperty(CudaBackend.FAST_TIER_PROPERTY);
        try {
            System.setProperty(CudaBackend.FAST_TIER_PROPERTY, "FALSE");
            assertFalse(CudaBackend.fastTierEnabled());
            System.setProperty(CudaBackend.FAST_TIER_PROPERTY, "true");
            assertTrue(CudaBackend.fastTierEnabled());
            System.clearProperty(CudaBackend.FAST_TIER_PROPERTY);
            assertTrue(CudaBackend.fastTierEnabled(), "on by default");
        } finally {
            if (before == null) {
                System.clearProperty(CudaBackend.FAST_TIER_PROPERTY);
            } else {
                System.setProperty(CudaBackend.FAST_TIER_PROPERTY, before);
            }
        }
    }

    /** The kernel one F32 AdamW step of {@code b} launches. */
    private static String adamwKernel(FakeDriver d, CudaBackend b) {
        Tensor[] t = {b.zeros(DType.F32, 8), b.zeros(DType.F32, 8), b.zeros(DType.F32, 8), b.zeros(DType.F32, 8)};
        int from = d.launches.size();
        b.adamw(t[0], t[1], t[2], t[3], new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1));
        assertEquals(from + 1, d.launches.size(), "one launch");
        return d.launches.get(from).kernel();
    }

    @Test
    void interopWrapsAUserPointerWithoutACopy() {
        long user = driver.memAlloc(4 * 6);                      // the user's allocation, same context
        float[] data = {1, 2, 3, 4, 5, 6};
        driver.memcpyHtoD(user, data, 24);
        Tensor t = be.wrap(user, DType.F32, 2, 3);
        assertArrayEquals(data, be.download(t));
        assertEquals(user, be.address("test", t));
        be.fill(t, 7f);                                           // writes go to the user's memory
        float[] back = new float[6];
        driver.memcpyDtoH(back, user, 24);
        assertArrayEquals(new float[] {7, 7, 7, 7, 7, 7}, back);
        t.close();
        assertTrue(driver.memory.containsKey(user), "closing the wrapped tensor does not free the user's memory");
        Tensor s = be.wrap(MemorySegment.ofAddress(user), DType.F32, 6);
        assertEquals(6, be.download(s).length);
        ShapeException e = assertThrows(ShapeException.class,
                () -> be.wrap(MemorySegment.ofArray(new byte[8]), DType.F32, 6));
        assertTrue(e.getMessage().contains("needs 24 bytes, the segment has 8"), e.getMessage());
        try (CpuBackend cpu = new CpuBackend()) {
            Tensor other = cpu.zeros(DType.F32, 2);
            assertThrows(RuntimeException.class, () -> be.address("test", other));
        }
    }

    @Test
    void aCapturedStepReplaysAsOneGraph() {
        Tensor w = be.zeros(DType.F32, 8);
        try (CudaGraph g = be.capture(() -> {
            be.fill(w, 2f);
            try (Tensor tmp = be.zeros(DType.F32, 8)) {
                be.copy(w, tmp);
            }
        })) {
            g.replay();
            assertTrue(driver.calls.contains("cuGraphLaunch"));
        }
        GpuException e = assertThrows(GpuException.class, () -> be.capture(() -> be.download(w)));
        assertTrue(e.getMessage().contains("not allowed while a CUDA graph is being captured"), e.getMessage());
        be.close();
        assertThrows(GpuException.class, () -> be.capture(() -> { }));
    }
}
