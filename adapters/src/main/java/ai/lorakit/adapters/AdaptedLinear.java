package ai.lorakit.adapters;

import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * A frozen linear layer plus one adapter (ARCHITECTURE.md layer 3): y = x op(W) + b + Δ(x), where Δ is the
 * parametrisation chosen by the config (LoRA, DoRA, VeRA, AdaLoRA). W is [out,in] (torch Linear: y = x W^T)
 * or [in,out] when {@code fanInFanOut} (GPT-2 Conv1D: y = x W). x [N,in], y [N,out].
 *
 * <p>API contract (other modules code against it): forward returns a new tensor the caller closes; in training
 * mode it caches what backward needs; backward returns dx (new tensor) and accumulates (+=) into the trainable
 * parameters' gradients. merge folds the adapter into W, unmerge restores W.
 *
 * <p>SKELETON: bodies are filled in by the adapters work (issue 2, item 4).
 */
public final class AdaptedLinear implements AutoCloseable {

    private AdaptedLinear() {
    }

    /**
     * Attaches an adapter to a frozen layer. {@code shared} is the model's VeRA projections (required for
     * VeraConfig, null otherwise); {@code seed} seeds the initialisation of A/B.
     */
    public static AdaptedLinear create(String name, Tensor weight, Tensor bias, boolean fanInFanOut,
                                       AdapterConfig config, VeraProjections shared, long seed) {
        throw new UnsupportedOperationException("skeleton");
    }

    public String name() { throw new UnsupportedOperationException("skeleton"); }

    public int inFeatures() { throw new UnsupportedOperationException("skeleton"); }

    public int outFeatures() { throw new UnsupportedOperationException("skeleton"); }

    public boolean fanInFanOut() { throw new UnsupportedOperationException("skeleton"); }

    /** The base weight (frozen; changed only by merge/unmerge and Delta-LoRA). */
    public Tensor weight() { throw new UnsupportedOperationException("skeleton"); }

    /** The base bias [out], or null. */
    public Tensor bias() { throw new UnsupportedOperationException("skeleton"); }

    public AdapterConfig config() { throw new UnsupportedOperationException("skeleton"); }

    /** The layer's scaling s (alpha/r, alpha/sqrt(r), AdaLoRA's alpha/init_r; 1 for VeRA). */
    public float scaling() { throw new UnsupportedOperationException("skeleton"); }

    /** The adapter's parameters, trainable and frozen, with full names (name() + "." + lora_A, ...). */
    public List<Parameter> parameters() { throw new UnsupportedOperationException("skeleton"); }

    /** The parameter with this role, or null. */
    public Parameter parameter(Parameter.Role role) { throw new UnsupportedOperationException("skeleton"); }

    public Tensor forward(Tensor x) { throw new UnsupportedOperationException("skeleton"); }

    public Tensor backward(Tensor dy) { throw new UnsupportedOperationException("skeleton"); }

    public void setTraining(boolean training) { throw new UnsupportedOperationException("skeleton"); }

    public void setEnabled(boolean enabled) { throw new UnsupportedOperationException("skeleton"); }

    public boolean enabled() { throw new UnsupportedOperationException("skeleton"); }

    public void merge() { throw new UnsupportedOperationException("skeleton"); }

    public void unmerge() { throw new UnsupportedOperationException("skeleton"); }

    public boolean merged() { throw new UnsupportedOperationException("skeleton"); }

    @Override
    public void close() { throw new UnsupportedOperationException("skeleton"); }
}
