package ai.lorakit.gpu;

/**
 * Target conventions of {@link Backend#crossEntropyForward} / {@link Backend#crossEntropyBackward}.
 *
 * <p>A target equal to {@link #IGNORE} (-100, Hugging Face's {@code ignore_index}) marks a position that takes
 * no part in the loss: its loss is 0, its probs row is still written, its dlogits row is 0. Instruction data
 * masks prompt and padding positions this way. A mean loss is then over {@link #counted} targets, not over N.
 */
public final class CrossEntropy {
    /** The ignored target (HF's ignore_index); any other target outside [0,V) is an error. */
    public static final int IGNORE = -100;

    private CrossEntropy() {
    }

    /** The number of targets that count in the loss (those != {@link #IGNORE}). */
    public static int counted(int[] targets) {
        int c = 0;
        for (int t : targets) {
            if (t != IGNORE) {
                c++;
            }
        }
        return c;
    }
}
