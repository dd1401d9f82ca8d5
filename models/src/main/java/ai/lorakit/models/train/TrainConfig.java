package ai.lorakit.models.train;

import java.util.Locale;

/**
 * Training-loop settings (validated on construction; a bad value names the field and the value). One optimizer
 * step consumes {@code gradAccum} micro-batches of {@code batchSize} windows of {@code seqLen} tokens, so
 * B·T·gradAccum tokens.
 *
 * @param steps           optimizer steps S (> 0)
 * @param batchSize       B, windows per micro-batch (> 0)
 * @param seqLen          T, tokens per window (> 0; the model's n_positions bounds it)
 * @param lr              peak learning rate η (finite, > 0)
 * @param warmupSteps     W, steps of linear warm-up (>= 0); see {@link LrSchedule}
 * @param schedule        decay after warm-up: cosine, linear or constant
 * @param minLrRatio      m, the decay floor as a share of η, in [0, 1]
 * @param weightDecay     decoupled AdamW weight decay λ (finite, >= 0)
 * @param gradClip        maximum global L2 norm of the trainable gradients; 0 = no clipping (finite, >= 0)
 * @param gradAccum       micro-batches per step (>= 1); each contributes 1/gradAccum of its mean-loss gradient
 * @param evalEvery       validate every this many steps (>= 0; 0 = only before and after training)
 * @param evalBatches     validation batches per evaluation (>= 0; 0 = the whole validation set)
 * @param checkpointEvery checkpoint every this many steps (>= 0; 0 = only at the end)
 * @param seed            seed of the training window sampler
 * @param logEvery        write a metrics line (and a plain log line) every this many steps (>= 1)
 */
public record TrainConfig(int steps, int batchSize, int seqLen, float lr, int warmupSteps, Schedule schedule,
                          float minLrRatio, float weightDecay, float gradClip, int gradAccum, int evalEvery,
                          int evalBatches, int checkpointEvery, long seed, int logEvery) {

    /** The learning-rate decay after warm-up. */
    public enum Schedule {
        COSINE, LINEAR, CONSTANT;

        /** "cosine", "linear", "constant" (any case); anything else names the choices. */
        public static Schedule parse(String s) {
            for (Schedule v : values()) {
                if (v.name().equalsIgnoreCase(s.trim())) {
                    return v;
                }
            }
            throw new IllegalArgumentException("schedule must be one of cosine, linear, constant, got '" + s + "'");
        }

        @Override
        public String toString() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    public TrainConfig {
        require(steps > 0, "steps", steps, "must be > 0");
        require(batchSize > 0, "batchSize", batchSize, "must be > 0");
        require(seqLen > 0, "seqLen", seqLen, "must be > 0");
        require(Float.isFinite(lr) && lr > 0, "lr", lr, "must be finite and > 0");
        require(warmupSteps >= 0, "warmupSteps", warmupSteps, "must be >= 0");
        require(schedule != null, "schedule", schedule, "must be set (cosine, linear or constant)");
        require(minLrRatio >= 0 && minLrRatio <= 1, "minLrRatio", minLrRatio, "must be in [0, 1]");
        require(Float.isFinite(weightDecay) && weightDecay >= 0, "weightDecay", weightDecay, "must be finite and >= 0");
        require(Float.isFinite(gradClip) && gradClip >= 0, "gradClip", gradClip, "must be finite and >= 0 (0 = off)");
        require(gradAccum >= 1, "gradAccum", gradAccum, "must be >= 1");
        require(evalEvery >= 0, "evalEvery", evalEvery, "must be >= 0 (0 = only before and after training)");
        require(evalBatches >= 0, "evalBatches", evalBatches, "must be >= 0 (0 = the whole validation set)");
        require(checkpointEvery >= 0, "checkpointEvery", checkpointEvery, "must be >= 0 (0 = only at the end)");
        require(logEvery >= 1, "logEvery", logEvery, "must be >= 1");
    }

    /**
     * Small-run defaults: B 8, T 128, η 1e-3, warm-up 10, cosine to 10 %, no weight decay, clip 1.0, no
     * accumulation, eval every 50 steps on 20 batches, checkpoint every 100, seed 42, log every 10.
     */
    public static TrainConfig defaults(int steps) {
        return new TrainConfig(steps, 8, 128, 1e-3f, Math.min(10, steps / 10), Schedule.COSINE, 0.1f, 0f, 1f, 1,
                50, 20, 100, 42L, 10);
    }

    /** Tokens consumed by one optimizer step: B·T·gradAccum. */
    public long tokensPerStep() {
        return (long) batchSize * seqLen * gradAccum;
    }

    /** The schedule of this config. */
    public LrSchedule lrSchedule() {
        return new LrSchedule(lr, warmupSteps, steps, schedule, minLrRatio);
    }

    public TrainConfig withSteps(int s) {
        return new TrainConfig(s, batchSize, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, gradClip,
                gradAccum, evalEvery, evalBatches, checkpointEvery, seed, logEvery);
    }

    public TrainConfig withBatch(int b, int accum) {
        return new TrainConfig(steps, b, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, gradClip,
                accum, evalEvery, evalBatches, checkpointEvery, seed, logEvery);
    }

    public TrainConfig withGradClip(float clip) {
        return new TrainConfig(steps, batchSize, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, clip,
                gradAccum, evalEvery, evalBatches, checkpointEvery, seed, logEvery);
    }

    public TrainConfig withEval(int every, int batches) {
        return new TrainConfig(steps, batchSize, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, gradClip,
                gradAccum, every, batches, checkpointEvery, seed, logEvery);
    }

    public TrainConfig withCheckpointEvery(int every) {
        return new TrainConfig(steps, batchSize, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, gradClip,
                gradAccum, evalEvery, evalBatches, every, seed, logEvery);
    }

    public TrainConfig withLogEvery(int every) {
        return new TrainConfig(steps, batchSize, seqLen, lr, warmupSteps, schedule, minLrRatio, weightDecay, gradClip,
                gradAccum, evalEvery, evalBatches, checkpointEvery, seed, every);
    }

    private static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException(field + " " + rule + ", got " + value);
        }
    }
}
