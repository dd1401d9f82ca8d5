package ai.lorakit.cli;

import ai.lorakit.gpu.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code lorakit merge}: folds a PEFT adapter into its base model's weights (W += ΔW; DoRA W = m ∘ (W + ΔW)/‖·‖)
 * and writes a plain HF checkpoint (config.json + model.safetensors, plus the base folder's vocab.json and
 * merges.txt), whose logits equal the adapted model's.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Merge a PEFT adapter into the base model and write an HF checkpoint.")
final class MergeCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--model", paramLabel = "<dir>", description = "HF GPT-2 folder. Default: the embedded default model.")
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "<dir>", description = "PEFT adapter folder.")
    Path adapter;

    @Option(names = "--out", required = true, paramLabel = "<dir>", description = "Folder for the merged checkpoint.")
    Path out;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "<t>", description = "Storage: f32 or bf16. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "<b>", description = "Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    MergeCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        DType storage = switch (dtype.toLowerCase(java.util.Locale.ROOT)) {
            case "f32", "float32" -> DType.F32;
            case "bf16", "bfloat16" -> DType.BF16;
            default -> throw new UsageException("--dtype must be f32 or bf16, got '" + dtype + "'");
        };
        try (LoadedModel lm = LoadedModel.open(model, adapter, backend, null)) {
            lm.model.adapters().merge();
            lm.model.saveHf(out, storage);
            ModelSource.copyTokenizerFiles(lm.source.dir(), out);
            cli.out.println("merged " + adapter + " (" + LoadedModel.describe(lm.adapter, lm.model.adaptedModules().size())
                    + ") into " + lm.source.name() + "; wrote " + out + " (config.json + model.safetensors, "
                    + storage.name().toLowerCase(java.util.Locale.ROOT) + ")");
        }
        return 0;
    }
}
