package ai.lorakit.models;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * What the Trainer, the CLI and the benchmarks need from a causal language model (DecoderModel). Token windows
 * are int[B][T+1]: inputs are columns 0..T-1, targets columns 1..T. Implementations run every op on
 * {@link #backend()}.
 */
public interface LanguageModel extends AutoCloseable {

    Backend backend();

    int vocabSize();

    /** Longest sequence the position embedding allows (n_positions). */
    int maxSeqLen();

    /** Sets training mode (adapter dropout on) or eval mode. */
    void setTraining(boolean training);

    /**
     * Forward and backward on one micro-batch: accumulates (+=) d(mean loss)/dθ * gradScale into every trainable
     * parameter's gradient (gradScale = 1/accumulation steps) and returns the mean cross-entropy (nats/token).
     */
    double trainStep(int[][] windows, float gradScale);

    /**
     * As {@link #trainStep(int[][], float)} on inputs [B][T] with their targets [B][T]: a target of
     * {@link ai.lorakit.gpu.CrossEntropy#IGNORE} takes no loss and no gradient, and the mean is over the counted
     * targets ({@link ai.lorakit.gpu.CrossEntropy#counted}, at least one). The windows form is this one with
     * inputs = w[:, :T], targets = w[:, 1:].
     */
    double trainStep(int[][] inputs, int[][] targets, float gradScale);

    /**
     * One optimizer step's micro-batches k = 0..G-1 (inputs.get(k) [B][T], targets.get(k) [B][T], gradScales[k]) as
     * G calls of {@link #trainStep(int[][], int[][], float)}, with the losses left on the device: slot k of the F32
     * {@code stats} tensor ({@link DeviceSums}) = the SUM of micro-batch k's counted targets' losses. Every
     * micro-batch is validated and uploaded before the first kernel; then {@code uploaded} runs. Returns the counted
     * targets per micro-batch (the mean of k is slot k / counted[k]). DecoderModel makes no host transfer after the
     * upload; this default runs trainStep and writes the slots from the host.
     *
     * @throws IllegalArgumentException as trainStep, or micro-batches of different shapes
     */
    default int[] trainStepsTo(List<int[][]> inputs, List<int[][]> targets, float[] gradScales, Tensor stats,
                               Runnable uploaded) {
        int[] counted = new int[inputs.size()];
        uploaded.run();
        Backend be = stats.backend();
        for (int k = 0; k < counted.length; k++) {
            counted[k] = CrossEntropy.counted(Arrays.stream(targets.get(k)).flatMapToInt(Arrays::stream).toArray());
            double mean = trainStep(inputs.get(k), targets.get(k), gradScales[k]);
            float[] v = be.download(stats);
            DeviceSums.put(v, k, mean * counted[k]);
            be.write(stats, v);
        }
        return counted;
    }

    /** Mean cross-entropy of the windows' targets, no gradients, eval mode semantics. */
    double evalLoss(int[][] windows);

    /** Mean cross-entropy over the counted targets [B][T] of inputs [B][T], as {@link #evalLoss(int[][])}. */
    double evalLoss(int[][] inputs, int[][] targets);

    /** Logits [T, V] for one sequence (row-major), for generation and for comparing models. */
    float[] logits(int[] tokens);

    /** Every parameter: the base model's (frozen unless full fine-tuning) and the adapters'. */
    List<Parameter> parameters();

    /** The adapted layers, in model order (empty without adapters). */
    List<AdaptedLinear> adaptedModules();

    @Override
    void close();
}
