package ai.lorakit.cli;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.optim.DeltaLoraPolicy;
import ai.lorakit.adapters.schedule.LoraDropSelection;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.gpt2.Gpt2Family;
import ai.lorakit.models.train.LoraDropTraining;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TinyGpt2;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training-time variants through {@code lorakit train} (in-process, tiny GPT-2, CPU): adalora reaches its final
 * allocation and saves rank_pattern with pruned tensors (no "fixed rank" warning); delta-lora saves the rank-2r LoRA
 * whose eval on the UNCHANGED base model gives the validation loss the run reported; lora-drop writes its selection
 * and stage-1 log, its export evaluates to the reported loss, and --resume continues stage 2; Method.Settings.defaults
 * equals the train command's option defaults (the variants benchmark relies on it).
 */
class CliVariantsTest {

    @TempDir
    static Path tmp;
    static Path model;
    static String data;

    @BeforeAll
    static void fixtures() throws IOException {
        try (CpuBackend be = new CpuBackend()) {
            model = TinyGpt2.save(be, tmp.resolve("model"), 1);
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    private static CliRun train(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data, "--backend", "cpu",
                "--batch", "2", "--seq-len", "32", "--eval-batches", "2", "--log-every", "1", "--lr", "1e-2",
                "--out", out.toString()));
        a.addAll(List.of(extra));
        CliRun r = CliRun.of(a.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.err().isEmpty(), "no warnings: " + r.err());
        return r;
    }

    /** eval of the base model with {@code adapter} prints the last validation loss of the run's metrics. */
    private static void assertEvalMatchesRun(Path run, Path adapter) throws IOException {
        double valAfter = MetricsLog.read(run).getLast().get("val_loss").asDouble();
        CliRun e = CliRun.of("eval", "--model", model.toString(), "--adapter", adapter.toString(), "--data", data,
                "--backend", "cpu", "--seq-len", "32", "--batch", "2", "--eval-batches", "2");
        assertEquals(0, e.code(), e.toString());
        assertTrue(e.out().contains(String.format(Locale.ROOT, "validation loss %.4f", valAfter)), e.out() + " vs " + valAfter);
    }

    @Test
    void adaloraAllocatesAndSavesItsRankPattern() throws IOException {
        Path run = tmp.resolve("adalora");
        CliRun t = train(run, "--method", "adalora", "--steps", "10", "--adalora-init-r", "4", "--adalora-target-r", "2",
                "--adalora-tinit", "1", "--adalora-tfinal", "3", "--adalora-delta-t", "1");
        assertTrue(t.out().contains("adalora budget: 32 triplets -> 16"), t.out());
        assertTrue(t.out().contains("adalora ranks: 16 of 32 triplets kept (final)"), t.out());
        AdaLoraConfig c = (AdaLoraConfig) PeftAdapterIO.readConfig(run.resolve("adapter"));
        assertNotNull(c.rankPattern());
        assertEquals(8, c.rankPattern().size(), "every adapted module");
        assertEquals(10, c.totalStep());
        assertEvalMatchesRun(run, run.resolve("adapter"));
    }

    @Test
    void deltaLoraExportsTheRank2rLoraThatReproducesTheRun() throws IOException {
        Path run = tmp.resolve("delta");
        CliRun t = train(run, "--method", "delta-lora", "--steps", "6", "--delta-start", "2");
        assertTrue(t.out().contains("past K = 2"), t.out());
        assertTrue(t.out().contains("rank-16 LoRA on the original base weights"), t.out());
        LoraConfig c = (LoraConfig) PeftAdapterIO.readConfig(run.resolve("adapter"));
        assertEquals(16, c.r());
        assertEquals(32f, c.alpha());
        assertEvalMatchesRun(run, run.resolve("adapter"));
    }

    @Test
    void loraDropWritesItsSelectionExportsAndResumes() throws IOException {
        Path run = tmp.resolve("drop");
        CliRun t = train(run, "--method", "lora-drop", "--steps", "6", "--drop-grouping", "module", "--drop-threshold",
                "0.5", "--drop-sample-fraction", "0.5", "--drop-stage1-steps", "3", "--schedule", "constant");
        assertTrue(t.out().contains("LoRA-drop stage 1: 3 steps"), t.out());
        assertTrue(t.out().contains("LoRA-drop selection (T 0.5, per module)"), t.out());
        LoraDropSelection sel = LoraDropSelection.load(run.resolve(LoraDropSelection.FILE));
        assertFalse(sel.droppedModules().isEmpty(), sel.toJson());
        assertEquals(3, MetricsLog.read(run.resolve(LoraDropTraining.STAGE1_DIR)).getLast().get("step").asInt());
        assertTrue(Files.isRegularFile(run.resolve("adapter").resolve(LoraDropSelection.FILE)));
        assertEquals("LORA", PeftAdapterIO.readConfig(run.resolve("adapter")).peftType());
        assertEvalMatchesRun(run, run.resolve("adapter"));

        CliRun r = CliRun.of("train", "--out", run.toString(), "--resume", "--steps", "8");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("stage 2 resumes from its checkpoint"), r.out());
        assertTrue(r.out().contains("resumed from") && r.out().contains("at step 6"), r.out());
        assertEquals(8, MetricsLog.read(run).getLast().get("step").asInt());
    }

    @Test
    void settingsDefaultsAreTheTrainCommandsDefaults() {
        PrintStream sink = new PrintStream(new ByteArrayOutputStream());
        TrainCommand c = new TrainCommand(new Cli(sink, sink));
        new CommandLine(c).parseArgs();
        Method.Settings d = Method.Settings.defaults(c.steps, c.seed, Gpt2Family.INSTANCE.defaultTargets());
        assertEquals(null, c.target, "no --target: the model family's default targets");
        Method.Settings fromCli = new Method.Settings(c.r, c.alpha, c.dropout, c.rslora,
                Gpt2Family.INSTANCE.defaultTargets(), c.loraPlusRatio,
                c.veraR, c.adaloraInitR, c.adaloraTargetR, Method.Settings.defaultTinit(c.steps),
                Method.Settings.defaultTfinal(c.steps), c.adaloraDeltaT, c.adaloraOrthReg, c.steps, c.seed,
                c.deltaLambda, Method.Settings.defaultDeltaStart(c.steps));
        assertEquals(fromCli, d);
        assertEquals(50, Method.Settings.defaultDeltaStart(200), "steps/4 for short runs");
        assertEquals(DeltaLoraPolicy.DEFAULT_START_STEP, Method.Settings.defaultDeltaStart(10_000), "500 for long runs");
    }
}
