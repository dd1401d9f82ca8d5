package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Instruction examples as training rows of a fixed window T: one example per row, never packed, so attention
 * never crosses documents (causal attention in a row sees only that example and, after it, padding that no
 * earlier position can see). Row b: {@code inputs[b] [T]} = ids[0..T-1] and {@code targets[b] [T]} =
 * labels[1..T] (the next token's label), padded after the example with {@code padId} inputs and
 * {@link CrossEntropy#IGNORE} targets. An example longer than T+1 tokens is cut to its first T+1 (counted in
 * {@link #truncated}); one left with no trained target is dropped (counted in {@link #dropped}).
 *
 * @param inputs    [B][T] token ids
 * @param targets   [B][T] next-token targets, IGNORE where no loss is taken
 * @param truncated examples cut to the window
 * @param dropped   examples with no trained token inside the window (not in the rows)
 */
public record InstructionWindows(int[][] inputs, int[][] targets, int truncated, int dropped) {

    /**
     * @param t     window length T (>= 1)
     * @param padId a valid token id for padding inputs (never a target)
     */
    public static InstructionWindows of(List<InstructionExample> examples, int t, int padId) {
        if (t < 1) {
            throw new IllegalArgumentException("window length must be >= 1, got " + t);
        }
        List<int[]> in = new ArrayList<>();
        List<int[]> tg = new ArrayList<>();
        int truncated = 0;
        int dropped = 0;
        for (InstructionExample e : examples) {
            int len = Math.min(e.ids().length, t + 1);
            if (e.ids().length > t + 1) {
                truncated++;
            }
            int[] x = new int[t];
            int[] y = new int[t];
            Arrays.fill(x, padId);
            Arrays.fill(y, CrossEntropy.IGNORE);
            System.arraycopy(e.ids(), 0, x, 0, Math.max(0, len - 1));
            if (len > 1) {
                System.arraycopy(e.labels(), 1, y, 0, len - 1);
            }
            if (CrossEntropy.counted(y) == 0) {
                dropped++;
                continue;
            }
            in.add(x);
            tg.add(y);
        }
        return new InstructionWindows(in.toArray(int[][]::new), tg.toArray(int[][]::new), truncated, dropped);
    }

    /**
     * Row b's real length: its positions up to and including its last trained target (the completion's end), so
     * the padding after it is excluded. Every row has a trained target, so this is >= 1.
     */
    public int realLength(int b) {
        int[] y = targets[b];
        int last = y.length - 1;
        while (last >= 0 && y[last] == CrossEntropy.IGNORE) {
            last--;
        }
        return last + 1;
    }

    /** Number of trained targets over all rows (the loss's denominator). */
    public int countedTargets() {
        int c = 0;
        for (int[] y : targets) {
            c += CrossEntropy.counted(y);
        }
        return c;
    }
}
