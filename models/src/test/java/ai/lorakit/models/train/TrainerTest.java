package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.TextDataset;
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
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the Trainer's loop on a tiny fake model ({@link BigramModel}, byte-level, CPU backend): LR schedule
 * values, gradient clipping, gradient accumulation == one big batch, resume == uninterrupted (bit for bit),
 * NaN stops the run and keeps the last good checkpoint, a failing checkpoint write keeps the previous one, and
 * metrics.jsonl has the documented fields.
 */
class TrainerTest {

    private static Backend be;
    private static TextDataset.Split data;

    @BeforeAll
    static void setUp() {
        be = new CpuBackend();
        data = TextDataset.of("english", EnglishText.documents(), new ByteTokenizer()).split(0.25, 7);
    }

    @AfterAll
    static void tearDown() {
        be.close();
    }

    private static TrainConfig cfg(int steps) {
        return new TrainConfig(steps, 4, 16, 0.05f, 2, TrainConfig.Schedule.COSINE, 0.1f, 0f, 1f, 1, 0, 4, 0, 11L, 1);
    }

    private static Trainer trainer(BigramModel m, TrainConfig c, Path out) {
        return new Trainer(m, new AdamWPolicy(), c, data.train(), data.validation(), out);
    }

    // ---------------------------------------------------------------- schedule and config

    @Test
    void lrScheduleValuesAtChosenSteps() {
        LrSchedule cos = new LrSchedule(1e-3f, 10, 110, TrainConfig.Schedule.COSINE, 0.1f);
        assertEquals(1e-4f, cos.at(0), 1e-10f);                 // (0+1)/10 of the peak
        assertEquals(5e-4f, cos.at(4), 1e-10f);
        assertEquals(1e-3f, cos.at(9), 1e-10f);                 // warm-up ends at the peak
        assertEquals(1e-3f, cos.at(10), 1e-10f);                // p = 0
        assertEquals(0.55e-3f, cos.at(60), 1e-9f);              // p = 0.5: m + (1-m)/2
        double p = 99.0 / 100;
        assertEquals((float) (1e-3 * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * p)))), cos.at(109), 1e-10f);
        LrSchedule lin = new LrSchedule(1e-3f, 10, 110, TrainConfig.Schedule.LINEAR, 0.1f);
        assertEquals(0.55e-3f, lin.at(60), 1e-9f);
        assertEquals(1e-3f * (0.1f + 0.9f * 0.25f), lin.at(85), 1e-9f);
        LrSchedule cst = new LrSchedule(1e-3f, 0, 50, TrainConfig.Schedule.CONSTANT, 0.1f);
        assertEquals(1e-3f, cst.at(0));
        assertEquals(1e-3f, cst.at(49));
        LrSchedule noFloor = new LrSchedule(2e-3f, 0, 100, TrainConfig.Schedule.COSINE, 0f);
        assertEquals(2e-3f, noFloor.at(0), 1e-10f);
        assertEquals(1e-3f, noFloor.at(50), 1e-9f);
        assertTrue(noFloor.at(99) < 1e-6f && noFloor.at(99) > 0f);
    }

    @Test
    void trainConfigRejectsBadValuesNamingTheField() {
        TrainConfig ok = cfg(10);
        assertEquals(4 * 16, ok.tokensPerStep());
        String[][] cases = {
            {"steps", "0"}, {"batchSize", "0"}, {"seqLen", "-1"}, {"lr", "NaN"}, {"gradAccum", "0"},
            {"gradClip", "-1.0"}, {"minLrRatio", "1.5"}, {"logEvery", "0"},
        };
        List<Runnable> makers = List.of(
                () -> new TrainConfig(0, 4, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 0, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, -1, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, 16, Float.NaN, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 0, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, -1f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 1.5f, 0f, 0f, 1, 0, 0, 0, 1, 1),
                () -> new TrainConfig(1, 4, 16, 1e-3f, 0, TrainConfig.Schedule.COSINE, 0f, 0f, 0f, 1, 0, 0, 0, 1, 0));
        for (int i = 0; i < cases.length; i++) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, makers.get(i)::run);
            assertTrue(e.getMessage().startsWith(cases[i][0] + " ") && e.getMessage().endsWith("got " + cases[i][1]),
                    e.getMessage());
        }
        assertEquals(TrainConfig.Schedule.LINEAR, TrainConfig.Schedule.parse("Linear"));
        assertThrows(IllegalArgumentException.class, () -> TrainConfig.Schedule.parse("step"));
    }

    @Test
    void seqLenBeyondTheModelIsRefused(@TempDir Path out) {
        try (BigramModel m = new BigramModel(be, 257, 8, 1)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> trainer(m, cfg(2), out));
            assertTrue(e.getMessage().contains("n_positions 8"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- clipping

    @Test
    void clippingScalesTheGlobalNormToTheLimit() {
        Parameter a = new Parameter("a", Parameter.Role.OTHER, be.zeros(DType.F32, 2), true);
        Parameter b = new Parameter("b", Parameter.Role.OTHER, be.zeros(DType.F32, 1, 1), true);
        Parameter frozen = new Parameter("f", Parameter.Role.OTHER, be.zeros(DType.F32, 1), false);
        be.copy(be.upload(new float[]{3f, 0f}, 2), a.gradForAccumulation());
        be.copy(be.upload(new float[]{4f}, 1, 1), b.gradForAccumulation());
        List<Parameter> ps = List.of(a, b, frozen);
        Tensor stats = be.zeros(DType.F32, 4);
        Gradients.squaredNormTo(ps, stats, 1);
        double norm = Math.sqrt(DeviceSums.at(be.download(stats), 1));
        assertEquals(5.0, norm, 1e-12);
        assertEquals(1.0, DeviceSums.clipCoefficient(norm, 10.0));            // under the limit: unchanged
        assertEquals(1.0, DeviceSums.clipCoefficient(norm, 0.0));             // 0 = off
        assertEquals(1.0 / (5.0 + 1e-6), DeviceSums.clipCoefficient(norm, 1.0), 1e-12);
    }

    @Test
    void clippingIsAppliedInTheLoop(@TempDir Path dir) throws IOException {
        // a tiny limit: the logged grad_norm is the pre-clip norm (above the limit), and the clipped run's weights
        // differ from an unclipped twin's (AdamW sees differently scaled gradients from step 2 on)
        float[] clipped;
        float[] free;
        try (BigramModel m = new BigramModel(be, 257, 16, 1); Trainer t = trainer(m, cfg(3).withGradClip(1e-4f), dir.resolve("c"))) {
            t.run();
            clipped = m.weights();
        }
        try (BigramModel m = new BigramModel(be, 257, 16, 1); Trainer t = trainer(m, cfg(3).withGradClip(0f), dir.resolve("f"))) {
            t.run();
            free = m.weights();
        }
        List<JsonNode> lines = MetricsLog.read(dir.resolve("c"));
        assertEquals(4, lines.size());
        for (JsonNode n : lines.subList(1, lines.size())) {
            assertTrue(n.get("grad_norm").asDouble() > 1e-3, n.toString());
        }
        assertFalse(java.util.Arrays.equals(clipped, free), "clipping changed nothing");
    }

    // ---------------------------------------------------------------- accumulation

    @Test
    void gradAccumulationOfTwoBatchesOfTwoEqualsOneBatchOfFour(@TempDir Path dir) throws IOException {
        float[] big;
        float[] accum;
        List<Double> lossBig;
        List<Double> lossAccum;
        try (BigramModel m = new BigramModel(be, 257, 16, 3); Trainer t = trainer(m, cfg(4).withBatch(4, 1), dir.resolve("a"))) {
            t.run();
            big = m.weights();
            lossBig = losses(dir.resolve("a"));
        }
        try (BigramModel m = new BigramModel(be, 257, 16, 3); Trainer t = trainer(m, cfg(4).withBatch(2, 2), dir.resolve("b"))) {
            t.run();
            accum = m.weights();
            lossAccum = losses(dir.resolve("b"));
        }
        assertEquals(4, lossBig.size());
        for (int i = 0; i < lossBig.size(); i++) {
            assertEquals(lossBig.get(i), lossAccum.get(i), 1e-6, "loss of step " + (i + 1));
        }
        Tolerance.Result r = Tolerance.F32.compare("weights after 4 steps", accum, big);
        assertTrue(r.ok(), r.describe());
    }

    // ---------------------------------------------------------------- resume

    @Test
    void resumeContinuesExactlyLikeAnUninterruptedRun(@TempDir Path dir) throws IOException {
        TrainConfig six = cfg(6).withEval(2, 2).withCheckpointEvery(3);
        float[] straight;
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, six, dir.resolve("straight"))) {
            t.run();
            straight = m.weights();
        }
        // first half: the same run stopped after 3 steps (a 3-step config would change the LR schedule, so the
        // interrupted run is the 6-step one with a listener that aborts after the step-3 checkpoint)
        Path out = dir.resolve("resumed");
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, six, out)) {
            t.setListener(new TrainListener() {
                @Override
                public void checkpointed(int step, Path d) {
                    throw new Interrupted();
                }
            });
            assertThrows(Interrupted.class, t::run);
            assertEquals(3, t.step());
        }
        float[] resumed;
        try (BigramModel m = new BigramModel(be, 257, 16, 99); Trainer t = trainer(m, six, out)) {   // other init: overwritten
            assertEquals(3, t.resume());
            t.run();
            resumed = m.weights();
        }
        assertArrayEquals(straight, resumed, "final weights bit for bit");
        List<JsonNode> a = MetricsLog.read(dir.resolve("straight"));
        List<JsonNode> b = MetricsLog.read(out);
        assertEquals(7, a.size());                       // step 0 (validation before) + 6 steps
        assertEquals(a.size(), b.size(), b.toString());
        for (int i = 0; i < a.size(); i++) {
            for (String k : new String[]{"step", "loss", "lr", "grad_norm", "val_loss"}) {
                assertEquals(a.get(i).path(k).asText(), b.get(i).path(k).asText(), k + " of line " + i);
            }
        }
    }

    /** Thrown by a listener to simulate a killed run. */
    private static final class Interrupted extends RuntimeException {
        private static final long serialVersionUID = 1L;
    }

    @Test
    void resumeRefusesAnotherBatchSizeAndAMissingCheckpoint(@TempDir Path out) throws IOException {
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, cfg(2), out)) {
            assertThrows(java.nio.file.NoSuchFileException.class, t::resume);
            t.run();
        }
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, cfg(4).withBatch(2, 1), out)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, t::resume);
            assertTrue(e.getMessage().contains("batch size 2 differs from the checkpoint's 4"), e.getMessage());
        }
    }

    // ---------------------------------------------------------------- failures

    @Test
    void nanLossStopsNamingTheStepAndKeepsTheLastGoodCheckpoint(@TempDir Path out) throws IOException {
        TrainConfig c = cfg(8).withCheckpointEvery(2);
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, c, out)) {
            m.nanAtCall = 5;
            TrainingDivergedException e = assertThrows(TrainingDivergedException.class, t::run);
            assertEquals(5, e.step());
            assertTrue(e.getMessage().contains("at step 5") && e.getMessage().contains("NaN"), e.getMessage());
            assertTrue(e.getMessage().contains("step 4"), e.getMessage());
            assertEquals(out.resolve(Checkpoint.DIR), e.lastCheckpoint());
        }
        TrainerState st = Checkpoint.readState(out.resolve(Checkpoint.DIR));
        assertEquals(4, st.step());
        assertNoTempFolders(out);
        // the kept checkpoint resumes (the NaN was a transient of the fake model)
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, c, out)) {
            assertEquals(4, t.resume());
            assertEquals(8, t.run().step());
        }
    }

    @Test
    void aFailingCheckpointWriteKeepsThePreviousCheckpoint(@TempDir Path out) throws IOException {
        TrainConfig c = cfg(6).withCheckpointEvery(2);
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, c, out)) {
            t.setExtraCheckpointFiles(dir -> {
                Files.writeString(dir.resolve("extra.txt"), "x");
                if (t.step() == 4) {
                    throw new IOException("disk full (simulated)");
                }
            });
            IOException e = assertThrows(IOException.class, t::run);
            assertTrue(e.getMessage().contains("simulated"));
        }
        assertEquals(2, Checkpoint.readState(out.resolve(Checkpoint.DIR)).step());
        assertTrue(Files.isRegularFile(out.resolve(Checkpoint.DIR).resolve(Checkpoint.PARAMS)));
        assertNoTempFolders(out);
    }

    @Test
    void metricsLinesHaveTheDocumentedFields(@TempDir Path out) throws IOException {
        TrainConfig c = cfg(4).withEval(2, 2).withLogEvery(2);
        try (BigramModel m = new BigramModel(be, 257, 16, 5); Trainer t = trainer(m, c, out)) {
            Trainer.Result r = t.run();
            assertNotNull(r.before());
            assertTrue(r.after().loss() < r.before().loss(), r.before() + " -> " + r.after());
        }
        List<JsonNode> lines = MetricsLog.read(out);
        assertEquals(List.of(0, 2, 4), lines.stream().map(n -> n.get("step").asInt()).toList());
        assertTrue(lines.getFirst().has("val_loss") && !lines.getFirst().has("loss"));
        for (JsonNode n : lines.subList(1, 3)) {
            for (String k : new String[]{"step", "loss", "lr", "grad_norm", "tokens_per_s", "val_loss", "val_ppl",
                "elapsed_s"}) {
                assertTrue(n.has(k), k + " missing in " + n);
            }
            assertEquals(Math.exp(n.get("val_loss").asDouble()), n.get("val_ppl").asDouble(), 1e-9);
        }
    }

    private static List<Double> losses(Path out) throws IOException {
        List<Double> l = new ArrayList<>();
        for (JsonNode n : MetricsLog.read(out)) {
            if (n.has("loss")) {
                l.add(n.get("loss").asDouble());
            }
        }
        return l;
    }

    private static void assertNoTempFolders(Path out) throws IOException {
        try (Stream<Path> s = Files.list(out)) {
            List<String> names = s.map(p -> p.getFileName().toString()).toList();
            assertTrue(names.stream().noneMatch(n -> n.startsWith(Checkpoint.TMP_PREFIX) || n.equals(Checkpoint.PREV)),
                    names.toString());
        }
    }
}
