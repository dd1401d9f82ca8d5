package ai.lorakit.models.train;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * One line of metrics.jsonl. Training fields are null on the step-0 line (validation before training); the
 * validation fields are null except on steps that evaluated.
 *
 * @param step        completed optimizer steps
 * @param loss        mean training loss of the step's micro-batches (nats/token)
 * @param lr          learning rate the step used
 * @param gradNorm    global L2 norm of the trainable gradients before clipping
 * @param tokensPerS  training throughput since the previous metrics line
 * @param valLoss     validation loss at this step
 * @param valPpl      exp(valLoss)
 * @param elapsedS    wall time of the run so far, resumed segments included
 */
public record StepMetrics(int step, Double loss, Double lr, Double gradNorm, Double tokensPerS, Double valLoss,
                          Double valPpl, double elapsedS) {

    /** The JSON object written to metrics.jsonl (null fields left out), keys in the documented order. */
    public Map<String, Object> toJson() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("step", step);
        put(m, "loss", loss);
        put(m, "lr", lr);
        put(m, "grad_norm", gradNorm);
        put(m, "tokens_per_s", tokensPerS);
        put(m, "val_loss", valLoss);
        put(m, "val_ppl", valPpl);
        m.put("elapsed_s", elapsedS);
        return m;
    }

    StepMetrics withValidation(EvalResult r) {
        return new StepMetrics(step, loss, lr, gradNorm, tokensPerS, r.loss(), r.perplexity(), elapsedS);
    }

    private static void put(Map<String, Object> m, String k, Double v) {
        if (v != null) {
            m.put(k, v);
        }
    }
}
