package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Tensor;

import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * CUDA fast-tier overrides of Backend ops (cuda-kernels/cuda/*.cu: tensor cores, warp shuffles, fused epilogues),
 * one instance per {@link CudaBackend}, made by a {@link FastTierProvider}. Every method mirrors the Backend op of
 * the same name and returns whether it did the op: {@code true} = done (the portable path is skipped), {@code false}
 * = not handled (other dtypes, shapes, aliasing, or invalid arguments), and the backend runs its next tier (another
 * provider, then cuBLAS for GEMMs, then the portable kernels, which validate and report errors with the standard
 * messages). A fast op therefore never needs to produce an error message: it declines anything it does not fully
 * handle. Ops returning a value use an empty Optional for "not handled".
 *
 * <p>Fast kernels are looked up by name from the fatbin with {@link CudaBackend#kernel(String)} and launched with
 * {@link CudaBackend#launchKernel}; device addresses come from {@link CudaBackend#address(String, Tensor)}, and
 * {@link CudaBackend#blas()} gives cuBLAS (e.g. for the K-concat LoRA GEMM of PERFORMANCE.md technique 1). Each fast
 * kernel is tested against its portable twin by the contract suite (the same tests run with
 * -Dlorakit.cuda.fastTier=false to exercise the portable path on the same GPU).
 */
public interface FastTier extends AutoCloseable {

    // ---------------------------------------------------------------- GEMM (before cuBLAS)

    default boolean gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                                Tensor a, long offA, int lda, long strideA, Tensor b, long offB, int ldb, long strideB,
                                float beta, Tensor c, long offC, int ldc, long strideC) {
        return false;
    }

    // ---------------------------------------------------------------- elementwise

    default boolean add(Tensor a, Tensor b, Tensor out) {
        return false;
    }

    default boolean mul(Tensor a, Tensor b, Tensor out) {
        return false;
    }

    default boolean scale(Tensor x, float alpha, Tensor out) {
        return false;
    }

    default boolean axpby(float alpha, Tensor x, float beta, Tensor y) {
        return false;
    }

    default boolean addRowVector(Tensor a, Tensor v, Tensor out) {
        return false;
    }

    default boolean mulRowVector(Tensor a, Tensor v, Tensor out) {
        return false;
    }

    default boolean mulColVector(Tensor a, Tensor v, Tensor out) {
        return false;
    }

    default boolean transpose(Tensor a, Tensor out) {
        return false;
    }

    default boolean dropoutMask(Tensor mask, float p, long seed) {
        return false;
    }

    // ---------------------------------------------------------------- reductions

    default boolean sumRows(Tensor a, float beta, Tensor out) {
        return false;
    }

    default boolean rowDot(Tensor a, Tensor b, Tensor out) {
        return false;
    }

    default OptionalDouble sum(Tensor a) {
        return OptionalDouble.empty();
    }

    default OptionalDouble dot(Tensor a, Tensor b) {
        return OptionalDouble.empty();
    }

    default OptionalLong countNonFinite(Tensor a) {
        return OptionalLong.empty();
    }

    // ---------------------------------------------------------------- transformer ops

    default boolean layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean,
                                     Tensor rstd) {
        return false;
    }

    default boolean layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd, Tensor dx,
                                      Tensor dgamma, Tensor dbeta) {
        return false;
    }

    default boolean geluForward(Tensor x, Tensor out) {
        return false;
    }

    default boolean geluBackward(Tensor x, Tensor dout, Tensor dx) {
        return false;
    }

    default boolean softmaxRows(Tensor x, Tensor out) {
        return false;
    }

    default boolean attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        return false;
    }

    default boolean attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        return false;
    }

    default boolean crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        return false;
    }

    default boolean crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        return false;
    }

    default boolean embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        return false;
    }

    default boolean embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        return false;
    }

    // ---------------------------------------------------------------- optimizer

    default boolean adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        return false;
    }

    default boolean adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs,
                                 List<AdamW> hps, Tensor stats, int normAt, float maxNorm) {
        return false;
    }

    // ---------------------------------------------------------------- LoRA family

    default boolean loraShrink(Tensor x, Tensor a, Tensor u) {
        return false;
    }

    default boolean loraExpand(Tensor u, Tensor b, float s, Tensor y) {
        return false;
    }

    default boolean loraLinearForward(Tensor x, Tensor w, boolean fanInFanOut, Tensor bias, Tensor a, Tensor b,
                                      float s, Tensor u, Tensor y) {
        return false;
    }

    default boolean doraWeightNorm(Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s, Tensor n) {
        return false;
    }

    default boolean veraForward(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB, Tensor u,
                                Tensor v, Tensor y) {
        return false;
    }

    default boolean deltaLoraUpdate(Tensor w, boolean fanInFanOut, float c, Tensor bNew, Tensor aNew, Tensor bOld,
                                    Tensor aOld) {
        return false;
    }

    default boolean loraStage(Tensor a, Tensor b, float s, Tensor aStage, Tensor sbStage) {
        return false;
    }

    default boolean loraLinearForwardStaged(Tensor x, Tensor w, boolean fanInFanOut, Tensor bias, Tensor a, Tensor b,
                                            float s, Tensor aStage, Tensor sbStage, Tensor u, Tensor uStage,
                                            Tensor y) {
        return false;
    }

    default boolean loraLinearBackward(Tensor dy, Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s,
                                       Tensor aStage, Tensor sbStage, Tensor u, Tensor uStage, Tensor x, Tensor dx,
                                       Tensor dA, Tensor dB) {
        return false;
    }

    default boolean veraStage(Tensor sharedA, Tensor sharedB, Tensor lambdaB, Tensor aStage, Tensor sbStage) {
        return false;
    }

    default boolean veraForwardStaged(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB,
                                      Tensor aStage, Tensor sbStage, Tensor u, Tensor vStage, Tensor y) {
        return false;
    }

    default boolean veraBackward(Tensor dy, Tensor w, boolean fanInFanOut, Tensor sharedA, Tensor sharedB,
                                 Tensor lambdaD, Tensor lambdaB, Tensor sbStage, Tensor u, Tensor vStage, Tensor dx,
                                 Tensor dLambdaD, Tensor dLambdaB) {
        return false;
    }

    default boolean deltaLoraUpdateMaster(Tensor w, Tensor master, boolean fanInFanOut, float c, Tensor bNew,
                                          Tensor aNew, Tensor bOld, Tensor aOld) {
        return false;
    }

    default boolean adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1,
                                       float beta2) {
        return false;
    }

    default boolean maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        return false;
    }

    default OptionalDouble loraImportance(Tensor u, Tensor b, float s) {
        return OptionalDouble.empty();
    }

    /** Releases what the tier holds (workspaces, cached handles); called when the backend closes. */
    @Override
    default void close() {
    }
}
