package ai.lorakit.models.train;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.models.LanguageModel;

import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * A tiny fake {@link LanguageModel} for Trainer tests: a bigram table W [V,V] (logits of the next token given
 * the current one), cross-entropy computed on the host, gradients accumulated through the backend. It learns,
 * so losses move, and it is deterministic. {@link #nanAtCall} makes one trainStep call return NaN.
 */
final class BigramModel implements LanguageModel {

    private final Backend backend;
    private final int vocab;      // V
    private final int maxSeqLen;
    private final Parameter w;    // W [V,V]
    private int calls;
    /** 1-based trainStep call that returns NaN (0 = never). */
    int nanAtCall;
    private List<int[][]> stagedInputs = List.of();
    private List<int[][]> stagedTargets = List.of();

    BigramModel(Backend backend, int vocab, int maxSeqLen, long seed) {
        this.backend = backend;
        this.vocab = vocab;
        this.maxSeqLen = maxSeqLen;
        float[] init = new float[vocab * vocab];
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = 0; i < init.length; i++) {
            init[i] = (float) (rng.nextGaussian() * 0.02);
        }
        this.w = new Parameter("bigram.weight", Parameter.Role.OTHER, backend.upload(init, DType.F32, vocab, vocab), true);
    }

    float[] weights() {
        return backend.download(w.value());
    }

    @Override
    public Backend backend() {
        return backend;
    }

    @Override
    public int vocabSize() {
        return vocab;
    }

    @Override
    public int maxSeqLen() {
        return maxSeqLen;
    }

    @Override
    public void setTraining(boolean training) {
    }

    @Override
    public double trainStep(int[][] windows, float gradScale) {
        return trainStep(inputs(windows), targets(windows), gradScale);
    }

    @Override
    public double trainStep(int[][] inputs, int[][] targets, float gradScale) {
        calls++;
        float[] wv = weights();
        float[] g = new float[wv.length];
        double loss = lossAndGrad(wv, inputs, targets, g, gradScale);
        try (Tensor gt = backend.upload(g, DType.F32, vocab, vocab)) {
            backend.axpby(1f, gt, 1f, w.gradForAccumulation());
        }
        return calls == nanAtCall ? Double.NaN : loss;
    }

    @Override
    public int[] uploadStep(List<int[][]> inputs, List<int[][]> targets) {
        stagedInputs = List.copyOf(inputs);
        stagedTargets = List.copyOf(targets);
        return targets.stream().mapToInt(t -> CrossEntropy.counted(Arrays.stream(t).flatMapToInt(Arrays::stream)
                .toArray())).toArray();
    }

    /** trainStep per uploaded micro-batch; each slot is written from the host (this model runs on the host). */
    @Override
    public void trainUploaded(float[] gradScales, Tensor stats) {
        for (int k = 0; k < stagedInputs.size(); k++) {
            int[][] t = stagedTargets.get(k);
            int counted = CrossEntropy.counted(Arrays.stream(t).flatMapToInt(Arrays::stream).toArray());
            double mean = trainStep(stagedInputs.get(k), t, gradScales[k]);
            float[] v = backend.download(stats);
            DeviceSums.put(v, k, mean * counted);
            backend.write(stats, v);
        }
    }

    @Override
    public double evalLoss(int[][] windows) {
        return evalLoss(inputs(windows), targets(windows));
    }

    @Override
    public double evalLoss(int[][] inputs, int[][] targets) {
        return lossAndGrad(weights(), inputs, targets, null, 0f);
    }

    private static int[][] inputs(int[][] windows) {
        int[][] x = new int[windows.length][];
        for (int b = 0; b < x.length; b++) {
            x[b] = Arrays.copyOfRange(windows[b], 0, windows[b].length - 1);
        }
        return x;
    }

    private static int[][] targets(int[][] windows) {
        int[][] y = new int[windows.length][];
        for (int b = 0; b < y.length; b++) {
            y[b] = Arrays.copyOfRange(windows[b], 1, windows[b].length);
        }
        return y;
    }

    /** Mean cross-entropy over the counted targets; adds d(mean)/dW · scale into g when g != null. */
    private double lossAndGrad(float[] wv, int[][] inputs, int[][] targets, float[] g, float scale) {
        int n = 0;
        for (int[] y : targets) {
            n += CrossEntropy.counted(y);
        }
        double total = 0;
        double[] p = new double[vocab];
        for (int b = 0; b < inputs.length; b++) {
            for (int t = 0; t < inputs[b].length; t++) {
                int x = inputs[b][t];
                int y = targets[b][t];
                if (y == CrossEntropy.IGNORE) {
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < vocab; j++) {
                    max = Math.max(max, wv[x * vocab + j]);
                }
                double z = 0;
                for (int j = 0; j < vocab; j++) {
                    p[j] = Math.exp(wv[x * vocab + j] - max);
                    z += p[j];
                }
                total += -(wv[x * vocab + y] - max - Math.log(z));
                if (g != null) {
                    for (int j = 0; j < vocab; j++) {
                        g[x * vocab + j] += (float) ((p[j] / z - (j == y ? 1 : 0)) / n * scale);
                    }
                }
            }
        }
        return total / n;
    }

    @Override
    public float[] logits(int[] tokens) {
        float[] wv = weights();
        float[] out = new float[tokens.length * vocab];
        for (int t = 0; t < tokens.length; t++) {
            System.arraycopy(wv, tokens[t] * vocab, out, t * vocab, vocab);
        }
        return out;
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(w);
    }

    @Override
    public List<AdaptedLinear> adaptedModules() {
        return List.of();
    }

    @Override
    public void close() {
        w.setTrainable(false);
        w.value().close();
    }
}
