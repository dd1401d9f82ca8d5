package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.api.Test;


import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on the in-memory driver, that CUDA backends created and closed dozens of times with thousands of
 * tensors (some left open for close() to reclaim) free every allocation: cuMemAlloc calls equal cuMemFree calls,
 * module loads equal unloads, primary-context retains equal releases (beyond the one reference lorakit pins per
 * device), and the driver holds no memory at the end.
 */
class CudaLeakSoakTest {

    @Test
    void backendsAndTensorsFreeEverything() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        int backends = 30;            // each loads the fatbin: ~0.2 s
        for (int b = 0; b < backends; b++) {
            CudaBackend be = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true, false, false);
            try (be) {
                for (int i = 0; i < 40; i++) {
                    try (Tensor x = be.upload(new float[] {i, 2, 3, 4}, DType.F32, 2, 2);
                         Tensor y = be.zeros(DType.F32, 2, 2)) {
                        be.copy(x, y);
                        assertEquals(i, be.download(y)[0]);
                    }
                }
                be.zeros(DType.F32, 16);   // left open: closing the backend must free it
            }
            assertTrue(driver.memory.isEmpty(), "after backend " + b + ": " + driver.memory.size() + " allocations left");
        }
        assertEquals(count(driver, "cuMemAlloc") + count(driver, "cuMemAllocAsync"),
                count(driver, "cuMemFree") + count(driver, "cuMemFreeAsync"), "allocations vs frees");
        assertTrue(count(driver, "cuMemAlloc") >= backends * 81, "the soak allocated " + count(driver, "cuMemAlloc"));
        assertEquals(count(driver, "cuModuleLoadData"), count(driver, "cuModuleUnload"), "module loads vs unloads");
        long retains = count(driver, "cuDevicePrimaryCtxRetain");
        long releases = count(driver, "cuDevicePrimaryCtxRelease");
        assertTrue(retains - releases <= 1, "primary context retains " + retains + " vs releases " + releases);
    }

    private static long count(FakeDriver d, String call) {
        return d.calls.stream().filter(call::equals).count();
    }
}
