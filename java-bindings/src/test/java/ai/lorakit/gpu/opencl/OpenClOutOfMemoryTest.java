package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceOutOfMemoryException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.kernel.KernelBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves that CL_MEM_OBJECT_ALLOCATION_FAILURE from clCreateBuffer (simulated through the device's test hook: PoCL
 * allocates lazily and does not fail where a GPU would) becomes a {@link DeviceOutOfMemoryException} naming the
 * size, the device's total memory and the remedy, with nothing half-done: the device tracks no new buffer and the
 * backend keeps working.
 */
class OpenClOutOfMemoryTest {

    @AfterEach
    void unhook() {
        OpenClDevice.allocStatusHook = null;
    }

    @Test
    void allocationFailureIsAClearOutOfMemoryError() {
        String reason = OpenClBackend.unavailableReason();
        if (reason != null && Boolean.getBoolean("lorakit.test.requireOpenCl")) {
            throw new AssertionError("lorakit.test.requireOpenCl is set but OpenCL is unavailable: " + reason);
        }
        assumeTrue(reason == null, "OpenCL unavailable: " + reason);
        try (KernelBackend be = OpenClBackend.open()) {
            OpenClDevice dev = (OpenClDevice) be.device();
            int live = dev.liveBuffers();
            OpenClDevice.allocStatusHook = status -> OpenClDevice.CL_MEM_OBJECT_ALLOCATION_FAILURE;
            DeviceOutOfMemoryException e = assertThrows(DeviceOutOfMemoryException.class,
                    () -> be.zeros(DType.F32, 256, 1024));
            OpenClDevice.allocStatusHook = null;
            String m = e.getMessage();
            assertTrue(m.contains("CL_MEM_OBJECT_ALLOCATION_FAILURE") && m.contains("of 1048576 bytes (1.0 MiB)")
                    && m.contains("free memory unknown") && m.contains("MiB total") && m.contains("--batch")
                    && m.contains("--precision bf16"), m);
            assertEquals(1048576, e.bytes());
            assertTrue(e.totalBytes() > 0);
            assertEquals(live, dev.liveBuffers(), "a failed allocation leaves no buffer behind");
            try (Tensor t = be.upload(new float[] {1, 2, 3}, DType.F32, 3)) {
                assertEquals(2f, be.download(t)[1]);
            }
        }
    }
}
