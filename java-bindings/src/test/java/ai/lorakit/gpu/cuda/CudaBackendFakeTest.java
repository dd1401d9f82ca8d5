package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves CudaBackend's host logic without a GPU, on the in-memory driver: tensors round-trip through device memory,
 * interop wraps a user's device pointer (a raw address or a MemorySegment) without a copy and never frees it, the
 * fast-tier hook runs a provider's override and falls back to the portable kernel when the provider declines, GEMM
 * falls back to the portable kernel without cuBLAS and the description says so, and a step captured through the
 * backend becomes a replayable graph.
 */
class CudaBackendFakeTest {
    private FakeDriver driver;
    private CudaBackend be;
    private final List<String> tierCalls = new ArrayList<>();

    /** Claims scale() for F32 tensors only. */
    private final FastTierProvider provider = new FastTierProvider() {
        @Override
        public String name() {
            return "test-tier";
        }

        @Override
        public FastTier open(CudaBackend backend) {
            return new FastTier() {
                @Override
                public boolean scale(Tensor x, float alpha, Tensor out) {
                    tierCalls.add("scale " + x.dtype());
                    if (x.dtype() != DType.F32) {
                        return false;
                    }
                    backend.launchKernel("scale_fwd_kernel1", ai.lorakit.gpu.Dim3.of(1), ai.lorakit.gpu.Dim3.of(32),
                            backend.deviceBuffer("scale", x), 0, alpha, backend.deviceBuffer("scale", out), 0, x.numel());
                    tierCalls.add("fast");
                    return true;
                }
            };
        }
    };

    @BeforeEach
    void open() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        driver = new FakeDriver();
        be = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true, List.of(provider), false);
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
        assertTrue(be.description().contains("fast tier: test-tier"), be.description());
        Tensor c = be.zeros(DType.F32, 2, 2);
        be.matmul(t, false, t, true, c, 1f, 0f);
        assertEquals("gemm_fwd_kernel1", driver.launches.get(driver.launches.size() - 1).kernel());
    }

    @Test
    void fastTierRunsFirstAndDeclinedCallsFallBackToThePortableKernel() {
        Tensor x = be.upload(new float[] {1, 2}, 2);
        Tensor y = be.zeros(DType.F32, 2);
        be.scale(x, 3f, y);
        assertEquals(List.of("scale F32", "fast"), tierCalls);
        Tensor xb = be.upload(new float[] {1, 2}, DType.BF16, 2);
        Tensor yb = be.zeros(DType.BF16, 2);
        int before = driver.launches.size();
        be.scale(xb, 3f, yb);
        assertEquals(List.of("scale F32", "fast", "scale BF16"), tierCalls);
        assertEquals(before + 1, driver.launches.size());
        assertEquals("scale_fwd_kernel1", driver.launches.get(before).kernel());
        assertEquals(DType.BF16.ordinal(), (int) driver.launches.get(before).slots()[1], "portable kernel got the dtype code");
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
