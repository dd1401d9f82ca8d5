package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.KernelSources;
import org.junit.jupiter.api.Test;

import java.nio.charset.StandardCharsets;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves the CUDA module lists its kernels from the fatbin bytes: NUL-terminated {@code <op>_<dir>_kernel<N>} names
 * are found, other strings are not, and the real fatbin (when nvcc built it) holds every portable kernel.
 */
class CudaModuleNamesTest {

    @Test
    void scansNulTerminatedKernelNames() {
        byte[] bytes = ("\u0000junk\u0000gemm_fwd_kernel1\u0000.text.lora_shrink_fwd_kernel12\u0000not_a_kernel\u0000"
                + "kernel1\u0000").getBytes(StandardCharsets.ISO_8859_1);
        assertEquals(Set.of("gemm_fwd_kernel1", "lora_shrink_fwd_kernel12"), CudaModule.scanNames(bytes));
    }

    @Test
    void theFatbinHoldsEveryPortableKernel() {
        byte[] fatbin = KernelSources.fatbin().orElse(null);
        assumeTrue(fatbin != null, "the jar has no fatbin (built without nvcc)");
        Set<String> names = CudaModule.scanNames(fatbin);
        for (String k : KernelSources.portable().kernelNames()) {
            assertTrue(names.contains(k), k + " missing from the fatbin's names " + names);
        }
    }
}
