package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.Tensor;

/**
 * The GPT-2 transformer ops of KernelBackend (layernorm, GELU, softmax, attention, cross-entropy, embedding).
 * Their portable kernels are pending: each method throws "not yet implemented" (KernelBackend.PENDING_OPS).
 * To add one: write cuda-kernels/portable/<op>.kc (STYLE.md 11), validate here with OpChecks exactly as
 * CpuBackend does, launch by name, and delete the op's line from KernelBackend.PENDING_OPS.
 */
final class KernelTransformerOps {
    private final KernelBackend be;

    KernelTransformerOps(KernelBackend be) {
        this.be = be;
    }

    void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean, Tensor rstd) {
        throw be.pending("layerNormForward");
    }

    void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dgamma, Tensor dbeta) {
        throw be.pending("layerNormBackward");
    }

    void geluForward(Tensor x, Tensor out) {
        throw be.pending("geluForward");
    }

    void geluBackward(Tensor x, Tensor dout, Tensor dx) {
        throw be.pending("geluBackward");
    }

    void softmaxRows(Tensor x, Tensor out) {
        throw be.pending("softmaxRows");
    }

    void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        throw be.pending("attentionForward");
    }

    void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        throw be.pending("attentionBackward");
    }

    void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        throw be.pending("crossEntropyForward");
    }

    void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        throw be.pending("crossEntropyBackward");
    }

    void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        throw be.pending("embeddingForward");
    }

    void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        throw be.pending("embeddingBackward");
    }
}
