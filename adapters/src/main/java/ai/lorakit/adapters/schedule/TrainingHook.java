package ai.lorakit.adapters.schedule;

import ai.lorakit.gpu.Tensor;

import java.util.Map;

/**
 * What a variant does around each optimizer step (ARCHITECTURE.md layer 3, the "schedule" axis): AdaLoRA's
 * orthogonality regulariser and rank allocator ({@link RankAllocator}), Delta-LoRA's W update
 * ({@link ai.lorakit.adapters.optim.DeltaLoraUpdater}). The Trainer builds ONE hook with
 * {@link TrainingHooks#forTraining} (it picks what the modules and the optimizer policy need, possibly nothing)
 * and calls it on EVERY optimizer step t (0-based, PEFT's {@code global_step}), in this order:
 * <pre>
 *   forward/backward of every micro-batch of step t     (gradients accumulate)
 *   regLoss = hook.beforeOptimizerStep(t)               (adds regulariser gradients; before clipping)
 *   clip gradients; optimizer.step()
 *   hook.afterOptimizerStep(t)                          (gradients still hold step t's values)
 *   optimizer.zeroGrad()
 * </pre>
 * Forgetting a call is caught where it can be: the hooks refuse a step number that skips one
 * ({@link IllegalStateException}), and Delta-LoRA's export refuses a W that missed updates.
 *
 * <p>Checkpoints: {@link #state()} lists live tensors holding everything the hook carries between steps; save
 * their values with the parameters and, on resume, copy the saved values back into the same tensors and call
 * {@link #stateRestored()}.
 */
public interface TrainingHook extends AutoCloseable {

    /** A hook that does nothing (plain LoRA, LoRA+, LoRA-FA, DoRA, VeRA). */
    TrainingHook NONE = new TrainingHook() {
        @Override
        public String toString() {
            return "TrainingHook.NONE";
        }
    };

    /**
     * After all backward passes of step t, before gradient clipping and {@code optimizer.step()}: adds (+=) the
     * gradients of any regulariser to the trainable parameters' gradients.
     *
     * @return the regulariser's loss value (weight included), to add to the step's reported loss; 0 if none
     */
    default double beforeOptimizerStep(int step) {
        return 0.0;
    }

    /** After {@code optimizer.step()} of step t and before {@code zeroGrad()}. */
    default void afterOptimizerStep(int step) {
    }

    /** Named live tensors holding the hook's state between steps (empty when stateless); see the class comment. */
    default Map<String, Tensor> state() {
        return Map.of();
    }

    /** Called after saved values were copied into the tensors of {@link #state()} (resume). */
    default void stateRestored() {
    }

    /** Releases the hook's own tensors (never the model's). Idempotent. */
    @Override
    default void close() {
    }
}
