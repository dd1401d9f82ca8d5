package ai.lorakit.gpu;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the registry lists every backend in auto order, that the CPU backend always opens, and that an
 * unavailable or unknown backend is reported with a reason instead of crashing.
 */
class BackendRegistryTest {

    @Test
    void listsEveryBackendInAutoOrderWithReasons() {
        List<BackendRegistry.Status> all = BackendRegistry.list();
        assertEquals(List.of("cuda-ffm", "cuda-jcuda", "opencl", "cpu"),
                all.stream().map(BackendRegistry.Status::name).toList());
        BackendRegistry.Status cpu = all.get(3);
        assertTrue(cpu.available(), cpu.toString());
        for (BackendRegistry.Status s : all) {
            assertTrue(s.available() || !s.reason().isBlank(), "unavailable without a reason: " + s);
        }
    }

    @Test
    void cudaIsUnavailableWithAReasonOnThisMachine() {
        // CUDA devices are not implemented in this build: whatever the driver says, the reason must say why.
        BackendRegistry.Status cuda = BackendRegistry.list().get(0);
        assertFalse(cuda.available());
        assertTrue(cuda.reason().contains("libcuda") || cuda.reason().contains("CUDA"), cuda.reason());
        GpuException e = assertThrows(GpuException.class, () -> BackendRegistry.open("cuda-ffm"));
        assertTrue(e.getMessage().contains("unavailable") && e.getMessage().contains("--backend cpu"), e.getMessage());
    }

    @Test
    void autoFallsBackToCpuAndUnknownNamesAreRejected() {
        try (Backend b = BackendRegistry.open("auto")) {
            assertEquals("cpu", b.name());
        }
        try (Backend b = BackendRegistry.open("cpu")) {
            assertEquals("cpu", b.name());
        }
        GpuException e = assertThrows(GpuException.class, () -> BackendRegistry.open("tpu"));
        assertTrue(e.getMessage().contains("unknown backend 'tpu'") && e.getMessage().contains("opencl"), e.getMessage());
    }
}
