package ai.lorakit.adapters;

import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * The per-variant hooks of {@link AdaptedLinear} (STYLE.md 12.5: one base layer plus a few variant hooks):
 * init (the static {@code create} of each implementation, reached through {@link #create}), forward, backward,
 * merge and unmerge. Everything else (shape checks, dropout, train/eval, enable/disable, merged state, caches,
 * lifetimes) lives in AdaptedLinear, once.
 *
 * <p>Dropout protocol: the layer input x and the adapter input x_d = dropout(x) are both given to the forward
 * (x_d == x, the same object, when no dropout is applied). The backward writes (=) the base-path gradient into
 * dx and accumulates (+=) the gradient with respect to x_d into dxd; AdaptedLinear then applies the dropout mask
 * to dxd and adds it to dx. Without dropout dxd IS dx, so a variant must write dx before adding to dxd.
 */
sealed interface Variant extends AutoCloseable permits LoraVariant, DoraVariant, VeraVariant, AdaLoraVariant {

    /** Init hook: the variant for {@code config}, its tensors initialised as VARIANTS.md says. */
    static Variant create(BaseLinear base, AdapterConfig config, VeraProjections shared, long seed) {
        return switch (config) {
            case LoraConfig c when c.useDora() -> DoraVariant.create(base, c, seed);
            case LoraConfig c -> LoraVariant.create(base, c, seed);
            case VeraConfig c -> VeraVariant.create(base, c, shared);
            case AdaLoraConfig c -> AdaLoraVariant.create(base, c, seed);
        };
    }

    /** The adapter's own tensors (not W, bias or VeRA's shared projections), with full names. */
    List<Parameter> parameters();

    /** The rank r (rows of A; VeRA's shared r). */
    int rank();

    /** s: alpha/r or alpha/sqrt(r) (LoRA, DoRA), alpha/(init_r + 1e-5) (AdaLoRA), 1 (VeRA). */
    float scaling();

    /** Whether the backward needs x_d (to form a weight gradient); if not, the forward does not keep it. */
    boolean needsInput();

    /**
     * y (written) = the adapted output for x [N,in]; x_d = dropout(x) or x itself. {@code cache} is null in eval
     * mode; in training mode the forward stores what its backward needs (not x_d: AdaptedLinear does that).
     */
    void forward(BaseLinear base, Tensor x, Tensor xd, Tensor y, ForwardCache cache);

    /**
     * From g = dL/dy [N,out]: dx (=) the base path, dxd (+=) the path through x_d, and (+=) the gradient of every
     * trainable parameter. No gradient reaches W or bias.
     */
    void backward(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx, Tensor dxd);

    /** ΔW in W's layout (fifo-transposed), a new F32 tensor, for additive variants (PEFT get_delta_weight). */
    Tensor delta(BaseLinear base);

    /** Merge hook: W += ΔW (safe: W untouched and IllegalStateException if the result is not finite). */
    default void merge(BaseLinear base) {
        try (Tensor d = delta(base)) {
            base.addToWeight(d, 1f);
        }
    }

    /** Unmerge hook: W -= ΔW (the exact reverse of {@link #merge} up to rounding). */
    default void unmerge(BaseLinear base) {
        try (Tensor d = delta(base)) {
            base.addToWeight(d, -1f);
        }
    }

    /**
     * Whether this variant trains on the staged K-concat ({@link MarginStage}) when the input is bf16 and undropped:
     * its forward and backward then write y and dx with one rounding, so the layer hands it bf16 outputs directly
     * instead of fp32 temporaries it rounds afterwards.
     */
    default boolean stagesMargins() {
        return false;
    }

    /** W was changed in place (merge, unmerge, Delta-LoRA): drop any copy of W staged from it. */
    default void weightChanged() {
    }

    /** Releases the adapter's tensors, gradients and caches (not W, bias, shared projections). */
    @Override
    void close();
}
