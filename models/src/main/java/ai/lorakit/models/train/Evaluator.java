package ai.lorakit.models.train;

import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.data.SequentialBatches;

import java.util.Arrays;

/**
 * Validation loss over consecutive windows ({@link SequentialBatches}) or instruction rows
 * ({@link InstructionWindows}, the loss on their trained targets only), in eval mode.
 */
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

    /**
     * The mean loss over the counted (trained) targets of instruction rows, in batches of {@code batchSize}
     * consecutive rows, the first {@code maxBatches} (0 = all); batch i weighs by its counted targets. Data
     * parallel as {@link #evaluate(LanguageModel, SequentialBatches, int, ProcessGroup)}; {@link EvalResult#tokens}
     * counts the targets.
     */
    public static EvalResult evaluate(LanguageModel model, InstructionWindows rows, int batchSize, int maxBatches,
                                      ProcessGroup group) {
        int total = (rows.inputs().length + batchSize - 1) / batchSize;
        int n = maxBatches <= 0 ? total : Math.min(maxBatches, total);
        if (n == 0) {
            throw new IllegalArgumentException("validation set has no instruction row to evaluate");
        }
        model.setTraining(false);
        double sum = 0;
        long counted = 0;
        for (int i = group.rank(); i < n; i += group.size()) {
            int from = i * batchSize;
            int to = Math.min(from + batchSize, rows.inputs().length);
            int[][] y = Arrays.copyOfRange(rows.targets(), from, to);
            long c = 0;
            for (int[] row : y) {
                c += CrossEntropy.counted(row);
            }
            sum += model.evalLoss(Arrays.copyOfRange(rows.inputs(), from, to), y) * c;
            counted += c;
        }
        if (group.distributed()) {
            double[] st = {sum, counted};
            group.allReduceSum(st);
            sum = st[0];
            counted = (long) st[1];
        }
        return new EvalResult(sum / counted, counted, n);
    }
}
