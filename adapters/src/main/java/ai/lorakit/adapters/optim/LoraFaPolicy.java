package ai.lorakit.adapters.optim;

/**
 * LoRA-FA (Zhang et al. 2023, arXiv 2308.03303; VARIANTS.md section 3): A frozen, only B trained, with B's
 * gradient replaced by the projection that best approximates the full-weight gradient:
 * <pre>g̃_B = (1/s²) · ∂L/∂B · (A Aᵀ + 1e-8·I)⁻¹      [out,r] = [out,r] x [r,r]</pre>
 * then an Adam step on B with g̃_B. Pairs (A, B, s) are given explicitly per module ({@link LoraPair}).
 *
 * <p>Two update rules, identical in gradients and moments (see {@link Optimizer} for the algebra):
 * <ul>
 *   <li>{@link UpdateRule#TORCH_ADAMW} (default, {@code new LoraFaPolicy()}): torch.optim.AdamW, the kernel every
 *       lorakit policy runs: decoupled decay first, eps added to the bias-corrected √v, so
 *       {@code B_wd = B_no_wd − lr·wd·B_prev};</li>
 *   <li>{@link UpdateRule#PEFT} ({@link #peft()}): PEFT's {@code LoraFAOptimizer} (HF AdamW): eps added to the raw
 *       √v, the bias correction folded into the step size, decay applied after the Adam step, so
 *       {@code B_wd = B_no_wd·(1 − lr·wd)} (VARIANTS.md section 11 item 12). Needs lr·wd &lt; 1.</li>
 * </ul>
 *
 * @param rule which Adam variant updates the parameters (every trainable parameter of the optimizer, as PEFT's
 *             LoraFAOptimizer applies its rule to non-LoRA parameters too)
 */
public record LoraFaPolicy(UpdateRule rule) implements OptimizerPolicy {

    /** The ridge added to A Aᵀ before inverting it (PEFT's 1e-8). */
    public static final double RIDGE = 1e-8;

    /** The Adam variant of a LoRA-FA optimizer. */
    public enum UpdateRule {
        /** torch.optim.AdamW: decay first, eps on the bias-corrected √v. */
        TORCH_ADAMW,
        /** PEFT's LoraFAOptimizer (HF AdamW): eps on the raw √v, decay B ← B(1 − lr·wd) after the step. */
        PEFT
    }

    public LoraFaPolicy {
        Checks.require(rule != null, "LoRA-FA update rule", null, "must be set");
    }

    /** The torch.optim.AdamW rule (lorakit's default). */
    public LoraFaPolicy() {
        this(UpdateRule.TORCH_ADAMW);
    }

    /** PEFT's LoraFAOptimizer rule. */
    public static LoraFaPolicy peft() {
        return new LoraFaPolicy(UpdateRule.PEFT);
    }
}
