package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;

/**
 * One staged LoRA layer (W [out,in], the bf16 policy's dtypes) for the fake-driver tests of this package, built as
 * an adapted layer builds it: fp32 A [r,in] and B [out,r], bf16 W [out,in], an fp32 bias [out], the bf16 stages and
 * Wm [g.wmRows(), g.ldw()] written once by {@link CudaBackend#loraStage}, then Xm bf16 [N, g.ldx()]
 * (its ones column written once) and y bf16 [N,out] for {@link #forward}. Zero-filled: these tests look at launches, not values. The tensors live until the backend
 * closes.
 */
record StagedLora(CudaBackend be, LoraMargins g, Tensor a, Tensor aStage, Tensor wm, Tensor xm, Tensor y) {

    /** A staged layer for x [n, in] (loraStage already ran, with scaling s). */
    static StagedLora of(CudaBackend be, int n, int in, int out, int r, float s) {
        LoraMargins g = new LoraMargins(in, out, r, false, true);
        Tensor a = be.zeros(DType.F32, r, in);
        Tensor b = be.zeros(DType.F32, out, r);
        Tensor w = be.zeros(DType.BF16, out, in);
        Tensor aStage = be.zeros(DType.BF16, r, in);
        Tensor sbStage = be.zeros(DType.BF16, out, r);
        Tensor wm = be.zeros(DType.BF16, g.wmRows(), g.ldw());
        be.loraStage(a, b, s, g, w, be.zeros(DType.F32, out), aStage, sbStage, wm);
        Tensor xm = be.zeros(DType.BF16, n, g.ldx());
        g.onesColumn(be, be.upload(new float[] {1f}, DType.F32, 1), xm, n);
        return new StagedLora(be, g, a, aStage, wm, xm, be.zeros(DType.BF16, n, out));
    }

    /** The staged forward on x [n, in]: y = Xm Wm (with the bias), Xm written. */
    void forward(Tensor x) {
        be.loraLinearForwardStaged(x, a, g, aStage, wm, xm, y);
    }
}
