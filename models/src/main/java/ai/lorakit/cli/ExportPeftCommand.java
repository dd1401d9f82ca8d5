package ai.lorakit.cli;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.io.AtomicFiles;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.models.train.Checkpoint;
import ai.lorakit.models.train.TrainerState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.Callable;

/**
 * {@code lorakit export-peft RUN --out DIR}: copies the PEFT adapter of a training run's checkpoint (RUN may be
 * the run folder or a checkpoint folder) into DIR, after checking it reads as a PEFT adapter. The checkpoint's
 * adapter/ is written from the live layers at checkpoint time, so it is the trained state of that step.
 */
@Command(name = "export-peft", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write the PEFT adapter of a run's checkpoint to a folder.")
final class ExportPeftCommand implements Callable<Integer> {

    private final Cli cli;

    @Parameters(index = "0", paramLabel = "<run>", description = "Run folder (with checkpoint/) or a checkpoint folder.")
    Path run;

    @Option(names = "--out", required = true, paramLabel = "<dir>", description = "Folder for adapter_config.json + adapter_model.safetensors.")
    Path out;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    ExportPeftCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        if (!Files.isDirectory(run)) {
            throw new UsageException("no such run or checkpoint folder: " + run);
        }
        Path ckpt = Files.isRegularFile(run.resolve(Checkpoint.STATE)) ? run : Checkpoint.locate(run);
        if (ckpt == null) {
            throw new UsageException(run + " has no checkpoint (expected " + run.resolve(Checkpoint.DIR) + "/"
                    + Checkpoint.STATE + ")");
        }
        TrainerState st = Checkpoint.readState(ckpt);
        if (!st.hasAdapter()) {
            throw new UsageException(ckpt + " is a full fine-tuning checkpoint: it has no adapter (the run writes"
                    + " its weights to <run>/model)");
        }
        Path src = ckpt.resolve(Checkpoint.ADAPTER);
        AdapterConfig c = PeftAdapterIO.readConfig(src);
        Files.createDirectories(out);
        AtomicFiles.write(out.resolve(PeftAdapterIO.WEIGHTS_FILE), Files.readAllBytes(src.resolve(PeftAdapterIO.WEIGHTS_FILE)));
        AtomicFiles.write(out.resolve(PeftAdapterIO.CONFIG_FILE), Files.readAllBytes(src.resolve(PeftAdapterIO.CONFIG_FILE)));
        cli.out.println("exported " + c.peftType() + " adapter of step " + st.step() + " (" + ckpt + ") to " + out);
        return 0;
    }
}
