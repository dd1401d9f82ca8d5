package ai.lorakit.models.decoder;

import ai.lorakit.gpu.CrossEntropy;

/**
 * Token windows int[B][T+1] split into inputs (columns 0..T-1) and targets (columns 1..T), row-major [B*T], after
 * checking them (LanguageModel's convention), or inputs [B][T] with their own targets [B][T], which may hold
 * {@link CrossEntropy#IGNORE}. Without targets a window is the input itself ([1][T]).
 *
 * @param b       batch size B
 * @param t       sequence length T (<= the model's maxSeqLen, n_positions in GPT-2)
 * @param ids     inputs [B*T]
 * @param targets next tokens [B*T] (IGNORE where no loss is taken), or null
 * @param counted targets that count in the loss ({@link CrossEntropy#counted}); 0 without targets
 */
record Batch(int b, int t, int[] ids, int[] targets, int counted) {

    /**
     * Inputs [B][T] and their targets [B][T]; a target is in [0,V) or {@link CrossEntropy#IGNORE}.
     *
     * @throws IllegalArgumentException the windows checks of {@link #of(int[][], ModelConfig, boolean)}, targets of
     *                                  another shape or outside [0,V) and not IGNORE, or no counted target at all
     */
    static Batch of(int[][] inputs, int[][] targets, ModelConfig cfg) {
        Batch in = of(inputs, cfg, false);
        if (targets == null || targets.length != in.b()) {
            throw new IllegalArgumentException("targets must be int[B=" + in.b() + "][T=" + in.t() + "], got "
                    + (targets == null ? "null" : "B=" + targets.length));
        }
        int[] flat = new int[in.b() * in.t()];
        int v = cfg.vocabSize();
        for (int i = 0; i < targets.length; i++) {
            int[] y = targets[i];
            if (y == null || y.length != in.t()) {
                throw new IllegalArgumentException("targets row " + i + " has " + (y == null ? "null" : y.length)
                        + " entries, the inputs have T=" + in.t());
            }
            for (int j = 0; j < y.length; j++) {
                if (y[j] != CrossEntropy.IGNORE && (y[j] < 0 || y[j] >= v)) {
                    throw new IllegalArgumentException("targets row " + i + " position " + j + " holds id " + y[j]
                            + ", outside [0, vocab_size=" + v + ") and not the ignored target " + CrossEntropy.IGNORE);
                }
            }
            System.arraycopy(y, 0, flat, i * in.t(), in.t());
        }
        int counted = CrossEntropy.counted(flat);
        if (counted == 0) {
            throw new IllegalArgumentException("every target of the batch is ignored (" + CrossEntropy.IGNORE
                    + "): the mean loss over 0 targets is undefined; drop such rows");
        }
        return new Batch(in.b(), in.t(), in.ids(), flat, counted);
    }

    /**
     * @param withTargets windows carry T+1 tokens (training / loss); otherwise each row is T input tokens
     * @throws IllegalArgumentException empty or ragged windows, T = 0 or > maxSeqLen, a token outside [0,V)
     */
    static Batch of(int[][] windows, ModelConfig cfg, boolean withTargets) {
        if (windows == null || windows.length == 0) {
            throw new IllegalArgumentException("token windows must be a non-empty int[B][T" + (withTargets ? "+1" : "")
                    + "], got " + (windows == null ? "null" : "B=0"));
        }
        int extra = withTargets ? 1 : 0;
        if (windows[0] == null) {
            throw new IllegalArgumentException("token window 0 is null");
        }
        int len = windows[0].length;
        int t = len - extra;
        if (t < 1) {
            throw new IllegalArgumentException("token windows need at least " + (1 + extra) + " tokens"
                    + (withTargets ? " (inputs 0..T-1, targets 1..T)" : "") + ", got " + len);
        }
        if (t > cfg.maxSeqLen()) {
            throw new IllegalArgumentException("sequence length T=" + t + " exceeds " + cfg.maxSeqLenKey() + "="
                    + cfg.maxSeqLen());
        }
        int b = windows.length;
        int[] ids = new int[b * t];
        int[] targets = withTargets ? new int[b * t] : null;
        int v = cfg.vocabSize();
        for (int i = 0; i < b; i++) {
            int[] w = windows[i];
            if (w == null || w.length != len) {
                throw new IllegalArgumentException("token windows must all have length " + len + ", window " + i
                        + " has " + (w == null ? "null" : w.length));
            }
            for (int j = 0; j < len; j++) {
                if (w[j] < 0 || w[j] >= v) {
                    throw new IllegalArgumentException("token window " + i + " position " + j + " holds id " + w[j]
                            + ", outside [0, vocab_size=" + v + ")");
                }
            }
            System.arraycopy(w, 0, ids, i * t, t);
            if (withTargets) {
                System.arraycopy(w, 1, targets, i * t, t);
            }
        }
        return new Batch(b, t, ids, targets, withTargets ? b * t : 0);
    }
}
