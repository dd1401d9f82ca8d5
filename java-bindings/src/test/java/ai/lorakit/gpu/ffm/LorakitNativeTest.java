package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.NativeAbi;
import ai.lorakit.gpu.cuda.CudaProbe;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves the FFM device's native half without a GPU: liblorakit.so is extracted from the jar and loaded, its ABI version
 * is checked (and a mismatch is refused with both numbers and the remedy), every launcher's status is checked with
 * lorakit_last_error() in the message (bad arguments are named before any CUDA call), and without a driver the CUDA
 * runtime inside it reports "no device" instead of crashing.
 */
class LorakitNativeTest {

    @BeforeAll
    static void libraryPresent() {
        assumeTrue(LorakitNative.present(), "the jar has no liblorakit.so (built without nvcc)");
    }

    @Test
    void loadsAndPassesTheAbiHandshake() {
        LorakitNative lib = LorakitNative.get();
        assertEquals(NativeAbi.ABI_VERSION, lib.abiVersion());
        assertTrue(lib.file().toString().endsWith(".so"), lib.file().toString());
        GpuException e = assertThrows(GpuException.class, () -> LorakitNative.checkAbi(1, 2, "/tmp/liblorakit.so"));
        assertTrue(e.getMessage().contains("ABI mismatch: /tmp/liblorakit.so reports lorakit_abi_version() = 1 but this"
                + " lorakit jar expects 2") && e.getMessage().contains("rebuild both"), e.getMessage());
        LorakitNative.checkAbi(3, 3, "same");
    }

    @Test
    void launcherFailuresCarryTheLastError() {
        LorakitNative lib = LorakitNative.get();
        GpuException e = assertThrows(GpuException.class, () -> lib.loraShrinkF32(0, 0x1000, 0x2000, 4, 8, 2, 0));
        assertTrue(e.getMessage().equals("lorakit_lora_shrink_f32 failed (LORAKIT_ERR_INVALID): lorakit_lora_shrink_f32: x"
                + " is NULL"), e.getMessage());
        e = assertThrows(GpuException.class, () -> lib.loraExpandF32(0x1000, 0x2000, 0x3000, 4, 0, 8, 1f, 0));
        assertTrue(e.getMessage().contains("r = 0, must be > 0"), e.getMessage());
        e = assertThrows(GpuException.class, () -> lib.benchLaunchShrinkF32(0, 0x1000, 0x2000, 0x3000, 4, 8, 2, 0));
        assertTrue(e.getMessage().contains("count = 0, must be > 0"), e.getMessage());
    }

    @Test
    void withoutADriverTheRuntimeReportsNoDevice() {
        assumeTrue(!CudaProbe.get().libraryFound(), "libcuda.so.1 is present");
        LorakitNative lib = LorakitNative.get();
        int[] r = lib.cudaDeviceCount();
        assertTrue(r[0] == 35 || r[0] == 100 || r[0] == 34 || r[0] == 999, "cudaGetDeviceCount status " + r[0]);
        assertEquals(0, r[1]);
        assertTrue(lib.lastError().contains("cudaGetDeviceCount"), lib.lastError());
        GpuException e = assertThrows(GpuException.class, () -> lib.loraShrinkF32(0x1000, 0x2000, 0x3000, 4, 8, 2, 0));
        assertTrue(e.getMessage().contains("LORAKIT_ERR_CUDA") && e.getMessage().contains("lora_shrink_fwd_kernel1"),
                e.getMessage());
    }
}
