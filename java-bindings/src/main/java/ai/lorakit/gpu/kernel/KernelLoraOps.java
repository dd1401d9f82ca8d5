package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

/**
 * LoRA-family ops of KernelBackend. LoRA shrink and expand run on their fused portable kernels
 * (lora_shrink.kc, lora_expand.kc) when every tensor is an F32 tensor of this backend with matching shapes;
 * otherwise (other dtypes, or arguments the checks must reject) KernelBackend falls back to Backend's default
 * composition, which produces CpuBackend's exact messages. The other defaults (loraLinearForward,
 * doraWeightNorm, veraForward, deltaLoraUpdate, loraImportance) already run through KernelBackend's GEMM and
 * elementwise kernels (their fused kernels are future work). AdaLoRA's two elementwise ops run on adalora.kc.
 */
final class KernelLoraOps {
    /** LORA_SHRINK_TILE / LORA_EXPAND_TILE of the kernels. */
    static final int TILE = 16;
    /** ADALORA_BLOCK of adalora.kc. */
    static final int BLOCK = 256;

    private final KernelBackend be;

    KernelLoraOps(KernelBackend be) {
        this.be = be;
    }

    /** u[N,r] = x[N,in] A[r,in]^T on lora_shrink_fwd_kernel1; false if the fast path does not apply. */
    boolean shrink(Tensor x, Tensor a, Tensor u) {
        if (!be.usableF32(x) || !be.usableF32(a) || !be.usableF32(u) || u == x || u == a) {
            return false;
        }
        int n = x.rows(), in = x.cols(), r = a.rows();
        if (a.cols() != in || u.rows() != n || u.cols() != r || n == 0 || r == 0
                || (r + TILE - 1) / TILE > KernelGemm.MAX_GRID_YZ) {
            return false;
        }
        DeviceBuffer xb = be.math("loraShrink", x), ab = be.math("loraShrink", a), ub = be.math("loraShrink", u);
        be.launch("lora_shrink_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(n, TILE), KernelBackend.ceilDiv(r, TILE)),
                Dim3.of(TILE, TILE), xb, ab, ub, n, in, r);
        return true;
    }

    /** y[N,out] += s u[N,r] B[out,r]^T on lora_expand_fwd_kernel1; false if the fast path does not apply. */
    boolean expand(Tensor u, Tensor b, float s, Tensor y) {
        if (!be.usableF32(u) || !be.usableF32(b) || !be.usableF32(y) || y == u || y == b) {
            return false;
        }
        int n = u.rows(), r = u.cols(), out = b.rows();
        if (b.cols() != r || y.rows() != n || y.cols() != out || n == 0 || out == 0
                || (out + TILE - 1) / TILE > KernelGemm.MAX_GRID_YZ) {
            return false;
        }
        DeviceBuffer ub = be.math("loraExpand", u), bb = be.math("loraExpand", b), yb = be.math("loraExpand", y);
        be.launch("lora_expand_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(n, TILE), KernelBackend.ceilDiv(out, TILE)),
                Dim3.of(TILE, TILE), ub, bb, yb, n, r, out, s);
        return true;
    }

    /**
     * AdaLoRA sensitivity smoothing (adalora_sensitivity_fwd_kernel1): I = |p ∘ g|, Ī ← β1 Ī + (1-β1) I,
     * Ū ← β2 Ū + (1-β2) |I - Ī|; all four the same numel.
     */
    void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1, float beta2) {
        String op = "adaloraSensitivity";
        DeviceBuffer pb = be.math(op, p), gb = be.math(op, grad), ib = be.math(op, expAvgIpt),
                ub = be.math(op, expAvgUnc);
        OpChecks.sameNumel(op, p, grad);
        OpChecks.sameNumel(op, p, expAvgIpt);
        OpChecks.sameNumel(op, p, expAvgUnc);
        long n = p.numel();
        if (n > 0) {
            be.launch("adalora_sensitivity_fwd_kernel1", Dim3.of(KernelBackend.strideGroups(n, BLOCK)),
                    Dim3.of(BLOCK), pb, KernelBackend.code(p), gb, KernelBackend.code(grad), ib,
                    KernelBackend.code(expAvgIpt), ub, KernelBackend.code(expAvgUnc), n, beta1, beta2);
        }
    }

    /** target[i] = 0 where scores[i] <= threshold (adalora_mask_fwd_kernel1); NaN scores keep the element. */
    void maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        String op = "maskWhereAtMost";
        DeviceBuffer tb = be.math(op, target), sb = be.math(op, scores);
        OpChecks.sameNumel(op, target, scores);
        long n = target.numel();
        if (n > 0) {
            be.launch("adalora_mask_fwd_kernel1", Dim3.of(KernelBackend.strideGroups(n, BLOCK)), Dim3.of(BLOCK),
                    tb, KernelBackend.code(target), sb, KernelBackend.code(scores), n, threshold);
        }
    }
}
