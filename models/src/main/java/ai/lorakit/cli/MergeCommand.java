package ai.lorakit.cli;

import ai.lorakit.adapters.io.HfWeights;
import ai.lorakit.gpu.DType;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code lorakit merge}: folds a PEFT adapter into its base model's weights (W += ΔW; DoRA W = m ∘ (W + ΔW)/‖·‖)
 * and writes a plain HF checkpoint (config.json + model.safetensors, or shards + model.safetensors.index.json above
 * --max-shard-size; plus the base folder's vocab.json and merges.txt), whose logits equal the adapted model's.
 */
@Command(name = "merge", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Merge a PEFT adapter into the base model and write an HF checkpoint.")
final class MergeCommand implements Callable<Integer> {

    private final Cli cli;

    @Option(names = "--model", paramLabel = "<dir>", description = ModelSource.MODEL_HELP)
    Path model;

    @Option(names = "--adapter", required = true, paramLabel = "<dir>", description = "PEFT adapter folder.")
    Path adapter;

    @Option(names = "--out", required = true, paramLabel = "<dir>", description = "Folder for the merged checkpoint.")
    Path out;

    @Option(names = "--dtype", defaultValue = "f32", paramLabel = "<t>", description = "Storage: f32 or bf16. Default: ${DEFAULT-VALUE}.")
    String dtype;

    @Option(names = "--max-shard-size", paramLabel = "<bytes>", description = "Write shards of at most this many bytes (suffix KB, MB, GB) plus model.safetensors.index.json when the weights are larger. Default: 5GB, as transformers.")
    String maxShardSize;

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
        long shard = shardBytes(maxShardSize);
        try (LoadedModel lm = LoadedModel.open(model, adapter, backend, null)) {
            lm.model.adapters().merge();
            lm.model.saveHf(out, storage, shard);
            ModelSource.copyTokenizerFiles(lm.source.dir(), out);
            cli.out.println("merged " + adapter + " (" + LoadedModel.describe(lm.adapter, lm.model.adaptedModules().size())
                    + ") into " + lm.source.name() + "; wrote " + out + " (config.json + "
                    + (Files.isRegularFile(out.resolve(HfWeights.INDEX_FILE)) ? "sharded safetensors, "
                    : "model.safetensors, ")
                    + storage.name().toLowerCase(java.util.Locale.ROOT) + ")");
        }
        return 0;
    }

    /** transformers' max_shard_size: bytes, or a number with KB, MB or GB (powers of 1000); null = 5 GB. */
    static long shardBytes(String spec) {
        if (spec == null) {
            return HfWeights.DEFAULT_MAX_SHARD_BYTES;
        }
        java.util.regex.Matcher m = java.util.regex.Pattern.compile("(\\d+)\\s*([KMG]?B)?")
                .matcher(spec.trim().toUpperCase(java.util.Locale.ROOT));
        long n = -1;
        if (m.matches()) {
            try {
                long unit = m.group(2) == null ? 1 : switch (m.group(2)) {
                    case "KB" -> 1_000L;
                    case "MB" -> 1_000_000L;
                    case "GB" -> 1_000_000_000L;
                    default -> 1L;
                };
                n = Math.multiplyExact(Long.parseLong(m.group(1)), unit);
            } catch (ArithmeticException | NumberFormatException e) {
                n = -1;
            }
        }
        if (n <= 0) {
            throw new UsageException("--max-shard-size must be a positive size such as 5GB, 200MB or 1000000, got '"
                    + spec + "'");
        }
        return n;
    }
}
