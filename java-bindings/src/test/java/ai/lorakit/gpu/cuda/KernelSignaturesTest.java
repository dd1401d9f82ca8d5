package ai.lorakit.gpu.cuda;

import org.junit.jupiter.api.Test;

import java.util.HashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that the fake driver's argument-count check reads the kernel sources right: hand-counted signatures
 * (with comments, launch bounds and nested parentheses) parse to their counts, kernels of both source kinds are
 * found in the tree, and a launch with the wrong count is refused with a message naming the kernel.
 */
class KernelSignaturesTest {

    @Test
    void parsesSignaturesWithCommentsAndLaunchBounds() {
        Map<String, Integer> m = new HashMap<>();
        KernelSignatures.parse("""
                extern "C" __global__ void __launch_bounds__(THREADS, 2)
                k_one(const float* x, /* a, b */ int n, float s) { f(a, b); }
                KERNEL void k_two(GLOBAL const void* a, int dta) { }
                // extern "C" __global__ void k_commented(int a)
                extern "C" __global__ void k_none() { }
                """, m);
        assertEquals(Map.of("k_one", 3, "k_two", 2, "k_none", 0), m);
    }

    @Test
    void findsTheTreesKernelsAndRefusesAWrongCount() {
        Map<String, Integer> a = KernelSignatures.arity();
        // counted by hand from lora_fused.cu and elementwise.kc
        assertEquals(12, a.get("lora_shrink_fwd_kernel2"));
        assertEquals(16, a.get("lora_linear_bwd_x_kernel1"));
        assertTrue(a.containsKey("copy_strided_fwd_kernel1") && a.containsKey("gemm_fwd_kernel1"), a.keySet().toString());
        KernelSignatures.checkArity("lora_shrink_fwd_kernel2", 12);
        KernelSignatures.checkArity("not_a_kernel", 3);
        AssertionError e = assertThrows(AssertionError.class,
                () -> KernelSignatures.checkArity("lora_shrink_fwd_kernel2", 10));
        assertTrue(e.getMessage().contains("lora_shrink_fwd_kernel2 with 10 arguments")
                && e.getMessage().contains("takes 12"), e.getMessage());
    }
}
