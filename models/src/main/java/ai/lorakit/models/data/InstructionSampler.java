package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;

import java.util.SplittableRandom;

/**
 * Shuffled training rows of {@link InstructionWindows}: epoch e visits the N rows in the order of its own
 * permutation (Fisher-Yates from {@code SplittableRandom(seed + e·γ)}), and a batch takes the next B rows of that
 * endless stream (an epoch boundary may fall inside a batch). Row k of the stream is a pure function of (seed, k),
 * so the state is {@link WindowSampler.State} (seed, rows drawn), saved and restored as the window sampler's is.
 *
 * <p>Data parallel: {@link #nextShard}(rank, W) gives rank its share of the same global batch, as
 * {@link WindowSampler#nextShard} does. Not thread-safe.
 */
public final class InstructionSampler {

    /** One micro-batch: inputs [B][T], targets [B][T] (IGNORE where no loss is taken), counted targets. */
    public record Rows(int[][] inputs, int[][] targets, int counted) {
    }

    private static final long GAMMA = 0x9E3779B97F4A7C15L;

    private final InstructionWindows rows;
    private final int batchSize;   // B (global)
    private long seed;
    private long drawn;
    private long epoch = -1;
    private int[] order;           // the permutation of the cached epoch

    /**
     * @throws IllegalArgumentException no rows, or B < 1
     */
    public InstructionSampler(InstructionWindows rows, int batchSize, long seed) {
        if (rows.inputs().length == 0) {
            throw new IllegalArgumentException("instruction data has no row with a trained (completion) token");
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize (B) must be >= 1, got " + batchSize);
        }
        this.rows = rows;
        this.batchSize = batchSize;
        restore(new WindowSampler.State(seed, 0));
    }

    /** The next global batch of B rows. */
    public Rows nextBatch() {
        return nextShard(0, 1);
    }

    /**
     * Rank {@code rank}'s rows [rank·B/W, (rank+1)·B/W) of the next global batch; every rank advances past the
     * whole batch.
     *
     * @throws IllegalArgumentException B is not divisible by W, or rank is not in [0, W)
     */
    public Rows nextShard(int rank, int worldSize) {
        if (worldSize < 1 || rank < 0 || rank >= worldSize) {
            throw new IllegalArgumentException("rank " + rank + " is not in [0, " + worldSize + ")");
        }
        if (batchSize % worldSize != 0) {
            throw new IllegalArgumentException("the global batch " + batchSize + " does not split evenly over "
                    + worldSize + " ranks; use a batch that is a multiple of " + worldSize);
        }
        int share = batchSize / worldSize;
        int[][] x = new int[share][];
        int[][] y = new int[share][];
        int counted = 0;
        for (int b = 0; b < share; b++) {
            int r = row(drawn + (long) rank * share + b);
            x[b] = rows.inputs()[r].clone();
            y[b] = rows.targets()[r].clone();
            counted += CrossEntropy.counted(y[b]);
        }
        drawn += batchSize;
        return new Rows(x, y, counted);
    }

    /** The row index at stream position k. */
    int row(long k) {
        int n = rows.inputs().length;
        long e = k / n;
        if (e != epoch) {
            order = new int[n];
            for (int i = 0; i < n; i++) {
                order[i] = i;
            }
            SplittableRandom rng = new SplittableRandom(seed + e * GAMMA);
            for (int i = n - 1; i > 0; i--) {
                int j = rng.nextInt(i + 1);
                int tmp = order[i];
                order[i] = order[j];
                order[j] = tmp;
            }
            epoch = e;
        }
        return order[(int) (k % n)];
    }

    public WindowSampler.State state() {
        return new WindowSampler.State(seed, drawn);
    }

    /** Continues from {@code state} (from a sampler on the same rows and B). */
    public void restore(WindowSampler.State state) {
        this.seed = state.seed();
        this.drawn = state.windowsDrawn();
        this.epoch = -1;
    }
}
