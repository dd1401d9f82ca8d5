package ai.lorakit.cli;

import ai.lorakit.adapters.io.HfWeights;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.llama.TinyLlama;
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
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI on an HF-layout Llama folder (config.json + model.safetensors.index.json + 2 shards, random tiny model,
 * byte tokenizer), with the same commands as GPT-2: LoRA train (validation loss drops), eval, generate, merge into
 * shards (merged logits == adapted logits), export-peft with HF/PEFT names
 * (base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight) and import-peft; every method trains; a missing
 * shard and a wrong-shaped tensor exit 2 naming the file and the tensor, a bad --max-shard-size exits 2.
 */
class LlamaCliTest {

    /** Half of the tiny model's ~130 KB of F32 data: two shards. */
    private static final String SHARD = "80000";

    @TempDir
    static Path tmp;
    static Path model;
    static String data;
    static CpuBackend be;

    @BeforeAll
    static void fixtures() throws IOException {
        be = new CpuBackend();
        model = TinyLlama.save(be, tmp.resolve("llama"), LlamaFamily.LLAMA, 1, Long.parseLong(SHARD));
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

    private static CliRun train(Path out, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data, "--backend",
                "cpu", "--batch", "2", "--seq-len", "32", "--eval-batches", "2", "--log-every", "1", "--out",
                out.toString()));
        a.addAll(List.of(extra));
        return CliRun.of(a.toArray(String[]::new));
    }

    private static List<Path> shards(Path dir) throws IOException {
        try (Stream<Path> s = Files.list(dir)) {
            return s.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors"))
                    .sorted().toList();
        }
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

    private static final int[] PROBE = {84, 104, 101, 32, 114, 105, 118, 101, 114};  // "The river"

    @Test
    void shardedLlamaTrainsEvaluatesGeneratesMergesAndExports() throws IOException {
        assertTrue(Files.isRegularFile(model.resolve(HfWeights.INDEX_FILE)));
        assertFalse(Files.exists(model.resolve(HfWeights.SINGLE_FILE)));
        assertEquals(2, shards(model).size(), shards(model).toString());

        Path run = tmp.resolve("lora");
        CliRun t = train(run, "--steps", "6", "--lr", "2e-2", "--eval-every", "6");
        assertEquals(0, t.code(), t.toString());
        Path adapter = run.resolve("adapter");
        List<JsonNode> metrics = MetricsLog.read(run);
        double valAfter = metrics.getLast().get("val_loss").asDouble();
        assertTrue(valAfter < metrics.getFirst().get("val_loss").asDouble(), metrics.toString());

        try (SafetensorsFile f = SafetensorsFile.open(adapter.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
            for (String m : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                    "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                String key = "base_model.model.model.layers.1." + m + ".lora_A.weight";
                assertTrue(f.names().contains(key), key + " in " + f.names());
            }
        }

        CliRun e = ok("eval", "--model", model.toString(), "--adapter", adapter.toString(), "--data", data,
                "--backend", "cpu", "--seq-len", "32", "--batch", "2", "--eval-batches", "2");
        assertTrue(e.out().contains("validation loss"), e.out());

        String[] gen = {"generate", "--model", model.toString(), "--adapter", adapter.toString(), "--prompt",
            "The river", "--max-tokens", "6", "--seed", "3", "--backend", "cpu"};
        CliRun g = ok(gen);
        assertTrue(g.out().startsWith("The river"), g.out());
        assertEquals(g.out(), ok(gen).out(), "generate is deterministic");

        Path merged = tmp.resolve("merged");
        CliRun mg = ok("merge", "--model", model.toString(), "--adapter", adapter.toString(), "--out",
                merged.toString(), "--backend", "cpu", "--max-shard-size", "80KB");
        assertTrue(mg.out().contains("sharded"), mg.out());
        assertEquals(2, shards(merged).size(), shards(merged).toString());
        float[] adapted = logits(model, adapter, PROBE);
        Tolerance.Result r = Tolerance.F32.compare("merged vs adapted", logits(merged, null, PROBE), adapted);
        assertTrue(r.ok(), r.describe());
        assertFalse(Tolerance.F32.compare("adapted vs base", adapted, logits(model, null, PROBE)).ok(),
                "the adapter changed nothing");
        // the default 5 GB limit writes one file
        Path single = tmp.resolve("single");
        ok("merge", "--model", model.toString(), "--adapter", adapter.toString(), "--out", single.toString(),
                "--backend", "cpu");
        assertTrue(Files.isRegularFile(single.resolve(HfWeights.SINGLE_FILE)) && shards(single).isEmpty());

        Path exported = tmp.resolve("exported");
        ok("export-peft", run.toString(), "--out", exported.toString());
        CliRun i = ok("import-peft", exported.toString(), "--model", model.toString(), "--backend", "cpu");
        assertTrue(i.out().contains("loads into"), i.out());
        assertEquals(0, Tolerance.F32.compare("exported", logits(model, exported, PROBE), adapted).maxAbsDiff(),
                "exported adapter logits");
    }

    @Test
    void everyMethodTrainsTheLlama() throws IOException {
        String[][] methods = {{"lora"}, {"lora-plus"}, {"lora-fa"}, {"dora"}, {"vera", "--vera-r", "8"},
            {"adalora"}, {"delta-lora"}, {"lora-drop"}, {"full"}};
        for (String[] m : methods) {
            Path run = tmp.resolve("m-" + m[0]);
            List<String> a = new ArrayList<>(List.of("--method", m[0], "--steps", "2", "--lr", "1e-2"));
            a.addAll(List.of(m).subList(1, m.length));
            CliRun t = train(run, a.toArray(String[]::new));
            assertEquals(0, t.code(), m[0] + ": " + t);
            assertTrue(t.err().isEmpty(), m[0] + ": " + t.err());
            for (JsonNode line : MetricsLog.read(run)) {
                assertTrue(!line.has("loss") || Double.isFinite(line.get("loss").asDouble()), m[0] + ": " + line);
            }
        }
    }

    @Test
    void aMissingShardOrAWrongShapeExits2NamingFileAndTensor() throws IOException {
        Path broken = TinyLlama.save(be, tmp.resolve("broken"), LlamaFamily.LLAMA, 2, Long.parseLong(SHARD));
        Path second = shards(broken).get(1);
        Files.delete(second);
        CliRun r = CliRun.of("eval", "--model", broken.toString(), "--data", data, "--backend", "cpu");
        assertEquals(2, r.code(), r.toString());
        assertTrue(r.err().contains(second.getFileName().toString()), r.err());

        CliRun bad = CliRun.of("merge", "--model", broken.toString(), "--adapter", tmp.resolve("none").toString(),
                "--out", tmp.resolve("x").toString(), "--max-shard-size", "0");
        assertEquals(2, bad.code(), bad.toString());
        assertTrue(bad.err().contains("--max-shard-size"), bad.err());

        Path wrong = TinyLlama.save(be, tmp.resolve("wrong"), LlamaFamily.LLAMA, 3, Long.parseLong(SHARD));
        Path cfg = wrong.resolve("config.json");
        Files.writeString(cfg, Files.readString(cfg).replace("\"intermediate_size\" : 48", "\"intermediate_size\" : 40"));
        CliRun w = CliRun.of("eval", "--model", wrong.toString(), "--data", data, "--backend", "cpu");
        assertEquals(2, w.code(), w.toString());
        assertTrue(w.err().contains("model.layers.0.mlp.gate_proj.weight") && w.err().contains("model-00001-of-00002")
                && w.err().contains("[48, 32]"), w.err());
    }
}
