package ai.lorakit.adapters;

import ai.lorakit.gpu.Tensor;

/**
 * What one training-mode forward of an {@link AdaptedLinear} keeps for its backward. One cache per layer: the
 * next forward (or merge/unmerge/close) releases it, and backward releases it when done.
 *
 * <p>The cache owns no tensor: they are the layer's {@link Scratch} (reused by the next forward) or the caller's x,
 * so closing the cache only forgets them. The dropout mask is not stored: backward redraws it from {@link #maskSeed}
 * (counter-based, {@link ai.lorakit.gpu.Dropout}), so it costs no memory between forward and backward.
 */
final class ForwardCache implements AutoCloseable {
    /** Tokens N (x.rows()). */
    final int tokens;
    /** x's shape [..., in] (dx gets it). */
    final int[] xShape;
    /** The forward ran as the plain base layer (adapter disabled or merged): backward gives dx only. */
    final boolean plain;
    /** Dropout was applied to the adapter input. */
    final boolean dropout;
    /** Seed of the dropout mask (when {@link #dropout}). */
    final long maskSeed;

    /** x_d = dropout(x) [N,in] (the caller's x itself without dropout), or null when backward needs no input. */
    Tensor xd;
    /** LoRA/DoRA/AdaLoRA: u = x_d A^T (A∘E for AdaLoRA) [N,r]; VeRA: u = x_d A_l^T [N,r]. */
    Tensor u;
    /** VeRA: v = λd ∘ u [N,r]. */
    Tensor v;
    /**
     * Staged path (bf16 input, no dropout), else null: LoRA's Xm = [x | x A^T] [N, ldx] (LoraMargins); VeRA's
     * v = λd ∘ u rounded to bf16 [N,r].
     */
    Tensor stage;
    /** DoRA: x_d op(W) + s u B^T [N,out] (the output before the magnitude, without bias). */
    Tensor comb;
    /** DoRA: k = m / n [out]. */
    Tensor k;
    /** DoRA: n [out] (detached, paper section 4.3). */
    Tensor norm;
    /** AdaLoRA: A∘E [r,in]. */
    Tensor ae;
    /** AdaLoRA: E as a vector [r]. */
    Tensor e;

    ForwardCache(int tokens, int[] xShape, boolean plain, boolean dropout, long maskSeed) {
        this.tokens = tokens;
        this.xShape = xShape.clone();
        this.plain = plain;
        this.dropout = dropout;
        this.maskSeed = maskSeed;
    }

    /** Forgets the tensors (the layer's scratch and the caller's x stay open). */
    @Override
    public void close() {
        xd = u = v = stage = comb = k = norm = ae = e = null;
    }
}
