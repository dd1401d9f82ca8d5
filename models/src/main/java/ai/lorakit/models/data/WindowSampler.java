package ai.lorakit.models.data;

import java.util.SplittableRandom;

/**
 * Random training windows: batches int[B][T+1], row b = tokens[s, s+T+1) (inputs are the first T, targets the
 * last T), with the start s uniform over the N-T possible positions (windows may cross document separators;
 * windows drawn with replacement).
 *
 * <p>Exact resume: window k's start comes from its own generator {@code SplittableRandom(base + k·γ)}, with
 * base = {@code SplittableRandom(seed).nextLong()} and γ the golden-ratio constant, so the whole sampler state is
 * (seed, windows drawn so far). {@link #state()} / {@link #restore} save and restore it in O(1): a restored
 * sampler continues with the very batches the original would have produced. Not thread-safe.
 *
 * <p>Data parallel: {@link #nextShard}(rank, W) gives rank its share of the same global batch, so the windows of a
 * step are a pure function of (seed, step, rank, W) and W ranks together see exactly the batch one process would.
 */
public final class WindowSampler {

    /** Everything needed to resume: the seed and the number of windows drawn (B per batch). */
    public record State(long seed, long windowsDrawn) {
        public State {
            if (windowsDrawn < 0) {
                throw new IllegalArgumentException("windowsDrawn must be >= 0, got " + windowsDrawn);
            }
        }
    }

    private static final long GAMMA = 0x9E3779B97F4A7C15L;

    private final int[] tokens; // [N], shared with the dataset, never written
    private final int seqLen;   // T
    private final int batchSize; // B
    private long seed;
    private long base;
    private long drawn;

    WindowSampler(String dataset, int[] tokens, int seqLen, int batchSize, long seed) {
        Windows.check(dataset, tokens.length, seqLen, batchSize);
        this.tokens = tokens;
        this.seqLen = seqLen;
        this.batchSize = batchSize;
        restore(new State(seed, 0));
    }

    /** The next batch [B][T+1]. */
    public int[][] nextBatch() {
        int[][] batch = new int[batchSize][];
        for (int b = 0; b < batchSize; b++) {
            batch[b] = Windows.window(tokens, windowStart(drawn++), seqLen);
        }
        return batch;
    }

    /**
     * Rank {@code rank}'s share of the next global batch of B windows: rows [rank·B/W, (rank+1)·B/W) of what
     * {@link #nextBatch} would return, [B/W][T+1]. Every rank advances past the whole batch, so the state (windows
     * drawn) is the same on every rank and does not depend on W; {@code nextShard(0, 1)} is {@link #nextBatch}.
     *
     * @throws IllegalArgumentException B is not divisible by W, or rank is not in [0, W)
     */
    public int[][] nextShard(int rank, int worldSize) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is not in [0, " + worldSize + ")");
        }
        if (batchSize % worldSize != 0) {
            throw new IllegalArgumentException("the global batch " + batchSize + " does not split evenly over "
                    + worldSize + " ranks; use a batch that is a multiple of " + worldSize);
        }
        int share = batchSize / worldSize;
        int[][] batch = new int[share][];
        for (int b = 0; b < share; b++) {
            batch[b] = Windows.window(tokens, windowStart(drawn + (long) rank * share + b), seqLen);
        }
        drawn += batchSize;
        return batch;
    }

    /** Start position of window k, in [0, N-T). */
    int windowStart(long k) {
        return new SplittableRandom(base + k * GAMMA).nextInt(tokens.length - seqLen);
    }

    public State state() {
        return new State(seed, drawn);
    }

    /** Continues from {@code state} (from this sampler or one built on the same dataset, T and B). */
    public void restore(State state) {
        this.seed = state.seed();
        this.base = new SplittableRandom(state.seed()).nextLong();
        this.drawn = state.windowsDrawn();
    }

    public int seqLen() {
        return seqLen;
    }

    public int batchSize() {
        return batchSize;
    }
}
