package ai.lorakit.adapters.optim;

/**
 * Delta-LoRA (Zi et al. 2023, arXiv 2309.02411; VARIANTS.md section 7): A and B are trained with AdamW exactly as
 * {@link AdamWPolicy} (one group), and after each optimizer step past the start step K the frozen base weight is
 * moved by the change of the low-rank product:
 * <pre>W ← W + λ·s·(B'A' − BA)        W [out,in]; A', A [r,in]; B', B [out,r]; s = alpha/r</pre>
 * The W update is not part of {@link Optimizer#step()} (the optimizer never sees W): it is
 * {@link DeltaLoraUpdater#afterOptimizerStep}, a {@link ai.lorakit.adapters.schedule.TrainingHook} that
 * {@link ai.lorakit.adapters.schedule.TrainingHooks#forTraining} builds whenever the optimizer's policy is this one.
 *
 * <p>Defaults λ = 2 and K = 500 are the values quoted with Algorithm 1 in a third-party reimplementation
 * (hhnqqq/MyTransformers {@code common/lora_modules/delta_lora.py}); the paper body could not be checked
 * (VARIANTS.md section 13), so they are lorakit's defaults, not verified paper settings.
 *
 * @param lambda    the update ratio λ, finite and >= 0 (0 = plain LoRA)
 * @param startStep K: W is updated only after optimizer steps t > K (t = completed steps, 1-based); the first such
 *                  step only snapshots A and B (as MyTransformers), later ones update W. >= 0.
 */
public record DeltaLoraPolicy(float lambda, int startStep) implements OptimizerPolicy {

    /** λ = 2 (third-party quotation, see the class comment). */
    public static final float DEFAULT_LAMBDA = 2f;
    /** K = 500 (third-party quotation, see the class comment). */
    public static final int DEFAULT_START_STEP = 500;

    public DeltaLoraPolicy {
        Checks.require(Float.isFinite(lambda) && lambda >= 0, "delta_lora lambda (update_ratio)", lambda,
                "must be finite and >= 0");
        Checks.require(startStep >= 0, "delta_lora start step K", startStep, "must be >= 0");
    }

    /** λ = 2, K = 500. */
    public static DeltaLoraPolicy defaults() {
        return new DeltaLoraPolicy(DEFAULT_LAMBDA, DEFAULT_START_STEP);
    }
}
