package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

/**
 * The frozen layer an adapter is attached to, and the few ops on it every variant needs. W is [out,in]
 * (torch Linear, y = x W^T) or [in,out] when {@code fifo} (GPT-2 Conv1D, y = x W); bias [out] or null.
 * Not owned: the caller created W and bias and closes them.
 *
 * @param name    the layer's full module name, used in messages
 * @param backend the backend owning W
 * @param w       W [out,in] or [in,out]
 * @param bias    b [out] or null
 * @param fifo    fan_in_fan_out (W stored [in,out])
 * @param in      input features
 * @param out     output features
 * @param scratch the adapted layer's work tensors (its variant's temporaries and forward cache)
 */
record BaseLinear(String name, Backend backend, Tensor w, Tensor bias, boolean fifo, int in, int out,
                  Scratch scratch) {

    /** y = x op(W) (+ b when withBias); x [N,in], y [N,out] (written). */
    void forward(Tensor x, Tensor y, boolean withBias) {
        backend.matmul(x, false, w, !fifo, y, 1f, 0f);
        if (withBias && bias != null) {
            backend.addRowVector(y, bias, y);
        }
    }

    /** dx = g op(W)^T + beta dx: g [N,out], dx [N,in] (the gradient through the frozen W). */
    void inputGrad(Tensor g, Tensor dx, float beta) {
        // y = x W^T -> dx = g W ([N,out] x [out,in]); fifo: y = x W -> dx = g W^T ([N,out] x [out,in])
        backend.matmul(g, false, w, fifo, dx, 1f, beta);
    }

    /** A new F32 tensor of zeros shaped like W. */
    Tensor zerosLikeW() {
        return backend.zeros(DType.F32, w.shape());
    }

    /**
     * A delta computed as [out,in] in W's layout: returned as is, or transposed to [in,out] (and the input
     * closed) when fifo (VARIANTS.md: transpose(M, fifo)).
     */
    Tensor toWeightLayout(Tensor deltaOutIn) {
        if (!fifo) {
            return deltaOutIn;
        }
        try (deltaOutIn) {
            Tensor t = backend.zeros(DType.F32, in, out);
            try {
                backend.transpose(deltaOutIn, t);
                return t;
            } catch (RuntimeException e) {
                t.close();
                throw e;
            }
        }
    }

    /**
     * PEFT's safe_merge: W = candidate only if every value of the candidate is finite; otherwise W stays as it
     * was and a {@link NonFiniteMergeException} names the culprit: the base W when it already held NaN/Inf,
     * otherwise the adapter (VARIANTS.md section 1).
     */
    void replaceWeightChecked(Tensor candidate) {
        if (backend.countNonFinite(candidate) > 0) {
            long baseBad = backend.countNonFinite(w);
            throw baseBad > 0 ? NonFiniteMergeException.base(name, baseBad, w.numel())
                    : NonFiniteMergeException.adapter(name);
        }
        backend.copy(candidate, w);
    }

    /** Safe W += sign * delta (delta in W's layout). */
    void addToWeight(Tensor delta, float sign) {
        try (Tensor candidate = zerosLikeW()) {
            backend.copy(w, candidate);
            backend.axpby(sign, delta, 1f, candidate);
            replaceWeightChecked(candidate);
        }
    }
}
