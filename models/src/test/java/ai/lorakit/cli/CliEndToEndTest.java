package ai.lorakit.cli;

import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafeDType;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.train.Checkpoint;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TinyGpt2;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI end to end on a tiny random-init GPT-2 and a few KB of English (in-process, CPU backend): train with
 * LoRA then eval (same validation loss as train reported), merge (merged logits == adapted logits),
 * export-peft then import-peft (identical logits); --resume == an uninterrupted run (losses within 1e-6, the final
 * adapters' logits within F32 tolerance; DoRA with adapter dropout); full fine-tuning from random init; every other method
 * (adalora, delta-lora and lora-drop included, none with a warning) trains and re-imports;
 * generate is deterministic; a diverging run exits 1 naming the step and keeps its checkpoint.
 */
class CliEndToEndTest {

    @TempDir
    static Path tmp;
    static Path model;
    static String data;
    static CpuBackend be;

    @BeforeAll
    static void fixtures() throws IOException {
        be = new CpuBackend();
        model = TinyGpt2.save(be, tmp.resolve("model"), 1);
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    @AfterAll
    static void close() {
        be.close();
    }

    private static CliRun ok(String... args) {
        CliRun r = CliRun.of(args);
        assertEquals(0, r.code(), r.toString());
        return r;
    }

    /** train on the tiny model: 2 x 32 tokens per step, log every step. */
    private static CliRun train(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data, "--backend", "cpu",
                "--batch", "2", "--seq-len", "32", "--eval-batches", "2", "--log-every", "1", "--out", out.toString()));
        a.addAll(List.of(extra));
        return CliRun.of(a.toArray(String[]::new));
    }

    private static float[] logits(Path modelDir, Path adapter, int[] probe) throws IOException {
        try (DecoderModel m = DecoderModel.load(modelDir, be)) {
            if (adapter != null) {
                m.attachAdapters(PeftAdapterIO.readConfig(adapter), 0);
                PeftAdapterIO.load(adapter, m.adaptedModules(), m.adapters().veraProjections());
            }
            m.setTraining(false);
            return m.logits(probe);
        }
    }

    private static final int[] PROBE = {84, 104, 101, 32, 114, 105, 118, 101, 114, 32, 119, 97, 115};  // "The river was"

    @Test
    void trainEvalMergeExportImport() throws IOException {
        Path run = tmp.resolve("lora");
        CliRun t = train(run, "--steps", "6", "--lr", "1e-2", "--eval-every", "3", "--checkpoint-every", "3",
                "--dropout", "0.1");
        assertEquals(0, t.code(), t.toString());
        assertTrue(t.out().contains("validation loss before: ") && t.out().contains("validation loss after:  "), t.out());
        Path adapter = run.resolve("adapter");
        assertTrue(Files.isRegularFile(adapter.resolve(PeftAdapterIO.CONFIG_FILE)));
        List<JsonNode> metrics = MetricsLog.read(run);
        assertEquals(7, metrics.size());
        double valAfter = metrics.getLast().get("val_loss").asDouble();
        assertTrue(valAfter < metrics.getFirst().get("val_loss").asDouble(), metrics.toString());

        // eval: the same validation split and batches give the loss train reported
        CliRun e = ok("eval", "--model", model.toString(), "--adapter", adapter.toString(), "--data", data,
                "--backend", "cpu", "--seq-len", "32", "--batch", "2", "--eval-batches", "2");
        assertTrue(e.out().contains(String.format(Locale.ROOT, "validation loss %.4f", valAfter)), e.out() + " vs " + valAfter);

        // merge: a plain checkpoint whose logits equal the adapted model's
        Path merged = tmp.resolve("merged");
        ok("merge", "--model", model.toString(), "--adapter", adapter.toString(), "--out", merged.toString(), "--backend", "cpu");
        float[] adapted = logits(model, adapter, PROBE);
        float[] base = logits(model, null, PROBE);
        float[] fromMerged = logits(merged, null, PROBE);
        Tolerance.Result r = Tolerance.F32.compare("merged vs adapted logits", fromMerged, adapted);
        assertTrue(r.ok(), r.describe());
        assertFalse(Tolerance.F32.compare("adapted vs base", adapted, base).ok(), "the adapter changed nothing");

        // export-peft (from the run's checkpoint) then import-peft (validated, re-saved): identical logits
        Path exported = tmp.resolve("exported");
        CliRun x = ok("export-peft", run.toString(), "--out", exported.toString());
        assertTrue(x.out().contains("step 6"), x.out());
        Path resaved = tmp.resolve("resaved");
        CliRun i = ok("import-peft", exported.toString(), "--model", model.toString(), "--out", resaved.toString(),
                "--backend", "cpu");
        assertTrue(i.out().contains("LoRA r=8") && i.out().contains("loads into"), i.out());
        assertArrayEquals(adapted, logits(model, exported, PROBE), "exported adapter logits");
        assertArrayEquals(adapted, logits(model, resaved, PROBE), "re-saved adapter logits");

        // export-peft --dtype bf16: every tensor stored BF16, each the fp32 value rounded to nearest even; it loads
        Path half = tmp.resolve("exported-bf16");
        CliRun h = ok("export-peft", run.toString(), "--out", half.toString(), "--dtype", "bf16");
        assertTrue(h.out().contains("(bf16)"), h.out());
        try (SafetensorsFile f32 = SafetensorsFile.open(exported.resolve(PeftAdapterIO.WEIGHTS_FILE));
             SafetensorsFile b16 = SafetensorsFile.open(half.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
            assertEquals(f32.names(), b16.names());
            for (String n : f32.names()) {
                assertEquals(SafeDType.BF16, b16.info(n).dtype(), n);
                float[] want = f32.floats(n);
                for (int k = 0; k < want.length; k++) {
                    want[k] = DType.BF16.round(want[k]);
                }
                assertArrayEquals(want, b16.floats(n), n);
            }
        }
        Tolerance.Result hr = Tolerance.BF16.compare("bf16 adapter logits", logits(model, half, PROBE), adapted);
        assertTrue(hr.ok(), hr.describe());
        CliRun bad = CliRun.of("export-peft", run.toString(), "--out", tmp.resolve("x").toString(), "--dtype", "fp16");
        assertTrue(bad.code() != 0 && bad.toString().contains("--dtype must be fp32 or bf16"), bad.toString());
    }

    @Test
    void precisionBf16TrainsAndEvaluatesAndBadValuesAreNamed() throws IOException {
        Path run = tmp.resolve("bf16");
        CliRun t = train(run, "--steps", "3", "--precision", "bf16");
        assertEquals(0, t.code(), t.toString());
        assertTrue(t.out().contains("precision bf16") && t.out().contains("activation buffers")
                && t.out().contains("adapter work buffers"), t.out());
        // eval in bf16 repeats the bf16 validation loss train reported
        List<JsonNode> metrics = MetricsLog.read(run);
        double valAfter = metrics.getLast().get("val_loss").asDouble();
        CliRun e = ok("eval", "--model", model.toString(), "--adapter", run.resolve("adapter").toString(), "--data",
                data, "--backend", "cpu", "--seq-len", "32", "--batch", "2", "--eval-batches", "2", "--precision", "bf16");
        assertTrue(e.out().contains(String.format(Locale.ROOT, "validation loss %.4f", valAfter)), e.out() + " vs " + valAfter);
        String[] gen = {"generate", "--model", model.toString(), "--adapter", run.resolve("adapter").toString(),
            "--prompt", "The river", "--max-tokens", "8", "--seed", "3", "--backend", "cpu", "--precision", "bf16"};
        CliRun g = ok(gen);
        assertEquals(g.out(), ok(gen).out(), "bf16 generation is deterministic");
        assertTrue(g.out().startsWith("The river"), g.out());
        CliRun bad = train(tmp.resolve("bad-precision"), "--steps", "1", "--precision", "fp8");
        assertTrue(bad.code() != 0 && bad.toString().contains("--precision: precision must be fp32, bf16 or auto"),
                bad.toString());
    }

    @Test
    void resumeEqualsAnUninterruptedRun() throws IOException {
        // constant LR (its value does not depend on --steps), so 3 steps + resume to 6 == 6 steps straight
        String[] common = {"--schedule", "constant", "--warmup", "1", "--lr", "5e-3", "--dropout", "0.1",
            "--eval-every", "2", "--checkpoint-every", "2", "--method", "dora"};
        Path straight = tmp.resolve("straight");
        List<String> a = new ArrayList<>(List.of("--steps", "6"));
        a.addAll(List.of(common));
        assertEquals(0, train(straight, a.toArray(String[]::new)).code());
        Path split = tmp.resolve("split");
        List<String> b = new ArrayList<>(List.of("--steps", "3"));
        b.addAll(List.of(common));
        assertEquals(0, train(split, b.toArray(String[]::new)).code());
        CliRun res = ok("train", "--out", split.toString(), "--resume", "--steps", "6");
        assertTrue(res.out().contains("resumed from") && res.out().contains("at step 3"), res.out());
        assertFalse(res.out().contains("validation loss before"), res.out());
        List<JsonNode> ma = MetricsLog.read(straight);
        List<JsonNode> mb = MetricsLog.read(split);
        assertEquals(7, ma.size());
        assertEquals(ma.size(), mb.size(), mb.toString());
        for (int k = 0; k < ma.size(); k++) {
            assertEquals(ma.get(k).path("step").asInt(), mb.get(k).path("step").asInt());
            assertEquals(ma.get(k).path("lr").asText(), mb.get(k).path("lr").asText(), "lr of line " + k);
            for (String key : new String[]{"loss", "grad_norm", "val_loss"}) {
                if (!ma.get(k).has(key) || !mb.get(k).has(key)) {
                    continue;    // the 3-step segment also validated at its last step (3); the straight run did not
                }
                // within 1e-6, not bitwise: the CPU backend's results move by ~1e-8 when the JIT recompiles it
                assertEquals(ma.get(k).path(key).asDouble(), mb.get(k).path(key).asDouble(), 1e-6, key + " of line " + k);
            }
        }
        float[] viaStraight = logits(model, straight.resolve("adapter"), PROBE);
        float[] viaResume = logits(model, split.resolve("adapter"), PROBE);
        Tolerance.Result same = Tolerance.F32.compare("logits of the resumed run's adapter", viaResume, viaStraight);
        assertTrue(same.ok(), same.describe());
        // a finished run is not restarted by accident
        CliRun again = train(straight, "--steps", "6");
        assertEquals(2, again.code(), again.toString());
        assertTrue(again.err().contains("already holds a checkpoint"), again.err());
    }

    @Test
    void fullFineTuningFromRandomInit() throws IOException {
        Path run = tmp.resolve("full");
        CliRun t = ok("train", "--method", "full", "--init", "random", "--n-layer", "1", "--n-embd", "16", "--n-head", "2",
                "--n-positions", "32", "--tokenizer", "bytes", "--data", data, "--backend", "cpu", "--steps", "3",
                "--batch", "2", "--seq-len", "16", "--out", run.toString());
        assertTrue(t.out().contains("full fine-tuning") && t.out().contains("wrote " + run.resolve("model")), t.out());
        try (DecoderModel m = DecoderModel.load(run.resolve("model"), be)) {
            assertEquals(1, m.config().numLayers());
            assertEquals(257, m.vocabSize());
        }
        CliRun e = ok("eval", "--model", run.resolve("model").toString(), "--data", data, "--seq-len", "16", "--backend", "cpu");
        assertTrue(e.out().contains("validation loss"), e.out());
        CliRun x = CliRun.of("export-peft", run.toString(), "--out", tmp.resolve("nope").toString());
        assertEquals(2, x.code(), x.toString());
        assertTrue(x.err().contains("full fine-tuning checkpoint"), x.err());
    }

    @Test
    void everyOtherMethodTrainsAndReimports() {
        String[][] methods = {{"lora-plus"}, {"lora-fa"}, {"vera", "--vera-r", "8"}, {"adalora"}, {"delta-lora"},
            {"lora-drop"}};
        for (String[] m : methods) {
            Path run = tmp.resolve("m-" + m[0]);
            List<String> a = new ArrayList<>(List.of("--method", m[0], "--steps", "2", "--lr", "1e-2"));
            a.addAll(List.of(m).subList(1, m.length));
            CliRun t = train(run, a.toArray(String[]::new));
            assertEquals(0, t.code(), m[0] + ": " + t);
            assertTrue(t.err().isEmpty(), t.err());
            CliRun i = ok("import-peft", run.resolve("adapter").toString(), "--model", model.toString(), "--backend", "cpu");
            assertTrue(i.out().contains("loads into"), i.out());
        }
    }

    @Test
    void generateIsDeterministicAndContinuesThePrompt() {
        String[] args = {"generate", "--model", model.toString(), "--prompt", "The river", "--max-tokens", "8",
            "--seed", "3", "--backend", "cpu"};
        CliRun a = ok(args);
        CliRun b = ok(args);
        assertEquals(a.out(), b.out());
        assertTrue(a.out().startsWith("The river"), a.out());
        CliRun greedy = ok("generate", "--model", model.toString(), "--prompt", "The", "--max-tokens", "4",
                "--temperature", "0", "--backend", "cpu");
        assertTrue(greedy.out().startsWith("The"), greedy.out());
    }

    @Test
    void aDivergingRunExits1NamingTheStepAndKeepsItsCheckpoint() throws IOException {
        Path run = tmp.resolve("nan");
        CliRun t = train(run, "--steps", "6", "--lr", "1e30", "--clip", "0", "--warmup", "0", "--checkpoint-every", "1",
                "--schedule", "constant");
        assertEquals(1, t.code(), t.toString());
        assertEquals(1, t.err().lines().count(), t.err());
        assertTrue(t.err().contains("training diverged at step "), t.err());
        int failed = Integer.parseInt(t.err().replaceAll("(?s).*diverged at step (\\d+).*", "$1"));
        assertTrue(failed >= 2, t.err());
        assertEquals(failed - 1, Checkpoint.readState(run.resolve(Checkpoint.DIR)).step());
    }
}
