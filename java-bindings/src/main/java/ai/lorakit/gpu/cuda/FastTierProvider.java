package ai.lorakit.gpu.cuda;

import java.util.ArrayList;
import java.util.List;
import java.util.ServiceLoader;

/**
 * Makes the {@link FastTier} of one {@link CudaBackend}. Providers are found with {@link ServiceLoader}: list the
 * class in {@code META-INF/services/ai.lorakit.gpu.cuda.FastTierProvider} (java-bindings/src/main/resources) and give
 * it a public no-argument constructor. They are asked in the order the service file lists them; the first tier that
 * handles a call wins. {@code -D}{@value #DISABLE_PROPERTY}{@code =false} turns every provider off (the portable
 * kernels and cuBLAS alone: the reference-first flag of STYLE.md 12.1).
 */
public interface FastTierProvider {
    /** System property: "false" disables the fast tier. */
    String DISABLE_PROPERTY = "lorakit.cuda.fastTier";

    /** A short name for descriptions, e.g. "lora-fused". */
    String name();

    /** The tier for {@code backend} (opened once per backend; may look its kernels up eagerly). */
    FastTier open(CudaBackend backend);

    /** The providers on the class path, or none when {@value #DISABLE_PROPERTY}=false. */
    static List<FastTierProvider> installed() {
        if ("false".equalsIgnoreCase(System.getProperty(DISABLE_PROPERTY))) {
            return List.of();
        }
        List<FastTierProvider> out = new ArrayList<>();
        ServiceLoader.load(FastTierProvider.class, FastTierProvider.class.getClassLoader()).forEach(out::add);
        return out;
    }
}
