package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.ffm.FfmCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaDevice;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Proves that on a machine without an NVIDIA driver (this one, CI) both CUDA devices report themselves unavailable
 * with the exact reason, the registry (and so {@code lorakit info}) lists them with it, opening them throws that reason
 * instead of crashing, {@code auto} passes over them, and touching JCuda's JNI library becomes the reason "JCuda
 * natives failed to load" (UnsatisfiedLinkError, then NoClassDefFoundError) rather than an error. Skipped where
 * libcuda.so.1 exists (the GPU machine runs the *IT tests instead).
 */
class CudaUnavailableTest {

    @BeforeAll
    static void onlyWithoutADriver() {
        assumeFalse(CudaProbe.get().libraryFound(), "libcuda.so.1 is present: this is the no-GPU test");
    }

    @Test
    void bothDevicesSayThereIsNoDriver() {
        for (String r : List.of(FfmCudaDevice.unavailableReason(), JCudaDevice.unavailableReason())) {
            assertTrue(r.startsWith("no NVIDIA driver: libcuda.so.1 is not on the library path"), r);
        }
        GpuException e = assertThrows(GpuException.class, () -> FfmCudaDevice.open(0));
        assertTrue(e.getMessage().startsWith("cuda-ffm is unavailable: no NVIDIA driver"), e.getMessage());
        e = assertThrows(GpuException.class, () -> JCudaDevice.open(0));
        assertTrue(e.getMessage().startsWith("cuda-jcuda is unavailable: no NVIDIA driver"), e.getMessage());
    }

    @Test
    void theRegistryListsThemWithTheReasonAndAutoPassesOver() {
        List<BackendRegistry.Status> all = BackendRegistry.list();
        for (String name : List.of("cuda-ffm", "cuda-jcuda")) {
            BackendRegistry.Status s = all.stream().filter(x -> x.name().equals(name)).findFirst().orElseThrow();
            assertFalse(s.available(), s.toString());
            assertTrue(s.reason().startsWith("no NVIDIA driver"), s.reason());
            String line = s.toString();   // what `lorakit info` prints
            assertTrue(line.startsWith(name) && line.contains("unavailable") && line.contains("libcuda.so.1"), line);
            GpuException e = assertThrows(GpuException.class, () -> BackendRegistry.open(name));
            assertTrue(e.getMessage().contains("backend '" + name + "' is unavailable: no NVIDIA driver"), e.getMessage());
        }
        try (Backend b = BackendRegistry.open("auto")) {
            assertFalse(b.name().startsWith("cuda"), b.name());
        }
    }

    @Test
    void jcudaNativesFailingToLoadIsAReasonNotACrash() {
        String first = JCudaDevice.nativesReason();
        assertTrue(first != null && first.startsWith("JCuda natives failed to load ("), String.valueOf(first));
        assertTrue(first.contains("libcuda"), first);
        String second = JCudaDevice.nativesReason();   // the JVM never retries: now NoClassDefFoundError
        assertTrue(second != null && second.startsWith("JCuda natives failed to load ("), String.valueOf(second));
        assertNotEquals("", second);
    }
}
