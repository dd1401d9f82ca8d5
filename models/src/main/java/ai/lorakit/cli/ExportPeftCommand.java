package ai.lorakit.cli;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.io.AtomicFiles;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.Safetensors;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.models.train.Checkpoint;
import ai.lorakit.models.train.TrainerState;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code lorakit export-peft RUN --out DIR}: copies the PEFT adapter of a training run's checkpoint (RUN may be
 * the run folder or a checkpoint folder) into DIR, after checking it reads as a PEFT adapter. The checkpoint's
 * adapter/ is written from the live layers at checkpoint time, so it is the trained state of that step. The
 * adapter is trained and checkpointed in fp32 (the precision policy's fp32 masters); {@code --dtype bf16} writes
 * its tensors rounded to bf16 (round to nearest even), half the size, loadable by PEFT and by lorakit.
 */
@Command(name = "export-peft", mixinStandardHelpOptions = true, sortOptions = false,
        description = "Write the PEFT adapter of a run's checkpoint to a folder.")
final class ExportPeftCommand implements Callable<Integer> {

    private final Cli cli;

    @Parameters(index = "0", paramLabel = "<run>", description = "Run folder (with checkpoint/) or a checkpoint folder.")
    Path run;

    @Option(names = "--out", required = true, paramLabel = "<dir>", description = "Folder for adapter_config.json + adapter_model.safetensors.")
    Path out;

    @Option(names = "--dtype", defaultValue = "fp32", paramLabel = "<d>",
            description = "fp32 (as trained) or bf16 (tensors rounded to bf16). Default: ${DEFAULT-VALUE}.")
    String dtype;

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
        if (!dtype.equals("fp32") && !dtype.equals("bf16")) {
            throw new UsageException("--dtype must be fp32 or bf16, got '" + dtype + "'");
        }
        Path src = ckpt.resolve(Checkpoint.ADAPTER);
        AdapterConfig c = PeftAdapterIO.readConfig(src);
        Files.createDirectories(out);
        Path weights = src.resolve(PeftAdapterIO.WEIGHTS_FILE);
        if (dtype.equals("bf16")) {
            Map<String, TensorData> bf = new LinkedHashMap<>();
            Map<String, String> meta;
            try (SafetensorsFile sf = SafetensorsFile.open(weights)) {
                for (String n : sf.names()) {
                    bf.put(n, TensorData.bf16(sf.floats(n), sf.info(n).shape()));
                }
                meta = sf.metadata();
            }
            Safetensors.write(out.resolve(PeftAdapterIO.WEIGHTS_FILE), bf, meta.isEmpty() ? null : meta);
        } else {
            AtomicFiles.write(out.resolve(PeftAdapterIO.WEIGHTS_FILE), Files.readAllBytes(weights));
        }
        AtomicFiles.write(out.resolve(PeftAdapterIO.CONFIG_FILE), Files.readAllBytes(src.resolve(PeftAdapterIO.CONFIG_FILE)));
        cli.out.println("exported " + c.peftType() + " adapter of step " + st.step() + " (" + ckpt + ") to " + out
                + (dtype.equals("bf16") ? " (bf16)" : ""));
        return 0;
    }
}
