package ai.lorakit.models.train;

import java.nio.file.Path;

/**
 * What a {@link Trainer} reports while it runs (the library never prints; the CLI turns these into a progress bar
 * or log lines). All methods run on the training thread; the defaults do nothing.
 */
public interface TrainListener {

    /** Training is about to run steps {@code fromStep + 1 .. totalSteps}; {@code elapsedS} was spent before. */
    default void started(int fromStep, int totalSteps, long tokensPerStep, double elapsedS) {
    }

    /**
     * Step {@code step}'s micro-batches are on the device and its first kernel comes next. Until {@link
     * #stepResultsRead} the step makes no host transfer on a single-process device backend (the step's window: the
     * loss sums, gradient norm and clipping stay on the device), except a method hook's own (AdaLoRA's regulariser
     * and allocator).
     */
    default void stepUploaded(int step) {
    }

    /** Step {@code step}'s last kernel is queued; the Trainer reads its results next (one device-to-host read). */
    default void stepResultsRead(int step) {
    }

    /** A step finished; {@code logged} when it is also a metrics line (every logEvery steps and the last one). */
    default void stepDone(StepMetrics m, boolean logged) {
    }

    /** A validation pass finished at {@code step} (0 = before training). */
    default void evaluated(int step, EvalResult r) {
    }

    /** A checkpoint of {@code step} is complete in {@code dir}. */
    default void checkpointed(int step, Path dir) {
    }
}
