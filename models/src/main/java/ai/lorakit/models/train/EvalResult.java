package ai.lorakit.models.train;

/**
 * A validation pass: mean cross-entropy over {@code tokens} target tokens (nats/token) and its perplexity
 * exp(loss).
 *
 * @param loss    token-weighted mean loss
 * @param tokens  target tokens evaluated
 * @param batches batches evaluated
 */
public record EvalResult(double loss, long tokens, int batches) {

    public double perplexity() {
        return Math.exp(loss);
    }
}
