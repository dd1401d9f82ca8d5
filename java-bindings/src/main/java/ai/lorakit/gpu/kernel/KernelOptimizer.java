package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

import java.util.List;

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

    /**
     * Backend.adamwClipped: adamw_clip_fwd_kernel1 per tensor, each reading the norm slot of stats on the device
     * (no host transfer); the lists are checked first, so a bad entry changes nothing.
     */
    void adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs, List<AdamW> hps,
                      Tensor stats, int normAt, float maxNorm) {
        String op = "adamwClipped";
        OpChecks.adamwLists(op, params, grads, ms, vs, hps, stats, normAt);
        DeviceBuffer sb = be.math(op, stats);
        for (int i = 0; i < params.size(); i++) {
            Tensor param = params.get(i), grad = grads.get(i), m = ms.get(i), v = vs.get(i);
            be.math(op, param);
            be.math(op, grad);
            be.math(op, m);
            be.math(op, v);
            OpChecks.sameNumel(op, param, grad);
            OpChecks.sameNumel(op, param, m);
            OpChecks.sameNumel(op, param, v);
        }
        for (int i = 0; i < params.size(); i++) {
            Tensor param = params.get(i), grad = grads.get(i), m = ms.get(i), v = vs.get(i);
            long n = param.numel();
            if (n == 0) {
                continue;
            }
            AdamW hp = hps.get(i);
            float decay = 1f - hp.lr() * hp.weightDecay();
            double bc1 = 1.0 - Math.pow(hp.beta1(), hp.step());
            double bc2 = 1.0 - Math.pow(hp.beta2(), hp.step());
            be.launch("adamw_clip_fwd_kernel1", Dim3.of(KernelBackend.strideGroups(n, BLOCK)), Dim3.of(BLOCK),
                    be.math(op, param), KernelBackend.code(param), be.math(op, grad), KernelBackend.code(grad),
                    be.math(op, m), KernelBackend.code(m), be.math(op, v), KernelBackend.code(v), n, hp.beta1(),
                    hp.beta2(), hp.eps(), decay, (float) (hp.lr() / bc1), (float) Math.sqrt(bc2), sb, normAt,
                    maxNorm);
        }
    }
}
