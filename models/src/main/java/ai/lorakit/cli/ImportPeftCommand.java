package ai.lorakit.cli;

import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Locale;
import java.util.concurrent.Callable;

/**
 * {@code lorakit import-peft DIR}: loads a PEFT adapter (from PEFT or lorakit) into the base model, which
 * validates every key, shape, dtype and value and the config's agreement with the layers, then prints a summary
 * (including how much the adapter moves the logits of a probe sequence); {@code --out} re-saves it in
 * lorakit's PEFT writer format.
 */
@Command(name = "import-peft", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Validate a PEFT adapter against a model and summarise it; --out re-saves it.")
final class ImportPeftCommand implements Callable<Integer> {

    private final Cli cli;

    @Parameters(index = "0", paramLabel = "<adapter>", description = "PEFT adapter folder (adapter_config.json + adapter_model.safetensors).")
    Path adapter;

    @Option(names = "--model", paramLabel = "<dir>", description = ModelSource.MODEL_HELP)
    Path model;

    @Option(names = "--out", paramLabel = "<dir>", description = "Re-save the validated adapter here.")
    Path out;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "<b>", description = "Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    ImportPeftCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        try (LoadedModel lm = LoadedModel.open(model, adapter, backend, null)) {
            int n = Math.min(16, lm.model.maxSeqLen());
            int[] probe = new int[n];
            for (int i = 0; i < n; i++) {
                probe[i] = (int) ((i * 2654435761L) % lm.model.vocabSize());
            }
            float[] adapted = lm.model.logits(probe);
            lm.model.adaptedModules().forEach(a -> a.setEnabled(false));
            float[] base = lm.model.logits(probe);
            lm.model.adaptedModules().forEach(a -> a.setEnabled(true));
            double maxDiff = 0;
            for (int i = 0; i < adapted.length; i++) {
                maxDiff = Math.max(maxDiff, Math.abs(adapted[i] - base[i]));
            }
            cli.out.println("PEFT adapter " + adapter + ": " + LoadedModel.describe(lm.adapter, lm.model.adaptedModules().size()));
            cli.out.println(String.format(Locale.ROOT, "loads into %s (%s): %,d adapter parameters; max |logit change| on"
                    + " a %d-token probe %.4g", lm.source.name(), lm.model.config().describe(),
                    lm.adapterParameterCount(), n, maxDiff));
            if (out != null) {
                lm.model.adapters().savePeft(out, lm.source.name());
                cli.out.println("re-saved to " + out);
            }
        }
        return 0;
    }
}
