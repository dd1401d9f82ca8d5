package ai.lorakit.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.SplittableRandom;
import java.util.concurrent.Callable;

/**
 * {@code lorakit generate}: samples a continuation of --prompt, token by token (full forward over the last
 * n_positions tokens each time; fine for small models). Temperature 0 is greedy; --top-k 0 samples from all ids.
 */
@Command(name = "generate", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Continue a prompt with a model, optionally with a PEFT adapter.")
final class GenerateCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--model", paramLabel = "<dir>", description = ModelSource.MODEL_HELP)
    Path model;

    @Option(names = "--adapter", paramLabel = "<dir>", description = "PEFT adapter folder to load into the model.")
    Path adapter;

    @Option(names = "--prompt", defaultValue = "The", paramLabel = "<text>", description = "Text to continue. Default: ${DEFAULT-VALUE}.")
    String prompt;

    @Option(names = "--max-tokens", defaultValue = "100", paramLabel = "<n>", description = "Tokens to generate. Default: ${DEFAULT-VALUE}.")
    int maxTokens;

    @Option(names = "--temperature", defaultValue = "0.8", paramLabel = "<t>", description = "Softmax temperature; 0 = greedy. Default: ${DEFAULT-VALUE}.")
    float temperature;

    @Option(names = "--top-k", defaultValue = "40", paramLabel = "<k>", description = "Sample among the k most likely ids (0: all). Default: ${DEFAULT-VALUE}.")
    int topK;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "<s>", description = "Sampling seed. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--tokenizer", defaultValue = "auto", paramLabel = "<t>", description = "As for train. Default: ${DEFAULT-VALUE}.")
    String tokenizer;

    @Option(names = "--precision", defaultValue = "auto", paramLabel = "<p>",
            description = "fp32, bf16 (bf16 weights and activations, fp32 statistics and logits), or auto (bf16 on CUDA, fp32 elsewhere). Default: ${DEFAULT-VALUE}.")
    String precision;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "<b>", description = "Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    GenerateCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        Cli.positive("--max-tokens", maxTokens);
        Cli.nonNegative("--temperature", temperature);
        Cli.nonNegative("--top-k", topK);
        try (LoadedModel lm = LoadedModel.open(model, adapter, backend, tokenizer, precision)) {
            int[] ids = lm.tokenizer.encode(prompt);
            if (ids.length == 0) {
                if (lm.tokenizer.endOfTextId().isEmpty()) {
                    throw new UsageException("--prompt is empty and the tokenizer has no end-of-text id to start from");
                }
                ids = new int[]{lm.tokenizer.endOfTextId().getAsInt()};
            }
            int[] gen = generate(lm, ids);
            cli.out.println(prompt + lm.tokenizer.decode(gen));
        }
        return 0;
    }

    private int[] generate(LoadedModel lm, int[] promptIds) {
        int v = lm.model.vocabSize();
        int p = lm.model.maxSeqLen();
        int usable = lm.tokenizer.vocabSize();   // ids the tokenizer can decode (the model may have padding rows)
        SplittableRandom rng = new SplittableRandom(seed);
        int[] ctx = Arrays.copyOf(promptIds, promptIds.length + maxTokens);
        int n = promptIds.length;
        for (int i = 0; i < maxTokens; i++) {
            int from = Math.max(0, n - p);
            float[] logits = lm.model.logits(Arrays.copyOfRange(ctx, from, n));
            int rows = n - from;
            float[] last = Arrays.copyOfRange(logits, (rows - 1) * v, (rows - 1) * v + usable);
            ctx[n++] = sample(last, rng);
        }
        return Arrays.copyOfRange(ctx, promptIds.length, n);
    }

    /** Greedy at temperature 0; otherwise softmax(logits / T) restricted to the top k. */
    int sample(float[] logits, SplittableRandom rng) {
        int best = 0;
        for (int j = 1; j < logits.length; j++) {
            if (logits[j] > logits[best]) {
                best = j;
            }
        }
        if (temperature == 0f) {
            return best;
        }
        float cutoff = Float.NEGATIVE_INFINITY;
        if (topK > 0 && topK < logits.length) {
            float[] sorted = logits.clone();
            Arrays.sort(sorted);
            cutoff = sorted[sorted.length - topK];
        }
        double[] w = new double[logits.length];
        double z = 0;
        for (int j = 0; j < logits.length; j++) {
            w[j] = logits[j] >= cutoff ? Math.exp((logits[j] - logits[best]) / temperature) : 0;
            z += w[j];
        }
        double u = rng.nextDouble() * z;
        for (int j = 0; j < w.length; j++) {
            u -= w[j];
            if (u < 0 && w[j] > 0) {
                return j;
            }
        }
        return best;
    }
}
