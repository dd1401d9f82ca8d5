package ai.lorakit.models.train;

import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
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
        return evaluate(model, batches, maxBatches, SingleProcess.INSTANCE);
    }

    /**
     * Data parallel: rank r evaluates the batches i with i mod W = r, and the ranks' (Σ loss·tokens, tokens) are
     * summed with one all-reduce, so every rank gets the whole validation loss for 1/W of the work.
     */
    public static EvalResult evaluate(LanguageModel model, SequentialBatches batches, int maxBatches,
                                      ProcessGroup group) {
        int n = maxBatches <= 0 ? batches.batchCount() : Math.min(maxBatches, batches.batchCount());
        if (n == 0) {
            throw new IllegalArgumentException("validation set has no full window to evaluate");
        }
        model.setTraining(false);
        double sum = 0;
        long tokens = 0;
        for (int i = group.rank(); i < n; i += group.size()) {
            int[][] batch = batches.batch(i);
            long t = (long) batch.length * (batch[0].length - 1);
            sum += model.evalLoss(batch) * t;
            tokens += t;
        }
        if (group.distributed()) {
            double[] st = {sum, tokens};
            group.allReduceSum(st);
            sum = st[0];
            tokens = (long) st[1];
        }
        return new EvalResult(sum / tokens, tokens, n);
    }
}
