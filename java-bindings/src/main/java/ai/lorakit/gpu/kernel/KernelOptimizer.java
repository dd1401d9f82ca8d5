package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

/**
 * The optimizer op of KernelBackend: one AdamW step (torch.optim.AdamW semantics, the formula in
 * {@link AdamW}) on adamw_fwd_kernel1 (cuda-kernels/portable/adamw.kc). Per-group learning rates arrive as the
 * per-call {@code hp.lr()}; frozen parameters are never passed. The step-dependent scalars are folded here
 * exactly as CpuBackend folds them (bias corrections in double, then to float), so both backends evaluate the
 * same fp32 expression.
 */
final class KernelOptimizer {
    static final int BLOCK = 256;

    private final KernelBackend be;

    KernelOptimizer(KernelBackend be) {
        this.be = be;
    }

    /** param, m, v updated in place from grad; all four the same numel, any F32/BF16/F16 mix. */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        String op = "adamw";
        DeviceBuffer pb = be.math(op, param), gb = be.math(op, grad), mb = be.math(op, m), vb = be.math(op, v);
        if (hp == null) {
            throw new IllegalArgumentException(op + ": hyper-parameters are null");
        }
        OpChecks.sameNumel(op, param, grad);
        OpChecks.sameNumel(op, param, m);
        OpChecks.sameNumel(op, param, v);
        long n = param.numel();
        if (n == 0) {
            return;
        }
        float decay = 1f - hp.lr() * hp.weightDecay();
        double bc1 = 1.0 - Math.pow(hp.beta1(), hp.step());
        double bc2 = 1.0 - Math.pow(hp.beta2(), hp.step());
        float stepSize = (float) (hp.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        be.launch("adamw_fwd_kernel1", Dim3.of(KernelBackend.strideGroups(n, BLOCK)), Dim3.of(BLOCK),
                pb, KernelBackend.code(param), gb, KernelBackend.code(grad), mb, KernelBackend.code(m),
                vb, KernelBackend.code(v), n, hp.beta1(), hp.beta2(), hp.eps(), decay, stepSize, bc2Sqrt);
    }
}
