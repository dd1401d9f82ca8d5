package ai.lorakit.models.data;

/**
 * A deterministic pass for validation: windows k = 0, 1, ... start at k·T, so window k is tokens[kT, kT+T+1) and
 * every token after the first is a target exactly once, up to the last full window; W = floor((N-1)/T) windows,
 * grouped B at a time into {@link #batchCount()} batches int[B][T+1] (the last batch may have fewer rows).
 */
public final class SequentialBatches {

    private final int[] tokens; // [N], shared with the dataset, never written
    private final int seqLen;   // T
    private final int batchSize; // B
    private final int windows;  // W

    SequentialBatches(String dataset, int[] tokens, int seqLen, int batchSize) {
        Windows.check(dataset, tokens.length, seqLen, batchSize);
        this.tokens = tokens;
        this.seqLen = seqLen;
        this.batchSize = batchSize;
        this.windows = (tokens.length - 1) / seqLen;
    }

    /** W: number of windows. */
    public int windowCount() {
        return windows;
    }

    public int batchCount() {
        return (windows + batchSize - 1) / batchSize;
    }

    /** Batch i [b][T+1], b = B except for a shorter last batch. */
    public int[][] batch(int i) {
        if (i < 0 || i >= batchCount()) {
            throw new IndexOutOfBoundsException("batch " + i + " of " + batchCount());
        }
        int first = i * batchSize;
        int rows = Math.min(batchSize, windows - first);
        int[][] batch = new int[rows][];
        for (int r = 0; r < rows; r++) {
            batch[r] = Windows.window(tokens, (first + r) * seqLen, seqLen);
        }
        return batch;
    }
}
