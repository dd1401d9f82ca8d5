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
 *   hook.beforeOptimizerStep(t, stats, at)              (adds regulariser gradients, writes its loss to stats[at];
 *                                                        before clipping)
 *   clip gradients; optimizer.step()
 *   hook.afterOptimizerStep(t)                          (gradients still hold step t's values)
 *   optimizer.zeroGrad()
 *   read the step's results (stats) to the host
 *   hook.afterStep(t)                                   (between steps: may read the device)
 * </pre>
 * Everything up to the read is the device step: the first three calls make no host transfer and no allocation after
 * the first step, so the step can be captured as one CUDA graph; work that needs the host (AdaLoRA's masking to the
 * budget) waits for {@link #afterStep}.
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

    /** Whether {@link #beforeOptimizerStep} writes a regulariser's loss (false: it leaves the stats alone). */
    default boolean hasRegulariser() {
        return false;
    }

    /**
     * After all backward passes of step t, before gradient clipping and {@code optimizer.step()}: adds (+=) the
     * gradients of any regulariser to the trainable parameters' gradients and, when {@link #hasRegulariser}, writes
     * its loss value (weight included, to add to the step's reported loss) into slot {@code at} of {@code stats}
     * ({@link ai.lorakit.gpu.DeviceSums}). No host transfer.
     */
    default void beforeOptimizerStep(int step, Tensor stats, int at) {
    }

    /** After {@code optimizer.step()} of step t and before {@code zeroGrad()}. No host transfer. */
    default void afterOptimizerStep(int step) {
    }

    /**
     * After step t's results were read, before step t + 1 (and before a checkpoint): the schedule's work that reads
     * the device (AdaLoRA's masking to the budget).
     */
    default void afterStep(int step) {
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
