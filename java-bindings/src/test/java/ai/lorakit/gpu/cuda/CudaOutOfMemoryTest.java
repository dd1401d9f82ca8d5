package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceOutOfMemoryException;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, on the in-memory driver with 1 MiB of device memory, that CUDA_ERROR_OUT_OF_MEMORY becomes a
 * {@link DeviceOutOfMemoryException} naming what was allocated, its bytes, the device's free and total memory and
 * the remedy, and that nothing is half-done: the device tracks no new buffer, the driver holds no new memory, and
 * the next allocation that fits works.
 */
class CudaOutOfMemoryTest {

    @Test
    void outOfMemoryNamesSizeFreeTotalAndRemedy() {
        FakeDriver driver = new FakeDriver();
        driver.totalMem = 1 << 20;
        try (FakeDriver.Device dev = new FakeDriver.Device(driver, 0)) {
            DeviceBuffer held = dev.alloc(600_000);
            int live = driver.memory.size();
            DeviceOutOfMemoryException e = assertThrows(DeviceOutOfMemoryException.class, () -> dev.alloc(500_000));
            String m = e.getMessage();
            assertTrue(m.contains("CUDA_ERROR_OUT_OF_MEMORY") && m.contains("a device buffer of 500000 bytes")
                    && m.contains("0.4 MiB free of 1.0 MiB total")
                    && m.contains("--batch") && m.contains("--precision bf16") && m.contains("Fake GPU"), m);
            assertEquals(500_000, e.bytes());
            assertEquals((1 << 20) - 600_000, e.freeBytes());
            assertEquals(1 << 20, e.totalBytes());
            assertEquals(live, driver.memory.size(), "a failed allocation holds no device memory");
            dev.free(held);
            dev.free(dev.alloc(500_000));   // fits now
            assertTrue(driver.memory.isEmpty());
        }
    }

    @Test
    void aBackendTensorThatDoesNotFitLeavesTheBackendUsable() {
        org.junit.jupiter.api.Assumptions.assumeTrue(ai.lorakit.gpu.KernelSources.fatbin().isPresent(),
                "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        driver.totalMem = 8 << 20;
        try (CudaBackend be = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true,
                false, false)) {
            long before = driver.used();
            assertThrows(DeviceOutOfMemoryException.class, () -> be.zeros(DType.F32, 4096, 1024));   // 16 MiB
            assertEquals(before, driver.used(), "nothing allocated by the failed tensor");
            try (Tensor t = be.upload(new float[] {1, 2, 3}, DType.F32, 3)) {
                assertEquals(3f, be.download(t)[2]);
            }
        }
    }
}
