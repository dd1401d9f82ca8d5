package ai.lorakit.models.train;

/**
 * The learning rate of each optimizer step s = 0, 1, ..., S-1 (llm.c's convention, so that the first step
 * already learns):
 * <pre>
 *   s &lt; W:   η_s = η · (s + 1) / W                                   (linear warm-up)
 *   s &gt;= W:  p = (s − W) / max(1, S − W)   in [0, 1)
 *            cosine:   η_s = η · (m + (1 − m) · ½ (1 + cos π p))
 *            linear:   η_s = η · (m + (1 − m) · (1 − p))
 *            constant: η_s = η
 * </pre>
 * with peak η, warm-up W, total S and floor ratio m. A pure function of s, so a resumed run reproduces it.
 *
 * @param peak       η
 * @param warmup     W
 * @param total      S
 * @param schedule   the decay shape
 * @param minRatio   m
 */
public record LrSchedule(float peak, int warmup, int total, TrainConfig.Schedule schedule, float minRatio) {

    /** η_s for 0-based step s. */
    public float at(int s) {
        if (s < warmup) {
            return (float) ((double) peak * (s + 1) / warmup);
        }
        double p = (double) (s - warmup) / Math.max(1, total - warmup);
        p = Math.min(1.0, p);
        double factor = switch (schedule) {
            case COSINE -> minRatio + (1.0 - minRatio) * 0.5 * (1.0 + Math.cos(Math.PI * p));
            case LINEAR -> minRatio + (1.0 - minRatio) * (1.0 - p);
            case CONSTANT -> 1.0;
        };
        return (float) (peak * factor);
    }
}
