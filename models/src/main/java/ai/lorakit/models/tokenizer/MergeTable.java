package ai.lorakit.models.tokenizer;

/**
 * BPE merge ranks: (left id, right id) -> (rank, merged id), an open-addressing hash table on packed long keys
 * so the merge loop does not box. Immutable after {@link #put}s during loading.
 */
final class MergeTable {

    static final long ABSENT = -1L;

    private final long[] keys;   // [capacity] (left << 32 | right), or EMPTY
    private final long[] values; // [capacity] (rank << 32 | merged id)
    private final int mask;
    private static final long EMPTY = Long.MIN_VALUE;

    MergeTable(int expected) {
        int capacity = Integer.highestOneBit(Math.max(16, expected * 2 - 1)) << 1;
        keys = new long[capacity];
        values = new long[capacity];
        mask = capacity - 1;
        java.util.Arrays.fill(keys, EMPTY);
    }

    private static long key(int left, int right) {
        return ((long) left << 32) | (right & 0xFFFFFFFFL);
    }

    private static int slot(long key, int mask) {
        long h = key * 0x9E3779B97F4A7C15L;
        return (int) (h ^ (h >>> 32)) & mask;
    }

    /** Adds a merge unless the pair is already there (the first, lowest rank wins); returns whether it was added. */
    boolean put(int left, int right, int rank, int merged) {
        long k = key(left, right);
        for (int s = slot(k, mask); ; s = (s + 1) & mask) {
            if (keys[s] == EMPTY) {
                keys[s] = k;
                values[s] = ((long) rank << 32) | merged;
                return true;
            }
            if (keys[s] == k) {
                return false;
            }
        }
    }

    /** (rank << 32 | merged id) of the pair, or {@link #ABSENT}. */
    long get(int left, int right) {
        long k = key(left, right);
        for (int s = slot(k, mask); ; s = (s + 1) & mask) {
            if (keys[s] == k) {
                return values[s];
            }
            if (keys[s] == EMPTY) {
                return ABSENT;
            }
        }
    }
}
