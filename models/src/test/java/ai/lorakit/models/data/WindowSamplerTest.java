package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves WindowSampler draws contiguous [B][T+1] windows uniformly over every start, reproducibly from the seed,
 * and resumes exactly from a saved state; that the W ranks' shards of a step are, in rank order, exactly the batch
 * one process draws (so the state is the same under any W); and that SequentialBatches covers each target once, in
 * order.
 */
class WindowSamplerTest {

    /** One document whose stream is the ids 1..n. */
    private static TextDataset arange(int n) {
        return TextDataset.of("arange", List.of(new Document("d", CharTokenizer.run(1, n))), new CharTokenizer());
    }

    @Test
    void batchesAreContiguousWindows() {
        int n = 1000, t = 16, b = 8;
        WindowSampler s = arange(n).sampler(t, b, 42);
        for (int k = 0; k < 20; k++) {
            int[][] batch = s.nextBatch();
            assertEquals(b, batch.length);
            for (int[] row : batch) {
                assertEquals(t + 1, row.length);
                assertTrue(row[0] >= 1 && row[t] <= n, "window inside the stream");
                for (int i = 0; i < t; i++) {
                    assertEquals(row[i] + 1, row[i + 1], "consecutive tokens");
                }
            }
        }
    }

    @Test
    void ranksShardsConcatenateToTheSingleProcessBatch() {
        TextDataset ds = arange(3000);
        WindowSampler one = ds.sampler(8, 12, 5);
        WindowSampler[] two = {ds.sampler(8, 12, 5), ds.sampler(8, 12, 5)};
        WindowSampler[] four = {ds.sampler(8, 12, 5), ds.sampler(8, 12, 5), ds.sampler(8, 12, 5), ds.sampler(8, 12, 5)};
        for (int step = 0; step < 6; step++) {
            int[][] whole = one.nextBatch();
            for (WindowSampler[] ranks : List.of(two, four)) {
                int w = ranks.length;
                for (int r = 0; r < w; r++) {
                    int[][] shard = ranks[r].nextShard(r, w);
                    assertEquals(12 / w, shard.length);
                    for (int b = 0; b < shard.length; b++) {
                        assertArrayEquals(whole[r * (12 / w) + b], shard[b], "step " + step + " rank " + r + " of " + w);
                    }
                    assertEquals(one.state(), ranks[r].state());
                }
            }
        }
        WindowSampler s = ds.sampler(8, 12, 5);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> s.nextShard(0, 5));
        assertTrue(e.getMessage().contains("12 does not split evenly over 5 ranks"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> s.nextShard(2, 2));
        assertEquals(0, s.state().windowsDrawn());
    }

    @Test
    void everyStartIsReachable() {
        int t = 5;
        WindowSampler s = arange(t + 3).sampler(t, 4, 1); // N - T = 3 possible starts
        TreeSet<Integer> starts = new TreeSet<>();
        for (int k = 0; k < 50; k++) {
            for (int[] row : s.nextBatch()) {
                starts.add(row[0] - 1);
            }
        }
        assertEquals(new TreeSet<>(List.of(0, 1, 2)), starts);
    }

    @Test
    void seedDeterminesBatchesAndStateResumesExactly() {
        TextDataset ds = arange(5000);
        WindowSampler a = ds.sampler(32, 4, 123);
        WindowSampler same = ds.sampler(32, 4, 123);
        WindowSampler other = ds.sampler(32, 4, 124);
        boolean differs = false;
        for (int k = 0; k < 3; k++) {
            int[][] x = a.nextBatch();
            assertArrayEquals(x, same.nextBatch());
            differs |= !java.util.Arrays.deepEquals(x, other.nextBatch());
        }
        assertTrue(differs, "another seed draws other windows");

        WindowSampler.State saved = a.state();
        assertEquals(new WindowSampler.State(123, 12), saved);
        int[][] next1 = a.nextBatch();
        int[][] next2 = a.nextBatch();
        WindowSampler resumed = ds.sampler(32, 4, 999); // fresh sampler, any seed: the state overrides it
        resumed.restore(saved);
        assertArrayEquals(next1, resumed.nextBatch());
        assertArrayEquals(next2, resumed.nextBatch());
        assertEquals(a.state(), resumed.state());
        assertFalse(java.util.Arrays.deepEquals(next1, next2));
    }

    @Test
    void badLengthsHaveClearMessages() {
        TextDataset ds = arange(10);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ds.sampler(10, 1, 0));
        assertTrue(e.getMessage().contains("T=10") && e.getMessage().contains("only 10 tokens"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ds.sequential(10, 1));
        e = assertThrows(IllegalArgumentException.class, () -> ds.sampler(0, 1, 0));
        assertTrue(e.getMessage().contains("seqLen"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> ds.sampler(4, 0, 0));
        assertTrue(e.getMessage().contains("batchSize"), e.getMessage());
        assertEquals(1, ds.sampler(9, 1, 0).nextBatch().length, "T = N-1 is the longest that fits");
    }

    @Test
    void sequentialPassCoversEachTargetOnce() {
        SequentialBatches seq = arange(10).sequential(3, 2); // W = floor(9/3) = 3 windows
        assertEquals(3, seq.windowCount());
        assertEquals(2, seq.batchCount());
        assertArrayEquals(new int[][] {{1, 2, 3, 4}, {4, 5, 6, 7}}, seq.batch(0));
        assertArrayEquals(new int[][] {{7, 8, 9, 10}}, seq.batch(1), "the last batch is shorter");
        assertThrows(IndexOutOfBoundsException.class, () -> seq.batch(2));
        assertEquals(2, arange(9).sequential(3, 2).windowCount(), "a tail shorter than T+1 is dropped");
    }
}
