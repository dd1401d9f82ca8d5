package ai.lorakit.models;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;

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

    /** Mean cross-entropy of the windows' targets, no gradients, eval mode semantics. */
    double evalLoss(int[][] windows);

    /** Mean cross-entropy over the counted targets [B][T] of inputs [B][T], as {@link #evalLoss(int[][])}. */
    double evalLoss(int[][] inputs, int[][] targets);

    /** Logits [T, V] for one sequence (row-major), for generation and for comparing models. */
    float[] logits(int[] tokens);

    /**
     * The next-token logits of several sequences in one forward: row b of {@code inputs [B][T]} is right-padded
     * (any valid id after its last real token; causal attention keeps padding out of earlier positions), and
     * {@code positions[b]} is the position whose logits are returned. Returns [B, V] (row-major). This default
     * runs {@link #logits(int[])} per row on the first positions[b]+1 tokens; models override it with a batched
     * forward.
     *
     * @throws IllegalArgumentException positions of another length than B, or a position outside [0, T)
     */
    default float[] logitsAt(int[][] inputs, int[] positions) {
        if (positions.length != inputs.length) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries for B=" + inputs.length
                    + " rows");
        }
        int v = vocabSize();
        float[] out = new float[inputs.length * v];
        for (int b = 0; b < inputs.length; b++) {
            int p = positions[b];
            if (p < 0 || p >= inputs[b].length) {
                throw new IllegalArgumentException("position " + p + " of row " + b + " is outside [0, T="
                        + inputs[b].length + ")");
            }
            float[] all = logits(java.util.Arrays.copyOf(inputs[b], p + 1));
            System.arraycopy(all, p * v, out, b * v, v);
        }
        return out;
    }

    /** Every parameter: the base model's (frozen unless full fine-tuning) and the adapters'. */
    List<Parameter> parameters();

    /** The adapted layers, in model order (empty without adapters). */
    List<AdaptedLinear> adaptedModules();

    @Override
    void close();
}
