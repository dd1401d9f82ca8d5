package ai.lorakit.adapters.optim;

/**
 * LoRA-FA (Zhang et al. 2023, arXiv 2308.03303; VARIANTS.md section 3): A frozen, only B trained, with B's
 * gradient replaced by the projection that best approximates the full-weight gradient:
 * <pre>g̃_B = (1/s²) · ∂L/∂B · (A Aᵀ + 1e-8·I)⁻¹      [out,r] = [out,r] x [r,r]</pre>
 * then AdamW on B with g̃_B. Pairs (A, B, s) are given explicitly per module ({@link LoraPair}); see
 * {@link Optimizer} for the one deliberate difference from PEFT's LoraFAOptimizer (torch AdamW, decay first).
 */
public record LoraFaPolicy() implements OptimizerPolicy {

    /** The ridge added to A Aᵀ before inverting it (PEFT's 1e-8). */
    public static final double RIDGE = 1e-8;
}
