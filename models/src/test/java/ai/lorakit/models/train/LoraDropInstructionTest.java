package ai.lorakit.models.train;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.schedule.ImportanceMeter;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.LoraDropSelection;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.Document;
import ai.lorakit.models.data.InstructionEncoder;
import ai.lorakit.models.data.InstructionExample;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that LoRA-drop runs on instruction rows (issue 14's instruction table): the stage-1 sample is round(α·N)
 * of the training rows, unchanged and in order, and a pure function of the seed; the importance counts real
 * positions only (equal to forwarding each row alone, cut to its real length, and different from a forward that
 * includes the padding); and both stages train, select, tie and count as on text data.
 */
class LoraDropInstructionTest {

    private static final LoraDropOptions DROP = new LoraDropOptions(0.5, 0.5, LoraDropOptions.Grouping.PER_MODULE,
            LoraDropOptions.Stage2.RESTART);

    /** prompt = 12 bytes of a document, completion = the next 4..10 bytes; rows of T 32, padded with 0. */
    private static InstructionWindows rows(int n) {
        InstructionEncoder enc = new InstructionEncoder(new ByteTokenizer(), null, null, null, List.of());
        List<InstructionExample> ex = new ArrayList<>();
        List<Document> docs = EnglishText.documents();
        for (int i = 0; ex.size() < n; i++) {
            String t = docs.get(i % docs.size()).text();
            int at = (i * 37) % (t.length() - 30);
            ex.add(enc.encode(t.substring(at, at + 12), t.substring(at + 12, at + 16 + i % 7)));
        }
        return InstructionWindows.of(ex, 32, 0);
    }

    @Test
    void sampleIsAnOrderedSeededSubsetOfTheRows() {
        InstructionWindows w = rows(20);
        InstructionWindows s = LoraDropTraining.sample(w, DROP, 9);
        assertEquals(10, s.inputs().length);
        int last = -1;
        for (int[] row : s.inputs()) {
            int idx = indexOfSame(w.inputs(), row);
            assertTrue(idx > last, "rows kept in order, each once");
            last = idx;
        }
        assertArrayEquals(s.inputs(), LoraDropTraining.sample(w, DROP, 9).inputs());
        assertFalse(Arrays.deepEquals(s.inputs(), LoraDropTraining.sample(w, DROP, 10).inputs()));
    }

    private static int indexOfSame(int[][] rows, int[] row) {
        for (int i = 0; i < rows.length; i++) {
            if (rows[i] == row) {
                return i;
            }
        }
        return -1;
    }

    @Test
    void importanceCountsRealPositionsOnly(@TempDir Path dir) throws IOException {
        InstructionWindows w = rows(12);
        try (Backend be = new CpuBackend(); DecoderModel m = TinyGpt2.random(be, 5)) {
            m.attachAdapters(LoraConfig.of(4, 8f, "c_attn", "c_proj", "c_fc"), 17);
            // B's init is zero, so ΔW = 0: move it with a few training steps first
            TrainConfig c = new TrainConfig(3, 4, 32, 1e-2f, 0, TrainConfig.Schedule.CONSTANT, 0.1f, 0f, 1f, 1, 0, 1,
                    0, 3L, 1);
            Map<String, Double> got = LoraDropTraining.measureImportance(m, w, 4, SingleProcess.INSTANCE);
            assertTrue(got.values().stream().allMatch(v -> v == 0.0), "B = 0 at init: " + got);
            try (Trainer t = new Trainer(m, new AdamWPolicy(), c, w, w, dir)) {
                t.run();
            }
            got = LoraDropTraining.measureImportance(m, w, 4, SingleProcess.INSTANCE);
            Map<String, Double> ref;
            Map<String, Double> padded;
            m.setTraining(false);
            try (ImportanceMeter meter = ImportanceMeter.attach(m.adaptedModules())) {
                for (int b = 0; b < w.inputs().length; b++) {
                    int len = w.realLength(b);
                    m.evalLoss(new int[][]{Arrays.copyOf(w.inputs()[b], len)},
                            new int[][]{Arrays.copyOf(w.targets()[b], len)});
                }
                ref = meter.importance();
            }
            try (ImportanceMeter meter = ImportanceMeter.attach(m.adaptedModules())) {
                m.evalLoss(w.inputs(), w.targets());
                padded = meter.importance();
            }
            for (String k : ref.keySet()) {
                assertTrue(ref.get(k) > 0, k);
                assertEquals(ref.get(k), got.get(k), 1e-4 * ref.get(k), k);
                assertNotEquals(ref.get(k), padded.get(k), 1e-3 * ref.get(k), k + ": padding would change it");
            }
        }
    }

    @Test
    void bothStagesRunOnInstructionRows(@TempDir Path out) throws IOException {
        InstructionWindows train = rows(24);
        InstructionWindows val = rows(30);
        TrainConfig c = new TrainConfig(6, 2, 32, 5e-3f, 1, TrainConfig.Schedule.CONSTANT, 0.1f, 0f, 1f, 1, 2, 2, 0,
                9L, 1);
        try (Backend be = new CpuBackend(); DecoderModel m = TinyGpt2.random(be, 5)) {
            m.attachAdapters(LoraConfig.of(4, 8f, "c_attn", "c_proj", "c_fc"), 17);
            try (LoraDropTraining ld = new LoraDropTraining(m, new AdamWPolicy(), c, DROP, 4, train,
                    new InstructionWindows(Arrays.copyOfRange(val.inputs(), 24, 30),
                            Arrays.copyOfRange(val.targets(), 24, 30), 0, 0), out)) {
                List<String> log = new ArrayList<>();
                ld.setLog(log::add);
                LoraDropTraining.Result r = ld.run(false);
                assertEquals(4, r.stage1().step());
                assertEquals(6, r.stage2().step());
                assertTrue(r.trainableAfter() < r.trainableBefore(), r.trainableBefore() + " -> " + r.trainableAfter());
                assertEquals(r.selection().keptModules(),
                        LoraDropSelection.load(out.resolve(LoraDropSelection.FILE)).keptModules());
                assertTrue(log.getFirst().contains("12 of 24 training examples"), log.toString());
                assertTrue(Double.isFinite(r.stage2().after().loss()));
            }
        }
    }
}
