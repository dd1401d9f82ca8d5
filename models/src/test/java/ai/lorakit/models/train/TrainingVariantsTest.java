package ai.lorakit.models.train;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.DeltaLoraPolicy;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.LoraDropSelection;
import ai.lorakit.adapters.schedule.RankAllocator;
import ai.lorakit.adapters.schedule.TrainingHook;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.tokenizer.ByteTokenizer;
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
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training-time variants driven by the real Trainer on the tiny GPT-2 (CPU backend, English text):
 * <ul>
 *   <li>the Trainer always builds the hook (AdaLoRA: a RankAllocator, Delta-LoRA: its updater, LoRA: NONE) and
 *       Delta-LoRA with adapter dropout is refused at construction;</li>
 *   <li>Delta-LoRA: W really changes, and the exported rank-2r PEFT LoRA loaded on the ORIGINAL base model gives the
 *       trained model's logits;</li>
 *   <li>AdaLoRA: a run reaches its final allocation, the saved adapter has the rank_pattern and pruned shapes, and it
 *       reloads into a fresh model to the trained logits;</li>
 *   <li>LoRA-drop: a run writes its selection into the run folder, tied modules share Parameter objects (fewer
 *       trainable elements), and the plain-LoRA export reloads to the trained logits;</li>
 *   <li>resume with each hook (AdaLoRA, Delta-LoRA, LoRA-drop in stage 2 and in stage 1) reproduces the
 *       uninterrupted run: losses within 1e-6, final adapter weights (and Delta-LoRA's W) within F32 tolerance.</li>
 * </ul>
 */
class TrainingVariantsTest {

    private static Backend be;
    private static TextDataset.Split data;
    private static final int[] PROBE = {84, 104, 101, 32, 114, 105, 118, 101, 114, 32, 119, 97, 115};

    @BeforeAll
    static void setUp() {
        be = new CpuBackend();
        data = TextDataset.of("english", EnglishText.documents(), new ByteTokenizer()).split(0.25, 3);
    }

    @AfterAll
    static void tearDown() {
        be.close();
    }

    /** B 2, T 32, constant LR (its value does not depend on the step count), eval every 2 steps on 2 batches. */
    private static TrainConfig cfg(int steps, int checkpointEvery) {
        return new TrainConfig(steps, 2, 32, 5e-3f, 1, TrainConfig.Schedule.CONSTANT, 0.1f, 0f, 1f, 1, 2, 2,
                checkpointEvery, 9L, 1);
    }

    private static Trainer trainer(DecoderModel m, OptimizerPolicy p, TrainConfig c, Path out) {
        return new Trainer(m, p, c, data.train(), data.validation(), out);
    }

    private static DecoderModel model(AdapterConfig adapter) {
        DecoderModel m = TinyGpt2.random(be, 5);
        m.attachAdapters(adapter, 17);
        return m;
    }

    private static float[] logits(DecoderModel m) {
        m.setTraining(false);
        return m.logits(PROBE);
    }

    /** The base model (same seed, original W) with the adapter in {@code dir} loaded. */
    private static float[] reloadedLogits(Path dir) throws IOException {
        try (DecoderModel fresh = TinyGpt2.random(be, 5)) {
            fresh.attachAdapters(PeftAdapterIO.readConfig(dir), 0);
            PeftAdapterIO.load(dir, fresh.adaptedModules(), fresh.adapters().veraProjections());
            return logits(fresh);
        }
    }

    private static void assertClose(String what, float[] actual, float[] ref) {
        Tolerance.Result r = Tolerance.F32.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    private static final LoraConfig LORA = LoraConfig.of(4, 8f, "c_attn", "c_proj", "c_fc");

    // ---------------------------------------------------------------- hooks are always built

    @Test
    void theTrainerAlwaysBuildsTheHookAndRefusesDeltaLoraWithDropout(@TempDir Path out) {
        try (DecoderModel m = model(LORA); Trainer t = trainer(m, new AdamWPolicy(), cfg(2, 0), out)) {
            assertSame(TrainingHook.NONE, t.hook());
        }
        try (DecoderModel m = model(AdaLoraConfig.of(4, "c_attn"));
             Trainer t = trainer(m, new AdamWPolicy(), cfg(4, 0), out)) {
            assertInstanceOf(RankAllocator.class, t.hook());
        }
        try (DecoderModel m = model(LORA); Trainer t = trainer(m, new DeltaLoraPolicy(2f, 1), cfg(2, 0), out)) {
            assertInstanceOf(DeltaLoraUpdater.class, t.hook());
        }
        try (DecoderModel m = model(LORA.withDropout(0.1f))) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> trainer(m, new DeltaLoraPolicy(2f, 1), cfg(2, 0), out));
            assertTrue(e.getMessage().contains("refuses dropout"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- Delta-LoRA

    @Test
    void deltaLoraChangesWAndItsRank2rExportReproducesTheTrainedLogits(@TempDir Path out) throws IOException {
        String w = "transformer.h.0.attn.c_attn.weight";
        try (DecoderModel m = model(LORA)) {
            float[] w0 = be.download(m.baseParameter(w).value());
            try (Trainer t = trainer(m, new DeltaLoraPolicy(2f, 2), cfg(8, 0), out.resolve("run"))) {
                t.run();
                float[] wT = be.download(m.baseParameter(w).value());
                assertFalse(Tolerance.F32.compare("W after Delta-LoRA", wT, w0).ok(), "W did not move");
                float[] trained = logits(m);
                Path dir = out.resolve("adapter");
                t.saveAdapter(dir);
                LoraConfig c = (LoraConfig) PeftAdapterIO.readConfig(dir);
                assertEquals(8, c.r(), "rank 2r");
                assertEquals(16f, c.alpha(), "alpha doubled: same scaling s");
                assertClose("export on the original W vs the trained model", reloadedLogits(dir), trained);
                // the checkpoint's adapter/ is the same export
                assertClose("checkpoint adapter", reloadedLogits(t.lastCheckpoint().resolve(Checkpoint.ADAPTER)), trained);
            }
        }
    }

    // ---------------------------------------------------------------- AdaLoRA

    @Test
    void adaloraRunSavesItsRankPatternPrunedAndReloadsToTheTrainedLogits(@TempDir Path out) throws IOException {
        // init_r 6 -> target_r 2 over 4 modules: budget 24 -> 8; tinit 1, tfinal 3: final allocation at step 7
        AdaLoraConfig ada = new AdaLoraConfig(6, 2, 1, 3, 1, 0.85f, 0.85f, 0.5f, 10, 8f, 0f,
                List.of("c_attn", "mlp.c_fc"), null);
        try (DecoderModel m = model(ada); Trainer t = trainer(m, new AdamWPolicy(), cfg(10, 0), out.resolve("run"))) {
            t.run();
            RankAllocator ra = (RankAllocator) t.hook();
            assertTrue(ra.finalized(), ra.toString());
            Map<String, boolean[]> pattern = ra.rankPattern();
            assertNotNull(pattern);
            int kept = 0;
            for (boolean[] p : pattern.values()) {
                for (boolean b : p) {
                    kept += b ? 1 : 0;
                }
            }
            assertEquals(8, kept, "target budget 2 x 4 layers");
            float[] trained = logits(m);
            Path dir = out.resolve("adapter");
            t.saveAdapter(dir);
            AdaLoraConfig saved = (AdaLoraConfig) PeftAdapterIO.readConfig(dir);
            assertNotNull(saved.rankPattern(), "rank_pattern in adapter_config.json");
            assertEquals(pattern.keySet(), saved.rankPattern().keySet());
            try (SafetensorsFile sf = SafetensorsFile.open(dir.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
                for (Map.Entry<String, boolean[]> e : pattern.entrySet()) {
                    String module = e.getKey().substring(0, e.getKey().length() - ".lora_E".length());
                    long r = 0;
                    for (boolean b : e.getValue()) {
                        r += b ? 1 : 0;
                    }
                    assertEquals(r, sf.info(PeftAdapterIO.PREFIX + module + ".lora_A").shape()[0], module);
                    assertEquals(r, sf.info(PeftAdapterIO.PREFIX + module + ".lora_E").shape()[0], module);
                    assertEquals(r, sf.info(PeftAdapterIO.PREFIX + module + ".lora_B").shape()[1], module);
                }
            }
            assertClose("pruned AdaLoRA reloaded vs trained", reloadedLogits(dir), trained);
        }
    }

    // ---------------------------------------------------------------- LoRA-drop

    private static final LoraDropOptions DROP = new LoraDropOptions(0.5, 0.5, LoraDropOptions.Grouping.PER_MODULE,
            LoraDropOptions.Stage2.RESTART);

    @Test
    void loraDropWritesItsSelectionTiesModulesAndItsExportReloads(@TempDir Path out) throws IOException {
        Path run = out.resolve("run");
        try (DecoderModel m = model(LORA);
             LoraDropTraining ld = new LoraDropTraining(m, new AdamWPolicy(), cfg(6, 0), DROP, 4, data.train(),
                     data.validation(), run)) {
            List<String> log = new ArrayList<>();
            ld.setLog(log::add);
            LoraDropTraining.Result r = ld.run(false);
            LoraDropSelection sel = LoraDropSelection.load(run.resolve(LoraDropSelection.FILE));
            assertEquals(r.selection().keptModules(), sel.keptModules());
            assertFalse(sel.droppedModules().isEmpty(), "T 0.5 per module drops something: " + sel.toJson());
            assertTrue(sel.keptShare() >= 0.5, sel.toJson());
            assertTrue(Files.isRegularFile(run.resolve(LoraDropTraining.STAGE1_DIR).resolve(MetricsLog.FILE)));
            assertEquals(4, MetricsLog.read(run.resolve(LoraDropTraining.STAGE1_DIR)).getLast().get("step").asInt());
            assertEquals(6, r.stage2().step());
            assertTrue(r.trainableAfter() < r.trainableBefore(), r.trainableBefore() + " -> " + r.trainableAfter());
            assertTrue(log.stream().anyMatch(l -> l.contains("LoRA-drop selection")), log.toString());
            // tied modules of one shape read the very same Parameter objects; kept ones their own
            Map<String, Parameter> sharedA = new java.util.HashMap<>();
            for (var a : m.adaptedModules()) {
                Parameter pa = a.parameter(Parameter.Role.LORA_A);
                String shape = a.inFeatures() + "x" + a.outFeatures();
                if (sel.droppedModules().contains(a.name())) {
                    assertSame(sharedA.computeIfAbsent(shape, k -> pa), pa, a.name() + " is tied");
                    assertSame(ld.drop().sharedParameters().stream().filter(q -> q == pa).findFirst().orElse(null), pa);
                } else {
                    assertEquals(a.name() + ".lora_A", pa.name(), "kept module has its own A");
                }
            }
            float[] trained = logits(m);
            Path dir = out.resolve("adapter");
            ld.saveAdapter(dir);
            assertTrue(Files.isRegularFile(dir.resolve(LoraDropSelection.FILE)));
            assertInstanceOf(LoraConfig.class, PeftAdapterIO.readConfig(dir));
            assertClose("LoRA-drop export reloaded vs trained", reloadedLogits(dir), trained);
        }
    }

    // ---------------------------------------------------------------- resume with each hook

    /** Thrown by a listener to simulate a killed run. */
    private static final class Killed extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    /** Kills the run after the checkpoint of {@code step} written into {@code dir}. */
    private static TrainListener killAfter(Path dir, int step) {
        return new TrainListener() {
            @Override
            public void checkpointed(int s, Path d) {
                if (s == step && d.getParent().equals(dir)) {
                    throw new Killed();
                }
            }
        };
    }

    /** Every adapter tensor and the W of the first c_attn (Delta-LoRA changes it). */
    private static float[] state(DecoderModel m) {
        List<Float> all = new ArrayList<>();
        for (var a : m.adaptedModules()) {
            for (Parameter p : a.parameters()) {
                for (float v : be.download(p.value())) {
                    all.add(v);
                }
            }
        }
        for (float v : be.download(m.baseParameter("transformer.h.0.attn.c_attn.weight").value())) {
            all.add(v);
        }
        float[] out = new float[all.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = all.get(i);
        }
        return out;
    }

    private static void assertSameMetrics(Path a, Path b) throws IOException {
        List<JsonNode> x = MetricsLog.read(a);
        List<JsonNode> y = MetricsLog.read(b);
        assertEquals(x.size(), y.size(), y.toString());
        for (int i = 0; i < x.size(); i++) {
            assertEquals(x.get(i).path("step").asInt(), y.get(i).path("step").asInt());
            for (String k : new String[]{"loss", "grad_norm", "val_loss"}) {
                assertEquals(x.get(i).path(k).asDouble(), y.get(i).path(k).asDouble(), 1e-6, k + " of line " + i);
            }
        }
    }

    /** 8 steps straight vs killed after the checkpoint of step {@code kill} and resumed in a freshly built model. */
    private static void resumeLikeStraight(AdapterConfig adapter, OptimizerPolicy policy, Path dir, int kill)
            throws IOException {
        TrainConfig c = cfg(8, 2);
        float[] straight;
        try (DecoderModel m = model(adapter); Trainer t = trainer(m, policy, c, dir.resolve("a"))) {
            t.run();
            straight = state(m);
        }
        Path out = dir.resolve("b" + kill);
        try (DecoderModel m = model(adapter); Trainer t = trainer(m, policy, c, out)) {
            t.setListener(killAfter(out, kill));
            assertThrows(Killed.class, t::run);
        }
        float[] resumed;
        try (DecoderModel m = model(adapter); Trainer t = trainer(m, policy, c, out)) {
            assertEquals(kill, t.resume());
            t.run();
            resumed = state(m);
        }
        assertSameMetrics(dir.resolve("a"), out);
        assertClose("state after 8 steps, resumed vs straight", resumed, straight);
    }

    @Test
    void adaloraResumesLikeAnUninterruptedRun(@TempDir Path dir) throws IOException {
        // budgeting: total 8, tinit 0, tfinal 2, budget 12 -> 4 triplets: masks at steps 1..5 (budgets 8, 6, 5, 4, 4)
        // read the importance EMAs, killed after 2 completed steps
        AdaLoraConfig budgeting = new AdaLoraConfig(6, 2, 0, 2, 1, 0.85f, 0.85f, 0.5f, 8, 8f, 0.1f, List.of("c_attn"), null);
        resumeLikeStraight(budgeting, new AdamWPolicy(), dir.resolve("budgeting"), 2);
        // final: tfinal 5, the final allocation at step 3 and re-applied after: killed after 4 completed steps
        AdaLoraConfig fin = new AdaLoraConfig(4, 2, 0, 5, 1, 0.85f, 0.85f, 0.5f, 8, 8f, 0.1f, List.of("c_attn"), null);
        resumeLikeStraight(fin, new AdamWPolicy(), dir.resolve("final"), 4);
    }

    @Test
    void deltaLoraResumesLikeAnUninterruptedRun(@TempDir Path dir) throws IOException {
        resumeLikeStraight(LORA, new DeltaLoraPolicy(2f, 2), dir, 4);   // snapshot after step 3, W moves from step 4
    }

    /** LoRA-drop killed in stage 2 (after its step-2 checkpoint) or in stage 1 (after its step-2 checkpoint). */
    @Test
    void loraDropResumesInEitherStageLikeAnUninterruptedRun(@TempDir Path dir) throws IOException {
        TrainConfig c = cfg(6, 2);
        LoraDropOptions opts = DROP.withStage2(LoraDropOptions.Stage2.CONTINUE);
        float[] straight;
        Path a = dir.resolve("a");
        try (DecoderModel m = model(LORA);
             LoraDropTraining ld = new LoraDropTraining(m, new AdamWPolicy(), c, opts, 4, data.train(), data.validation(), a)) {
            ld.run(false);
            straight = state(m);
        }
        for (Path killIn : new Path[]{dir.resolve("b"), dir.resolve("c").resolve(LoraDropTraining.STAGE1_DIR)}) {
            Path out = killIn.getFileName().toString().equals(LoraDropTraining.STAGE1_DIR) ? killIn.getParent() : killIn;
            try (DecoderModel m = model(LORA);
                 LoraDropTraining ld = new LoraDropTraining(m, new AdamWPolicy(), c, opts, 4, data.train(), data.validation(), out)) {
                ld.setListener(killAfter(killIn, 2));
                assertThrows(Killed.class, () -> ld.run(false));
            }
            float[] resumed;
            try (DecoderModel m = model(LORA);
                 LoraDropTraining ld = new LoraDropTraining(m, new AdamWPolicy(), c, opts, 4, data.train(), data.validation(), out)) {
                LoraDropTraining.Result r = ld.run(true);
                assertEquals(6, r.stage2().step());
                resumed = state(m);
            }
            assertSameMetrics(a, out);
            assertSameMetrics(a.resolve(LoraDropTraining.STAGE1_DIR), out.resolve(LoraDropTraining.STAGE1_DIR));
            assertEquals(LoraDropSelection.load(a.resolve(LoraDropSelection.FILE)).keptModules(),
                    LoraDropSelection.load(out.resolve(LoraDropSelection.FILE)).keptModules());
            assertClose("LoRA-drop state, resumed in " + killIn.getFileName() + " vs straight", resumed, straight);
        }
    }
}
