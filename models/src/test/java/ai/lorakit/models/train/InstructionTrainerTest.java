package ai.lorakit.models.train;

import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.InstructionExample;
import ai.lorakit.models.data.InstructionSampler;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.data.WindowSampler;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.List;
import java.util.Random;
import java.util.Set;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the Trainer on instruction rows ({@link BigramModel}, whose loss is computed on the host): with gradient
 * accumulation each micro-batch is weighted by its counted targets, so 1 x batch 2 x accumulation 2 gives the
 * losses, gradient norms and weights of 1 x batch 4 (while the unweighted mean of the micro-batch losses would
 * differ); 2 thread ranks give the same as one process; validation weighs batches by their counted targets; the
 * shuffled sampler visits every row once per epoch and resumes exactly, and so does a checkpointed run; rows of
 * another T are refused.
 */
class InstructionTrainerTest {

    private static final int V = 12;
    private static final int T = 8;

    /** 12 examples of varied length whose first half (the prompt) is not trained: counted targets vary 1..6. */
    private static InstructionWindows rows(long seed) {
        Random rnd = new Random(seed);
        List<InstructionExample> ex = new ArrayList<>();
        for (int i = 0; i < 12; i++) {
            int len = 3 + rnd.nextInt(7);
            int[] ids = new int[len];
            int[] labels = new int[len];
            for (int j = 0; j < len; j++) {
                ids[j] = 1 + rnd.nextInt(V - 1);
                labels[j] = j < len / 2 ? CrossEntropy.IGNORE : ids[j];
            }
            ex.add(new InstructionExample(ids, labels));
        }
        return InstructionWindows.of(ex, T, 0);
    }

    private static TrainConfig cfg(int b, int accum) {
        return new TrainConfig(4, b, T, 0.05f, 0, TrainConfig.Schedule.CONSTANT, 0.1f, 0f, 100f, accum, 0, 0, 0,
                3L, 1);
    }

    private record Run(List<Double> losses, List<Double> norms, float[] weights, double valLoss) {
    }

    private static Run train(TrainConfig c, Path out, ProcessGroup g) throws Exception {
        List<Double> losses = new ArrayList<>();
        List<Double> norms = new ArrayList<>();
        try (Backend be = new CpuBackend()) {
            BigramModel m = new BigramModel(be, V, 64, 5);
            try (m; Trainer t = new Trainer(m, new AdamWPolicy(), c, rows(1), rows(2), out)) {
                t.setProcessGroup(g);
                t.setListener(new TrainListener() {
                    @Override
                    public void stepDone(StepMetrics sm, boolean logged) {
                        losses.add(sm.loss());
                        norms.add(sm.gradNorm());
                    }
                });
                Trainer.Result r = t.run();
                return new Run(losses, norms, m.weights(), r.after().loss());
            }
        }
    }

    @Test
    void accumulationWeighsMicroBatchesByCountedTargets(@TempDir Path dir) throws Exception {
        Run big = train(cfg(4, 1), dir.resolve("big"), SingleProcess.INSTANCE);
        Run acc = train(cfg(2, 2), dir.resolve("acc"), SingleProcess.INSTANCE);
        assertEquals(4, big.losses().size());
        for (int s = 0; s < 4; s++) {
            assertEquals(big.losses().get(s), acc.losses().get(s), 1e-6, "loss of step " + (s + 1));
            assertEquals(big.norms().get(s), acc.norms().get(s), 1e-6, "gradient norm of step " + (s + 1));
        }
        for (int i = 0; i < big.weights().length; i++) {
            assertEquals(big.weights()[i], acc.weights()[i], 1e-6, "W[" + i + "]");
        }
        // the check can fail: the micro-batches' counts differ, so the plain mean of their losses is another value
        try (Backend be = new CpuBackend(); BigramModel m = new BigramModel(be, V, 64, 5)) {
            InstructionSampler s = new InstructionSampler(rows(1), 2, 3L);
            InstructionSampler.Rows a = s.nextBatch();
            InstructionSampler.Rows b = s.nextBatch();
            assertNotEquals(a.counted(), b.counted(), "the test needs micro-batches of different counts");
            double la = m.evalLoss(a.inputs(), a.targets());
            double lb = m.evalLoss(b.inputs(), b.targets());
            double weighted = (la * a.counted() + lb * b.counted()) / (a.counted() + b.counted());
            assertEquals(weighted, big.losses().getFirst(), 1e-6, "step 1 = the counted-weighted mean");
            assertTrue(Math.abs((la + lb) / 2 - weighted) > 1e-4, "the unweighted mean differs");
        }
    }

    @Test
    void twoRanksEqualOneProcess(@TempDir Path dir) throws Exception {
        Run one = train(cfg(4, 1), dir.resolve("one"), SingleProcess.INSTANCE);
        ThreadRanks[] ranks = ThreadRanks.ranks(2);
        ExecutorService ex = Executors.newFixedThreadPool(2);
        List<Run> runs = new ArrayList<>();
        try {
            List<Future<Run>> fs = new ArrayList<>();
            for (ThreadRanks r : ranks) {
                fs.add(ex.submit(() -> train(cfg(4, 1), dir.resolve("rank" + r.rank()), r)));
            }
            for (Future<Run> f : fs) {
                runs.add(f.get());
            }
        } finally {
            ex.shutdownNow();
        }
        for (Run r : runs) {
            for (int s = 0; s < 4; s++) {
                assertEquals(one.losses().get(s), r.losses().get(s), 1e-6, "loss of step " + (s + 1));
            }
            for (int i = 0; i < one.weights().length; i++) {
                assertEquals(one.weights()[i], r.weights()[i], 1e-6, "W[" + i + "]");
            }
            assertEquals(one.valLoss(), r.valLoss(), 1e-9, "validation loss");
        }
    }

    @Test
    void resumeContinuesTheShuffledRowsExactly(@TempDir Path dir) throws Exception {
        TrainConfig c = cfg(2, 2).withCheckpointEvery(2);
        Run whole = train(c, dir.resolve("whole"), SingleProcess.INSTANCE);
        Path out = dir.resolve("parts");
        train(c.withSteps(2), out, SingleProcess.INSTANCE);
        try (Backend be = new CpuBackend()) {
            BigramModel m = new BigramModel(be, V, 64, 5);
            try (m; Trainer t = new Trainer(m, new AdamWPolicy(), c, rows(1), rows(2), out)) {
                assertEquals(2, t.resume());
                Trainer.Result r = t.run();
                assertEquals(whole.losses().getLast(), r.lastLoss(), 0.0, "last step's loss");
                assertArrayEquals(whole.weights(), m.weights(), "weights bit for bit");
            }
        }
    }

    @Test
    void validationWeighsBatchesByCountedTargets() {
        try (Backend be = new CpuBackend(); BigramModel m = new BigramModel(be, V, 64, 6)) {
            InstructionWindows val = rows(2);
            EvalResult r = Evaluator.evaluate(m, val, 5, 0, SingleProcess.INSTANCE);
            assertEquals(val.countedTargets(), r.tokens());
            assertEquals(3, r.batches());
            assertEquals(m.evalLoss(val.inputs(), val.targets()), r.loss(), 1e-9, "the mean over all counted targets");
        }
    }

    @Test
    void samplerShufflesEveryRowOncePerEpochAndResumes() {
        InstructionWindows w = rows(1);
        int n = w.inputs().length;
        InstructionSampler s = new InstructionSampler(w, 3, 9L);
        List<int[]> epoch = new ArrayList<>();
        for (int i = 0; i < n / 3; i++) {
            epoch.addAll(Arrays.asList(s.nextBatch().inputs()));
        }
        Set<String> seen = new HashSet<>();
        boolean shuffled = false;
        for (int i = 0; i < n; i++) {
            seen.add(Arrays.toString(epoch.get(i)));
            shuffled |= !Arrays.equals(epoch.get(i), w.inputs()[i]);
        }
        Set<String> all = new HashSet<>();
        for (int[] x : w.inputs()) {
            all.add(Arrays.toString(x));
        }
        assertEquals(all, seen, "one epoch visits every row");
        assertTrue(shuffled, "rows are shuffled");
        WindowSampler.State st = s.state();
        InstructionSampler.Rows next = s.nextBatch();
        InstructionSampler other = new InstructionSampler(w, 3, 1L);
        other.restore(st);
        InstructionSampler.Rows again = other.nextBatch();
        for (int b = 0; b < 3; b++) {
            assertArrayEquals(next.inputs()[b], again.inputs()[b]);
            assertArrayEquals(next.targets()[b], again.targets()[b]);
        }
    }

    @Test
    void rowsOfAnotherLengthAreRefused(@TempDir Path dir) {
        try (Backend be = new CpuBackend(); BigramModel m = new BigramModel(be, V, 64, 5)) {
            TrainConfig c = new TrainConfig(4, 2, T + 1, 0.05f, 0, TrainConfig.Schedule.CONSTANT, 0.1f, 0f, 1f, 1, 0,
                    0, 0, 3L, 1);
            var e = assertThrows(IllegalArgumentException.class,
                    () -> new Trainer(m, new AdamWPolicy(), c, rows(1), rows(2), dir));
            assertTrue(e.getMessage().contains("seqLen"), e.getMessage());
        }
    }
}
