package ai.lorakit.gpu.cuda;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves each "why is CUDA unavailable" reason is exact, from the probe's facts (so every case is tested without a
 * GPU): no libcuda, no device (cuInit 100, or a count of 0), driver too old (cuInit 35, or a driver older than the
 * fatbin needs), other cuInit failures by name, a probe that failed, and the fatbin missing from the jar.
 */
class CudaProbeTest {
    private static final int MIN = 13000;

    @Test
    void noDriver() {
        String r = new CudaProbe(false, -1, 0, 0, null).unavailableReason(MIN, true);
        assertTrue(r.startsWith("no NVIDIA driver: libcuda.so.1 is not on the library path"), r);
    }

    @Test
    void noDevice() {
        assertEquals("no CUDA device: cuInit reports CUDA_ERROR_NO_DEVICE (100)",
                new CudaProbe(true, 100, 13000, 0, null).unavailableReason(MIN, true));
        assertEquals("no CUDA device: the driver (CUDA 13.0) lists none",
                new CudaProbe(true, 0, 13000, 0, null).unavailableReason(MIN, true));
    }

    @Test
    void driverTooOld() {
        String r = new CudaProbe(true, 35, 12040, 0, null).unavailableReason(MIN, true);
        assertEquals("driver too old: cuInit reports CUDA_ERROR_INSUFFICIENT_DRIVER (35) (driver supports CUDA 12.4)", r);
        r = new CudaProbe(true, 0, 12080, 1, null).unavailableReason(MIN, true);
        assertTrue(r.startsWith("driver too old: it supports CUDA 12.8, lorakit's fatbin was built by nvcc 13.0 and needs a"
                + " CUDA 13.0 driver"), r);
        assertNull(new CudaProbe(true, 0, 12080, 1, null).unavailableReason(12000, true), "a lower minimum accepts it");
    }

    @Test
    void otherFailuresAreNamed() {
        assertEquals("cuInit failed: CUDA_ERROR_STUB_LIBRARY (34): no usable CUDA device",
                new CudaProbe(true, 34, 0, 0, null).unavailableReason(MIN, true));
        assertEquals("cuInit failed: CUDA_ERROR_777 (777)", new CudaProbe(true, 777, 0, 0, null).unavailableReason(MIN, true));
        assertEquals("probing libcuda.so.1 failed: boom", new CudaProbe(true, -1, 0, 0, "boom").unavailableReason(MIN, true));
    }

    @Test
    void fatbinMissingAndAllGood() {
        String r = new CudaProbe(true, 0, 13000, 2, null).unavailableReason(MIN, false);
        assertTrue(r.startsWith("fatbin missing: the jar has no ai/lorakit/kernels/lorakit.fatbin"), r);
        assertNull(new CudaProbe(true, 0, 13020, 2, null).unavailableReason(MIN, true));
        assertEquals("CUDA driver 13.2, 2 device(s)", new CudaProbe(true, 0, 13020, 2, null).summary());
    }

    @Test
    void theProbeOfThisMachineNeverThrowsAndIsConsistent() {
        CudaProbe p = CudaProbe.run();
        String r = p.unavailableReason();
        if (!p.libraryFound()) {
            assertTrue(r.startsWith("no NVIDIA driver"), r);
        } else if (p.initStatus() == 0 && p.deviceCount() > 0 && p.driverVersion() >= CudaProbe.minDriverVersion()
                && CudaProbe.fatbinPresent()) {
            assertNull(r);
        } else {
            assertTrue(r != null && !r.isBlank());
        }
    }
}
