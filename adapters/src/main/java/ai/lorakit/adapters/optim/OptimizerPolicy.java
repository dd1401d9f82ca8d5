package ai.lorakit.adapters.optim;

/**
 * How an {@link Optimizer} turns gradients into parameter updates (ARCHITECTURE.md layer 3, "optimizer
 * policy" axis). The set is sealed so that switches over it are exhaustive:
 * <ul>
 *   <li>{@link AdamWPolicy}: one parameter group, plain AdamW;</li>
 *   <li>{@link LoraPlusPolicy}: LoRA+ (VARIANTS.md section 2), B learns {@code ratio} times faster than A;</li>
 *   <li>{@link LoraFaPolicy}: LoRA-FA (VARIANTS.md section 3), A frozen, B's gradient projected;</li>
 *   <li>{@link DeltaLoraPolicy}: Delta-LoRA (VARIANTS.md section 7), AdamW as {@link AdamWPolicy}, plus
 *       W += λ·s·(B'A' − BA) after each step past K, done by {@link DeltaLoraUpdater} (a training hook).</li>
 * </ul>
 */
public sealed interface OptimizerPolicy permits AdamWPolicy, LoraPlusPolicy, LoraFaPolicy, DeltaLoraPolicy {
}
