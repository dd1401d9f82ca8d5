package ai.lorakit.models.train;

import java.nio.file.Path;

/**
 * The loss (or the gradient norm) became NaN or infinite: training stopped before that step's update, and no
 * checkpoint was written after the last good one.
 */
public final class TrainingDivergedException extends RuntimeException {

    private static final long serialVersionUID = 1L;

    private final int step;
    private final transient Path lastCheckpoint;

    /**
     * @param step           the 1-based step that failed
     * @param what           e.g. "loss is NaN in micro-batch 1 of 2"
     * @param lastCheckpoint the surviving checkpoint, or null if none was written
     * @param checkpointStep its step
     */
    public TrainingDivergedException(int step, String what, Path lastCheckpoint, int checkpointStep) {
        super("training diverged at step " + step + ": " + what + "; stopped without updating. "
                + (lastCheckpoint == null ? "No checkpoint was written yet."
                : "The last good checkpoint (step " + checkpointStep + ") is kept in " + lastCheckpoint
                + "; lower the learning rate or set gradient clipping, then resume."));
        this.step = step;
        this.lastCheckpoint = lastCheckpoint;
    }

    /** The 1-based step whose loss or gradient was not finite. */
    public int step() {
        return step;
    }

    /** The surviving checkpoint folder, or null. */
    public Path lastCheckpoint() {
        return lastCheckpoint;
    }
}
