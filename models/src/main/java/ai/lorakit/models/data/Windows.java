package ai.lorakit.models.data;

/** Argument checks shared by the samplers. */
final class Windows {

    private Windows() {
    }

    static void check(String dataset, int tokenCount, int seqLen, int batchSize) {
        if (seqLen < 1) {
            throw new IllegalArgumentException("seqLen (T) must be >= 1, got " + seqLen);
        }
        if (batchSize < 1) {
            throw new IllegalArgumentException("batchSize (B) must be >= 1, got " + batchSize);
        }
        if ((long) seqLen + 1 > tokenCount) {
            throw new IllegalArgumentException("sequence length T=" + seqLen + " needs windows of T+1=" + (seqLen + 1L)
                    + " tokens, but dataset '" + dataset + "' has only " + tokenCount
                    + " tokens; use a shorter sequence length or more data");
        }
    }

    /** Copies tokens[start, start+T+1) into a new row. */
    static int[] window(int[] tokens, int start, int seqLen) {
        int[] row = new int[seqLen + 1];
        System.arraycopy(tokens, start, row, 0, seqLen + 1);
        return row;
    }
}
