package ai.lorakit.cli;

import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.Evaluator;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code lorakit eval}: validation loss and perplexity of a model (plus an optional PEFT adapter) on the
 * validation part of --data, split exactly as train splits it (same --val-fraction and --seed), or on all of it.
 */
@Command(name = "eval", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Validation loss and perplexity of a model, optionally with a PEFT adapter.")
final class EvalCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--model", paramLabel = "<dir>", description = ModelSource.MODEL_HELP)
    Path model;

    @Option(names = "--adapter", paramLabel = "<dir>", description = "PEFT adapter folder to load into the model.")
    Path adapter;

    @Option(names = "--data", defaultValue = "brown:fiction", paramLabel = "<src>", description = "As for train. Default: ${DEFAULT-VALUE}.")
    String data;

    @Option(names = "--split", defaultValue = "validation", paramLabel = "<part>", description = "validation (train's held-out documents) or all. Default: ${DEFAULT-VALUE}.")
    String split;

    @Option(names = "--val-fraction", defaultValue = "0.1", paramLabel = "<f>", description = "As for train. Default: ${DEFAULT-VALUE}.")
    double valFraction;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "<s>", description = "Split seed, as for train. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--seq-len", paramLabel = "<t>", description = "Tokens per window. Default: min(128, n_positions).")
    Integer seqLen;

    @Option(names = "--batch", defaultValue = "8", paramLabel = "<b>", description = "Windows per batch. Default: ${DEFAULT-VALUE}.")
    int batch;

    @Option(names = "--eval-batches", defaultValue = "0", paramLabel = "<n>", description = "Batches to evaluate (0: all). Default: ${DEFAULT-VALUE}.")
    int evalBatches;

    @Option(names = "--tokenizer", defaultValue = "auto", paramLabel = "<t>", description = "As for train. Default: ${DEFAULT-VALUE}.")
    String tokenizer;

    @Option(names = "--precision", defaultValue = "auto", paramLabel = "<p>",
            description = "fp32, bf16 (bf16 weights and activations, fp32 statistics and logits), or auto (bf16 on CUDA, fp32 elsewhere). Default: ${DEFAULT-VALUE}.")
    String precision;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "<b>", description = "Default: ${DEFAULT-VALUE}.")
    String backend;

    @picocli.CommandLine.Mixin
    DeviceOption deviceOption = new DeviceOption();   // --device (OpenCL)

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    EvalCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        Cli.positive("--batch", batch);
        Cli.nonNegative("--eval-batches", evalBatches);
        if (!split.equals("validation") && !split.equals("all")) {
            throw new UsageException("--split must be validation or all, got '" + split + "'");
        }
        if (split.equals("validation") && !(valFraction > 0 && valFraction < 1)) {
            throw new UsageException("--val-fraction must be in (0, 1), got " + valFraction);
        }
        try (LoadedModel lm = deviceOption.open(backend, () -> LoadedModel.open(model, adapter, backend, tokenizer, precision))) {
            int t = seqLen != null ? seqLen : Math.min(128, lm.model.maxSeqLen());
            Cli.positive("--seq-len", t);
            if (t > lm.model.maxSeqLen()) {
                throw new UsageException("--seq-len " + t + " exceeds the model's n_positions " + lm.model.maxSeqLen());
            }
            boolean instruct = InstructionSource.detect(data);
            EvalResult r;
            if (instruct) {                                    // the loss on completion tokens only
                Path tokDir = InstructionSource.tokenizerDir(tokenizer, lm.source.dir());
                InstructionWindows rows = split.equals("all") ? InstructionSource.all(data, lm.tokenizer, tokDir, t)
                        : InstructionSource.load(data, lm.tokenizer, tokDir, t, valFraction, seed).validation();
                r = Evaluator.evaluate(lm.model, rows, batch, evalBatches, SingleProcess.INSTANCE);
            } else {
                TextDataset ds = DataSource.load(data, lm.tokenizer);
                TextDataset part = split.equals("all") ? ds : DataSource.split(ds, valFraction, seed).validation();
                try {
                    r = Evaluator.evaluate(lm.model, part.sequential(t, batch), evalBatches);
                } catch (IllegalArgumentException e) {
                    throw new UsageException("--data " + data + " (" + split + "): " + e.getMessage());
                }
            }
            cli.out.println("model " + lm.source.name() + (adapter == null ? "" : " + adapter " + adapter + " ("
                    + LoadedModel.describe(lm.adapter, lm.model.adaptedModules().size()) + ")"));
            cli.out.println(String.format(Locale.ROOT, "%s loss %.4f  perplexity %.2f  (%d %s, %d batches of %d x %d)",
                    split.equals("all") ? "data" : "validation", r.loss(), r.perplexity(), r.tokens(),
                    instruct ? "completion tokens" : "tokens", r.batches(), batch, t));
        }
        return 0;
    }
}
