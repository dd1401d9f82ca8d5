package ai.lorakit.models.eval;

import ai.lorakit.models.LanguageModel;

import java.util.Arrays;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * Greedy generation for many prompts at once: each generated token costs ONE forward of the still-running rows
 * ({@link LanguageModel#logitsAt}), right-padded to the longest of them, each row's logits read at its own last
 * position. No KV cache: step k forwards the whole prefix again, which is cheap for short completions of a small
 * model and needs nothing from the model beyond its forward. A row stops at its first token that {@code stop}
 * accepts (the token is not kept), after its maxNew tokens, or when it reaches the model's maxSeqLen.
 * Ties in the argmax go to the lowest id.
 */
public final class GreedyDecoder {

    /**
     * @param completions [M][≤maxNew] the generated ids of each prompt, without the stop token
     * @param stopped     whether row m ended on a stop token (false: cut at maxNew or maxSeqLen)
     * @param forwards    batched forwards run (one per generated position)
     */
    public record Generation(int[][] completions, boolean[] stopped, int forwards) {
    }

    private GreedyDecoder() {
    }

    /**
     * @param prompts non-empty prompts, each shorter than the model's maxSeqLen
     * @param maxNew  most tokens generated per prompt (>= 1)
     * @param stop    the end of a completion (e.g. the EOS id, or a token that decodes to a newline)
     * @throws IllegalArgumentException no prompts, an empty or too long prompt, maxNew < 1
     */
    public static Generation generate(LanguageModel model, List<int[]> prompts, int maxNew, IntPredicate stop) {
        int[] each = new int[prompts.size()];
        Arrays.fill(each, maxNew);
        return generate(model, prompts, each, stop);
    }

    /**
     * As {@link #generate(LanguageModel, List, int, IntPredicate)} with a cap per prompt (e.g. its gold answer's
     * length plus a margin, when longer answers are wrong anyway), so short answers do not pay for long ones.
     *
     * @throws IllegalArgumentException as the other form, or maxNew of another length than the prompts
     */
    public static Generation generate(LanguageModel model, List<int[]> prompts, int[] maxNew, IntPredicate stop) {
        if (prompts.isEmpty()) {
            throw new IllegalArgumentException("no prompts to generate from");
        }
        if (maxNew.length != prompts.size()) {
            throw new IllegalArgumentException(maxNew.length + " maxNew caps for " + prompts.size() + " prompts");
        }
        for (int n : maxNew) {
            if (n < 1) {
                throw new IllegalArgumentException("maxNew must be >= 1, got " + n);
            }
        }
        int cap = model.maxSeqLen();
        int m = prompts.size();
        int[][] seq = new int[m][];                 // [M][prompt + maxNew] ids, valid up to len[i]
        int[] len = new int[m];
        int[] promptLen = new int[m];
        boolean[] done = new boolean[m];
        boolean[] stopped = new boolean[m];
        for (int i = 0; i < m; i++) {
            int[] p = prompts.get(i);
            if (p.length == 0 || p.length >= cap) {
                throw new IllegalArgumentException("prompt " + i + " has " + p.length + " tokens; it needs 1 to "
                        + (cap - 1) + " (the model's maxSeqLen " + cap + " minus one generated token)");
            }
            seq[i] = Arrays.copyOf(p, p.length + maxNew[i]);
            len[i] = p.length;
            promptLen[i] = p.length;
        }
        int v = model.vocabSize();
        int forwards = 0;
        while (true) {
            int[] active = activeRows(done);
            if (active.length == 0) {
                break;
            }
            int w = 0;                                              // W: the longest running row
            for (int i : active) {
                w = Math.max(w, len[i]);
            }
            int[][] batch = new int[active.length][w];              // [A][W], right-padded with each row's last id
            int[] pos = new int[active.length];
            for (int a = 0; a < active.length; a++) {
                int i = active[a];
                System.arraycopy(seq[i], 0, batch[a], 0, len[i]);
                Arrays.fill(batch[a], len[i], w, seq[i][len[i] - 1]);
                pos[a] = len[i] - 1;
            }
            float[] logits = model.logitsAt(batch, pos);            // [A, V]
            forwards++;
            for (int a = 0; a < active.length; a++) {
                int i = active[a];
                int next = argmax(logits, a * v, v);
                if (stop.test(next)) {
                    done[i] = true;
                    stopped[i] = true;
                    continue;
                }
                seq[i][len[i]++] = next;
                done[i] = len[i] - promptLen[i] >= maxNew[i] || len[i] >= cap;
            }
        }
        int[][] out = new int[m][];
        for (int i = 0; i < m; i++) {
            out[i] = Arrays.copyOfRange(seq[i], promptLen[i], len[i]);
        }
        return new Generation(out, stopped, forwards);
    }

    private static int[] activeRows(boolean[] done) {
        int n = 0;
        for (boolean d : done) {
            n += d ? 0 : 1;
        }
        int[] out = new int[n];
        int k = 0;
        for (int i = 0; i < done.length; i++) {
            if (!done[i]) {
                out[k++] = i;
            }
        }
        return out;
    }

    /** Index of the largest of x[from .. from+n) relative to from (lowest index on ties). */
    static int argmax(float[] x, int from, int n) {
        int best = 0;
        for (int j = 1; j < n; j++) {
            if (x[from + j] > x[from + best]) {
                best = j;
            }
        }
        return best;
    }
}
