package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;

/**
 * One tokenised instruction example: {@code ids [L]} and Hugging Face style {@code labels [L]} (not shifted):
 * {@code labels[i] = ids[i]} where token i is trained (completion / assistant text and its end-of-turn token),
 * {@link CrossEntropy#IGNORE} on prompt and template tokens. {@link InstructionWindows} shifts them into targets.
 */
public record InstructionExample(int[] ids, int[] labels) {

    public InstructionExample {
        if (ids.length != labels.length) {
            throw new IllegalArgumentException("ids and labels differ in length: " + ids.length + " vs "
                    + labels.length);
        }
    }

    /** Number of trained tokens. */
    public int trainedTokens() {
        return CrossEntropy.counted(labels);
    }
}
