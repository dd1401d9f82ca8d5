package ai.lorakit.models.train;

import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.data.SequentialBatches;

/** Validation loss over consecutive windows ({@link SequentialBatches}), in eval mode. */
public final class Evaluator {

    private Evaluator() {
    }

    /**
     * Token-weighted mean of {@link LanguageModel#evalLoss} over the first {@code maxBatches} batches (0 = all).
     * Leaves the model in eval mode; the caller restores training mode.
     */
    public static EvalResult evaluate(LanguageModel model, SequentialBatches batches, int maxBatches) {
        int n = maxBatches <= 0 ? batches.batchCount() : Math.min(maxBatches, batches.batchCount());
        if (n == 0) {
            throw new IllegalArgumentException("validation set has no full window to evaluate");
        }
        model.setTraining(false);
        double sum = 0;
        long tokens = 0;
        for (int i = 0; i < n; i++) {
            int[][] batch = batches.batch(i);
            long t = (long) batch.length * (batch[0].length - 1);
            sum += model.evalLoss(batch) * t;
            tokens += t;
        }
        return new EvalResult(sum / tokens, tokens, n);
    }
}
