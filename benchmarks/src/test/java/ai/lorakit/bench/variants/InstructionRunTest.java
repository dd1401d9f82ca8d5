package ai.lorakit.bench.variants;

import ai.lorakit.cli.Method;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.InstructionWindows;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that one instruction-table run works end to end on the real data (Brown fiction POS instructions,
 * default-llama): the splits share no file and no row is cut, 10 LoRA steps lower the validation loss on the
 * completion tokens below its value before training, the metrics are in range, real tokens/s is below padded
 * tokens/s, the run folder is removed, and LoRA-drop runs both stages on the instruction rows. Also checks
 * {@link InstructionRun#realTokens} against a hand count.
 */
class InstructionRunTest {

    @Test
    void shortLoraRun(@TempDir Path work) throws IOException {
        InstructionRun.Options o = new InstructionRun.Options(10, 4, 128, 8, 0, 8, 16, 8, null, "cpu", work);
        InstructionRun.Data d = InstructionRun.prepare(o);
        Set<String> files = new HashSet<>(d.split().trainFiles());
        assertTrue(Collections.disjoint(files, d.split().validationFiles()));
        assertTrue(Collections.disjoint(files, d.split().testFiles()));
        assertTrue(Collections.disjoint(d.split().validationFiles(), d.split().testFiles()));
        assertEquals(0, d.train().truncated() + d.validation().truncated() + d.test().truncated());
        assertEquals(16, d.test().inputs().length);
        assertEquals(8, d.prompts().size());
        try (Backend be = new CpuBackend()) {
            InstructionRun.Result r = InstructionRun.run(Method.LORA, 1e-3, 42, o, d, be);
            double before = r.valCurve().getFirst()[1];
            assertTrue(r.valLoss() < before, "val loss " + r.valLoss() + " after 10 steps vs " + before + " before");
            assertTrue(Double.isFinite(r.testLoss()) && r.testLoss() > 0);
            assertTrue(r.exactMatch() >= 0 && r.exactMatch() <= 1);
            assertTrue(r.tagAccuracy() >= 0 && r.tagAccuracy() <= 1);
            assertTrue(r.tokensPerS() > 0 && r.tokensPerS() < r.paddedTokensPerS());
            assertTrue(r.trainable() > 0 && r.peakHeapMiB() > 0 && r.wallS() > 0);
            try (var left = Files.list(work)) {
                assertEquals(0, left.count(), "run folder removed");
            }
            InstructionRun.Result drop = InstructionRun.run(Method.LORA_DROP, 1e-3, 42, o, d, be);
            assertTrue(drop.note().startsWith("stage 1: 10 steps"), drop.note());
            assertTrue(drop.trainable() < r.trainable(), "LoRA-drop ties modules: " + drop.note());
            assertTrue(drop.valLoss() < drop.valCurve().getFirst()[1], "stage 2 lowers the loss: " + drop.valCurve());
        }
    }

    @Test
    void realTokensCountsInputsUpToTheLastTrainedTarget() {
        int ig = CrossEntropy.IGNORE;
        // row 0: 3 real inputs (targets at positions 1, 2 trained); row 1: 5 real inputs
        InstructionWindows rows = new InstructionWindows(new int[][]{{1, 2, 3, 0, 0}, {1, 2, 3, 4, 5}},
                new int[][]{{ig, 3, 4, ig, ig}, {ig, ig, ig, 5, 6}}, 0, 0);
        assertEquals(2 * (3 + 5), InstructionRun.realTokens(rows, 2, 7, 2), "each step draws both rows once");
    }
}
