package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Tensor;

/**
 * The optimizer op of KernelBackend (AdamW, torch.optim.AdamW semantics as CpuBackend). Its portable kernel is
 * pending: {@link #adamw} throws "not yet implemented" (KernelBackend.PENDING_OPS).
 */
final class KernelOptimizer {
    private final KernelBackend be;

    KernelOptimizer(KernelBackend be) {
        this.be = be;
    }

    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        throw be.pending("adamw");
    }
}
