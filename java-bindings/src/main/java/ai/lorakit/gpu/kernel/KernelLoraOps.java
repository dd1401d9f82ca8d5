package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.Tensor;

/**
 * LoRA-family ops of KernelBackend. LoRA shrink and expand run on their fused portable kernels
 * (lora_shrink.kc, lora_expand.kc) when every tensor is an F32 tensor of this backend with matching shapes;
 * otherwise (other dtypes, or arguments the checks must reject) KernelBackend falls back to Backend's default
 * composition, which produces CpuBackend's exact messages. The other defaults (loraLinearForward,
 * doraWeightNorm, veraForward, deltaLoraUpdate, loraImportance) already run through KernelBackend's GEMM and
 * elementwise kernels; their fused kernels, and AdaLoRA's two elementwise ops below, are pending
 * (KernelBackend.PENDING_OPS).
 */
final class KernelLoraOps {
    /** LORA_SHRINK_TILE / LORA_EXPAND_TILE of the kernels. */
    static final int TILE = 16;

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

    void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1, float beta2) {
        throw be.pending("adaloraSensitivity");
    }

    void maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        throw be.pending("maskWhereAtMost");
    }
}
