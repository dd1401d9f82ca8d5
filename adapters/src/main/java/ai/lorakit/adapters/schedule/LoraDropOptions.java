package ai.lorakit.adapters.schedule;

import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * LoRA-drop's options (Zhou et al., arXiv 2402.07721; VARIANTS.md section 8). The paper's method section could not
 * be retrieved (VARIANTS.md section 13), so every open choice is an explicit option; the defaults are lorakit's:
 *
 * @param alpha     α, the fraction of the training data sampled for stage 1 (train LoRA on it, then measure the
 *                  importance on it), in (0, 1]. Default {@link #DEFAULT_ALPHA} = 0.1: the importance only has to
 *                  rank the modules, and stage 1 should cost a small fraction of the run; not a paper value.
 * @param threshold T, the cumulative normalised importance the kept (individual) adapters must reach, in (0, 1].
 *                  Default 0.9 (the value the paper's summaries quote).
 * @param grouping  the unit that is ranked, kept or dropped. Default {@link Grouping#PER_BLOCK}: the abstract
 *                  speaks of layers ("retain LoRA for important layers, the other layers share the same LoRA"), and
 *                  a block's projections then stay together.
 * @param stage2    how stage 2 starts. Default {@link Stage2#RESTART}: stage 1 is a short probe on α of the data, so
 *                  stage 2 starts from a fresh init (B = 0) exactly like a LoRA run of the same length, with the
 *                  pruned structure; the kept and the shared adapters then start alike.
 */
public record LoraDropOptions(double alpha, double threshold, Grouping grouping, Stage2 stage2) {

    /** Ranking unit. */
    public enum Grouping {
        /** Each adapted module (e.g. transformer.h.3.attn.c_attn) on its own. */
        PER_MODULE,
        /**
         * All modules of one transformer block together: the block of a module is its name up to and including
         * the first all-digit dotted component (transformer.h.3.attn.c_attn → transformer.h.3); a name without
         * one is its own block. A block's importance is the sum of its modules'.
         */
        PER_BLOCK
    }

    /** How stage 2 (all the data, pruned structure) starts. */
    public enum Stage2 {
        /** Every adapter (kept and shared) re-initialised as at creation (B = 0: the model starts as the base). */
        RESTART,
        /** Kept adapters keep their stage-1 values; the shared adapters start fresh (B = 0), so the dropped
         *  modules lose their stage-1 contribution (by construction at most 1 − T of the total importance). */
        CONTINUE
    }

    public static final double DEFAULT_ALPHA = 0.1;
    public static final double DEFAULT_THRESHOLD = 0.9;

    private static final Pattern BLOCK = Pattern.compile("^(.*?(?:^|\\.)\\d+)(?:\\.|$)");

    public LoraDropOptions {
        require(alpha > 0 && alpha <= 1, "lora_drop alpha (sampling fraction)", alpha, "must be in (0, 1]");
        require(threshold > 0 && threshold <= 1, "lora_drop threshold T", threshold, "must be in (0, 1]");
        require(grouping != null, "lora_drop grouping", null, "must be set");
        require(stage2 != null, "lora_drop stage2", null, "must be set");
    }

    /** α = 0.1, T = 0.9, per block, restart. */
    public static LoraDropOptions defaults() {
        return new LoraDropOptions(DEFAULT_ALPHA, DEFAULT_THRESHOLD, Grouping.PER_BLOCK, Stage2.RESTART);
    }

    public LoraDropOptions withThreshold(double t) {
        return new LoraDropOptions(alpha, t, grouping, stage2);
    }

    public LoraDropOptions withGrouping(Grouping g) {
        return new LoraDropOptions(alpha, threshold, g, stage2);
    }

    public LoraDropOptions withStage2(Stage2 s) {
        return new LoraDropOptions(alpha, threshold, grouping, s);
    }

    /** Number of stage-1 samples out of {@code n}: ceil(α·n), at least 1. */
    public int sampleSize(int n) {
        require(n > 0, "lora_drop dataset size", n, "must be > 0");
        return (int) Math.max(1, Math.min(n, Math.ceil(alpha * n)));
    }

    /** The ranking unit of a module name under {@link #grouping()}. */
    public String groupOf(String module) {
        if (grouping == Grouping.PER_MODULE) {
            return module;
        }
        Matcher m = BLOCK.matcher(module);
        return m.find() ? m.group(1) : module;
    }

    private static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException(field + " " + rule + ", got " + value);
        }
    }
}
