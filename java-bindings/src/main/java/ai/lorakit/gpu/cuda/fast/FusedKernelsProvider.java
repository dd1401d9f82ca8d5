package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.cuda.FastTier;
import ai.lorakit.gpu.cuda.FastTierProvider;

/**
 * The fast tier of cuda-kernels/cuda/*.cu (listed in META-INF/services/ai.lorakit.gpu.cuda.FastTierProvider):
 * opens one {@link FusedKernelsTier} per CUDA backend. {@code -Dlorakit.cuda.fastTier=false} turns it off.
 */
public final class FusedKernelsProvider implements FastTierProvider {
    /** The name in {@link CudaBackend#description()}. */
    public static final String NAME = "cuda-fused";

    public FusedKernelsProvider() {
    }

    @Override
    public String name() {
        return NAME;
    }

    @Override
    public FastTier open(CudaBackend backend) {
        return new FusedKernelsTier(backend);
    }
}
