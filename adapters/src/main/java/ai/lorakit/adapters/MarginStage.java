package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;

import java.util.Arrays;

/**
 * One adapted layer's staged low-rank path (bf16 input, no dropout): the K-concat of {@link LoraMargins}, shared by
 * LoRA (A, B, s), DoRA (the same, on the LoRA branch), AdaLoRA (A∘E, B, scaling) and VeRA (A_l, λb ∘ B_l ∘ λd, 1).
 * It keeps, in the layer's scratch, bf16 A [r,in], bf16 s B [out,r] and the margin weight Wm (W with A, s B and the
 * bias in spare rows/columns), and the versions of whatever they were made from: they are restaged when those change
 * (once per optimizer step), and Wm's copy of W after {@link #weightChanged(MarginStage)}.
 *
 * <p>Forward: Xm = [x | x A^T | 1], then y = Xm Wm, one GEMM over in + r (+ 1 for the bias), rounded once
 * ({@link Backend#loraLinearForwardStaged}). Backward: dYm = [dy | s dy B], then dx = dYm Wm, one GEMM over out + r,
 * rounded once, dB += s dy^T (x A^T) and dA += (s dy B)^T x, reading x A^T and x from Xm
 * ({@link Backend#loraLinearBackward}). So the layer writes a bf16 y and dx directly ({@link Variant#stagesMargins}).
 * The price is a bf16 copy of W per adapted layer.
 */
final class MarginStage {
    private final LoraMargins g;
    /** The versions the stages were made from (null: not staged yet). */
    private long[] staged;
    /** Wm holds the current W. */
    private boolean stagedW;
    /** The Xm whose ones column is written (a new Xm, for a new N, needs it again). */
    private Tensor onesIn;

    /** withBias: the forward adds the layer's bias inside the GEMM (LoRA, AdaLoRA); DoRA adds it after its rescale. */
    MarginStage(BaseLinear base, int r, boolean withBias) {
        this.g = new LoraMargins(base.in(), base.out(), r, base.fifo(), withBias && base.bias() != null);
    }

    /** The staged path runs for a bf16 input without dropout (the fast kernels read bf16 activations). */
    static boolean applies(Tensor x, Tensor xd) {
        return xd == x && x.dtype() == DType.BF16;
    }

    /**
     * y (written, rounded once) = x op(W) (+ bias) + s (x am^T) bm^T, restaging first if {@code versions} (of
     * whatever am and bm are made from) differ from the staged ones. The cache (null in eval mode) keeps Xm, which
     * holds x and x am^T, for the backward. am [r,in], bm [out,r] fp32.
     */
    void forward(BaseLinear base, Tensor x, Tensor am, Tensor bm, float s, Tensor y, ForwardCache cache,
                 long... versions) {
        Backend be = base.backend();
        Tensor wm = wm(base);
        if (!stagedW || !Arrays.equals(versions, staged)) {
            be.loraStage(am, bm, s, g, stagedW ? null : base.w(), g.bias() ? base.bias() : null, aStage(base),
                    sbStage(base), wm);
            staged = versions.clone();
            stagedW = true;
        }
        Tensor xm = base.scratch().get("lora.Xm", DType.BF16, x.rows(), g.ldx());
        if (g.bias() && xm != onesIn) {
            Tensor one = base.scratch().get("lora.one", 1);
            be.fill(one, 1f);
            g.onesColumn(be, one, xm, x.rows());
            onesIn = xm;
        }
        be.loraLinearForwardStaged(x, am, g, aStage(base), wm, xm, y);
        if (cache != null) {
            cache.stage = xm;
        }
    }

    /**
     * dx (written) = dy op(W)^T + s (dy bm) am; dB += s dy^T (x am^T); dA += s (dy bm)^T x, from the forward's Xm.
     * dy [N,out] bf16; dA, dB null = frozen (skipped).
     */
    void backward(BaseLinear base, Tensor dy, ForwardCache cache, Tensor bm, float s, Tensor dx, Tensor dA,
                  Tensor dB) {
        Backend be = base.backend();
        Tensor dym = be.borrowWork(DType.BF16, cache.tokens, g.ldy());   // transient: one pool for all layers
        try {
            be.loraLinearBackward(dy, bm, s, g, sbStage(base), wm(base), cache.stage, dym, dx, dA, dB);
        } finally {
            be.returnWork(dym);
        }
    }

    /** W was changed in place: Wm takes it at the next forward (a variant whose stage is still null: no-op). */
    static void weightChanged(MarginStage stage) {
        if (stage != null) {
            stage.stagedW = false;
        }
    }

    /** bf16 A [r,in]. */
    private Tensor aStage(BaseLinear base) {
        return base.scratch().get("lora.A.bf16", DType.BF16, g.r(), g.in());
    }

    /** bf16 s B [out,r]. */
    private Tensor sbStage(BaseLinear base) {
        return base.scratch().get("lora.sB.bf16", DType.BF16, g.out(), g.r());
    }

    /** bf16 Wm [wmRows, ldw]. */
    private Tensor wm(BaseLinear base) {
        return base.scratch().get("lora.Wm", DType.BF16, g.wmRows(), g.ldw());
    }
}
