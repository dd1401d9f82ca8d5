package ai.lorakit.adapters;

import ai.lorakit.gpu.Tensor;

/**
 * A named tensor of an adapted model with its gradient. Names are PEFT's state-dict names without the
 * {@code base_model.model.} prefix and without an adapter name, e.g. {@code transformer.h.0.attn.c_attn.lora_A}
 * (the tensor is lora_A.weight in PEFT's file). Frozen parameters have no gradient.
 */
public final class Parameter {

    /** What the tensor is, so optimizer policies can group parameters without parsing names. */
    public enum Role {
        /** LoRA / DoRA / AdaLoRA down projection A (Q in AdaLoRA's notation) [r, in]. */
        LORA_A,
        /** LoRA / DoRA / AdaLoRA up projection B (P) [out, r]. */
        LORA_B,
        /** AdaLoRA singular values Λ [r, 1]. */
        LORA_E,
        /** DoRA magnitude m [out]. */
        MAGNITUDE,
        /** VeRA λb [out]. */
        VERA_LAMBDA_B,
        /** VeRA λd [r]. */
        VERA_LAMBDA_D,
        /** VeRA shared projections (frozen). */
        VERA_A, VERA_B,
        /** A base weight or bias (trainable only in full fine-tuning). */
        WEIGHT, BIAS,
        /** Embedding tables and anything else. */
        EMBEDDING, OTHER
    }

    private final String name;
    private final Role role;
    private final Tensor value;
    private Tensor grad;
    private boolean trainable;
    /** Bumped by whoever changes the values in place (the optimizer, a reload), so staged copies know to refresh. */
    private long version;

    /** @throws IllegalArgumentException a null or empty name, a null role or value */
    public Parameter(String name, Role role, Tensor value, boolean trainable) {
        if (name == null || name.isEmpty() || role == null || value == null) {
            throw new IllegalArgumentException("parameter needs a non-empty name, a role and a value, got name="
                    + name + ", role=" + role + ", value=" + value);
        }
        this.name = name;
        this.role = role;
        this.value = value;
        this.trainable = trainable;
    }

    public String name() {
        return name;
    }

    public Role role() {
        return role;
    }

    /** The parameter's values (owned by the module that created it). */
    public Tensor value() {
        return value;
    }

    /** The accumulated gradient, same shape as value; null while frozen or before the first backward. */
    public Tensor grad() {
        return grad;
    }

    public boolean trainable() {
        return trainable;
    }

    /** Freezes or unfreezes; freezing drops (closes) the gradient. */
    public void setTrainable(boolean t) {
        trainable = t;
        if (!t && grad != null) {
            grad.close();
            grad = null;
        }
    }

    /** The gradient buffer, created as zeros on first use; throws for a frozen parameter (or a closed value). */
    public Tensor gradForAccumulation() {
        if (!trainable) {
            throw new IllegalStateException("parameter " + name + " is frozen: it has no gradient");
        }
        if (grad == null) {
            value.checkOpen();
            grad = value.backend().zeros(value.dtype(), value.shape()).named(name + ".grad");
        }
        return grad;
    }

    /**
     * How many times the values were changed in place ({@link #markChanged}): an adapted layer keeps bf16 copies of
     * its adapter for the fast kernels and refreshes them when this moves.
     */
    public long version() {
        return version;
    }

    /** Records that the values changed (the optimizer after its update; a load or re-init after writing them). */
    public void markChanged() {
        version++;
    }

    /** Sets the gradient to zero (keeps the buffer). */
    public void zeroGrad() {
        if (grad != null) {
            grad.backend().fill(grad, 0f);
        }
    }

    @Override
    public String toString() {
        return name + "(" + role + (trainable ? ", trainable" : ", frozen") + ")";
    }
}
