package ai.lorakit.models.train;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.schedule.RankAllocator;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.ExecutorService;
import java.util.concurrent.Executors;
import java.util.concurrent.Future;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the Trainer's data parallelism without MPI, with W ranks as threads ({@link ThreadRanks}) on the tiny GPT-2:
 * <ul>
 *   <li>2 ranks x batch 2 for 20 steps give the adapters of 1 process x batch 4 to 1e-6, and of 1 process x batch 2
 *       x accumulation 2 (the same windows, the same sum order) bit for bit; every rank ends with the same weights;</li>
 *   <li>rank 1 writes nothing (no metrics, no checkpoint), rank 0 writes both;</li>
 *   <li>AdaLoRA: the ranks make the same rank allocation as the single process, since its importance is computed from
 *       the reduced gradients;</li>
 *   <li>LoRA-drop's importance and the validation loss, measured on each rank's share and reduced, equal the single
 *       process's;</li>
 *   <li>a 2-rank checkpoint resumes in one process (the global batch kept) to the 2-rank result, and a batch that
 *       does not split over the ranks is refused with the reason;</li>
 *   <li>a NaN loss on rank 1 alone stops BOTH ranks at the same step (the reduced loss carries it), before any
 *       update, with rank 0's last checkpoint kept.</li>
 * </ul>
 */
class DataParallelTrainerTest {

    private static TextDataset.Split data;
    private static final LoraConfig LORA = LoraConfig.of(4, 8f, "c_attn", "c_proj", "c_fc");

    @BeforeAll
    static void setUp() {
        data = TextDataset.of("english", EnglishText.documents(), new ByteTokenizer()).split(0.25, 3);
    }

    /** Global batch b, T 32, accumulation a, constant LR, no eval during training, checkpoint every ckpt steps. */
    private static TrainConfig cfg(int steps, int b, int a, int ckpt) {
        return new TrainConfig(steps, b, 32, 5e-3f, 2, TrainConfig.Schedule.COSINE, 0.1f, 0.01f, 1f, a, 0, 2, ckpt,
                9L, 1);
    }

    /** Trains one rank (its own backend and model; resumeTo > 0: from out's checkpoint) and returns its trainable weights. */
    private static Map<String, float[]> train(AdapterConfig ac, TrainConfig c, Path out, ProcessGroup g, int resumeTo,
                                              Map<String, boolean[]>[] pattern) throws IOException {
        try (Backend be = new CpuBackend(); DecoderModel m = TinyGpt2.random(be, 5)) {
            m.attachAdapters(ac, 17);
            try (Trainer t = new Trainer(m, new AdamWPolicy(), c, data.train(), data.validation(), out)) {
                t.setProcessGroup(g);
                if (resumeTo > 0) {
                    assertEquals(10, t.resume());
                }
                t.run();
                if (pattern != null && t.hook() instanceof RankAllocator ra) {
                    pattern[g.rank()] = ra.rankPattern();
                }
                Map<String, float[]> w = new LinkedHashMap<>();
                for (Parameter p : t.parameters()) {
                    if (p.trainable()) {
                        w.put(p.name(), be.download(p.value()));
                    }
                }
                return w;
            }
        }
    }

    /** Runs W ranks in W threads; returns each rank's weights. */
    private static List<Map<String, float[]>> trainRanks(int w, AdapterConfig ac, TrainConfig c, Path out,
                                                         Map<String, boolean[]>[] pattern) throws Exception {
        ThreadRanks[] ranks = ThreadRanks.ranks(w);
        ExecutorService ex = Executors.newFixedThreadPool(w);
        try {
            List<Future<Map<String, float[]>>> fs = new ArrayList<>();
            for (ThreadRanks r : ranks) {
                Path dir = out.resolve("rank" + r.rank());
                fs.add(ex.submit(() -> train(ac, c, dir, r, 0, pattern)));
            }
            List<Map<String, float[]>> res = new ArrayList<>();
            for (Future<Map<String, float[]>> f : fs) {
                res.add(f.get());
            }
            return res;
        } finally {
            ex.shutdownNow();
        }
    }

    private static double maxDiff(Map<String, float[]> a, Map<String, float[]> b) {
        assertEquals(a.keySet(), b.keySet());
        double d = 0;
        for (String k : a.keySet()) {
            float[] x = a.get(k);
            float[] y = b.get(k);
            for (int i = 0; i < x.length; i++) {
                d = Math.max(d, Math.abs(x[i] - y[i]));
            }
        }
        return d;
    }

    private static void assertSameBits(Map<String, float[]> a, Map<String, float[]> b, String what) {
        assertEquals(a.keySet(), b.keySet());
        a.forEach((k, v) -> assertArrayEquals(v, b.get(k), what + ": " + k));
    }

    @Test
    void twoRanksOfBatchTwoEqualOneProcessOfBatchFour(@TempDir Path dir) throws Exception {
        List<Map<String, float[]>> ranks = trainRanks(2, LORA, cfg(20, 4, 1, 10), dir.resolve("dp"), null);
        assertSameBits(ranks.get(0), ranks.get(1), "rank 0 vs rank 1");
        Map<String, float[]> big = train(LORA, cfg(20, 4, 1, 10), dir.resolve("b4"), SingleProcess.INSTANCE, 0, null);
        Map<String, float[]> accum = train(LORA, cfg(20, 2, 2, 10), dir.resolve("b2a2"), SingleProcess.INSTANCE, 0, null);
        double d = maxDiff(ranks.get(0), big);
        assertTrue(d <= 1e-6, "2 ranks x 2 vs 1 x 4: max |diff| " + d);
        Map<String, float[]> fresh = train(LORA, cfg(1, 4, 1, 0), dir.resolve("fresh"), SingleProcess.INSTANCE, 0, null);
        assertTrue(maxDiff(fresh, big) > 1e-3, "the adapters moved, so the comparison can fail");
        assertSameBits(ranks.get(0), accum, "2 ranks x 2 vs 1 x 2 x accumulation 2");
        // rank 0 wrote, rank 1 did not
        assertTrue(Files.isRegularFile(dir.resolve("dp/rank0").resolve(MetricsLog.FILE)));
        assertTrue(Checkpoint.locate(dir.resolve("dp/rank0")) != null);
        assertFalse(Files.exists(dir.resolve("dp/rank1")), "rank 1 must write nothing");
    }

    @Test
    @SuppressWarnings({"unchecked", "rawtypes"})
    void adaloraRanksAllocateLikeTheSingleProcess(@TempDir Path dir) throws Exception {
        // init_r 6 -> target_r 2; tinit 1, tfinal 3, deltaT 1, total 10: allocations at every step of 2..7
        AdaLoraConfig ada = new AdaLoraConfig(6, 2, 1, 3, 1, 0.85f, 0.85f, 0.5f, 10, 8f, 0f,
                List.of("c_attn", "mlp.c_fc"), null);
        Map<String, boolean[]>[] dp = new Map[2];
        List<Map<String, float[]>> ranks = trainRanks(2, ada, cfg(10, 4, 1, 0), dir.resolve("dp"), dp);
        Map<String, boolean[]>[] one = new Map[1];
        Map<String, float[]> single = train(ada, cfg(10, 4, 1, 0), dir.resolve("one"), SingleProcess.INSTANCE, 0, one);
        assertSameBits(ranks.get(0), ranks.get(1), "AdaLoRA rank 0 vs rank 1");
        for (Map<String, boolean[]> p : dp) {
            assertEquals(one[0].keySet(), p.keySet());
            one[0].forEach((k, v) -> assertArrayEquals(v, p.get(k), "mask of " + k));
        }
        double d = maxDiff(ranks.get(0), single);
        assertTrue(d <= 1e-5, "AdaLoRA 2 ranks vs 1 process: max |diff| " + d);
    }

    @Test
    void loraDropImportanceAndValidationLossAreReducedOverTheRanks() throws Exception {
        try (Backend be = new CpuBackend(); DecoderModel m = TinyGpt2.random(be, 5)) {
            m.attachAdapters(LORA, 17);
            Map<String, Double> single = LoraDropTraining.measureImportance(m, data.train(), 32, 2);
            ThreadRanks[] ranks = ThreadRanks.ranks(2);
            ExecutorService ex = Executors.newFixedThreadPool(2);
            try {
                List<Future<Map<String, Double>>> fs = new ArrayList<>();
                for (ThreadRanks r : ranks) {   // the ranks share the model read-only (eval mode, own meters)
                    fs.add(ex.submit(() -> {
                        try (Backend b2 = new CpuBackend(); DecoderModel mr = TinyGpt2.random(b2, 5)) {
                            mr.attachAdapters(LORA, 17);
                            return LoraDropTraining.measureImportance(mr, data.train(), 32, 2, r);
                        }
                    }));
                }
                for (Future<Map<String, Double>> f : fs) {
                    Map<String, Double> got = f.get();
                    assertEquals(single.keySet(), got.keySet());
                    single.forEach((k, v) -> assertEquals(v, got.get(k), 1e-9 * Math.abs(v), k));
                }
                // validation: 5 batches over 2 ranks (3 + 2)
                EvalResult one = Evaluator.evaluate(m, data.validation().sequential(32, 2), 5);
                List<Future<EvalResult>> es = new ArrayList<>();
                for (ThreadRanks r : ranks) {
                    es.add(ex.submit(() -> {
                        try (Backend b2 = new CpuBackend(); DecoderModel mr = TinyGpt2.random(b2, 5)) {
                            mr.attachAdapters(LORA, 17);
                            return Evaluator.evaluate(mr, data.validation().sequential(32, 2), 5, r);
                        }
                    }));
                }
                for (Future<EvalResult> f : es) {
                    EvalResult got = f.get();
                    assertEquals(one.tokens(), got.tokens());
                    assertEquals(one.loss(), got.loss(), 1e-12 * one.loss());
                }
            } finally {
                ex.shutdownNow();
            }
        }
    }

    @Test
    void aTwoRankCheckpointResumesInOneProcessWithTheGlobalBatchKept(@TempDir Path dir) throws Exception {
        // a constant schedule: the LR of a step does not depend on the run's length, so 10 + 10 steps = 20 steps
        TrainConfig c = new TrainConfig(20, 4, 32, 5e-3f, 2, TrainConfig.Schedule.CONSTANT, 0.1f, 0.01f, 1f, 1, 0, 2,
                10, 9L, 1);
        List<Map<String, float[]>> straight = trainRanks(2, LORA, c, dir.resolve("dp"), null);
        trainRanks(2, LORA, c.withSteps(10), dir.resolve("cut"), null);
        Map<String, float[]> resumed = train(LORA, c, dir.resolve("cut/rank0"), SingleProcess.INSTANCE, 20, null);
        double d = maxDiff(straight.get(0), resumed);
        assertTrue(d <= 1e-6, "2 ranks to step 10, then 1 process to 20, vs 2 ranks to 20: max |diff| " + d);

        try (Backend be = new CpuBackend(); DecoderModel m = TinyGpt2.random(be, 5)) {
            m.attachAdapters(LORA, 17);
            try (Trainer t = new Trainer(m, new AdamWPolicy(), c, data.train(), data.validation(), dir.resolve("x"))) {
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> t.setProcessGroup(ThreadRanks.ranks(3)[0]));
                assertTrue(e.getMessage().contains("batch 4 is the global batch and must split evenly over the 3"
                        + " ranks"), e.getMessage());
            }
        }
    }

    @Test
    void aNanOnOneRankStopsEveryRankAtTheSameStep(@TempDir Path dir) throws Exception {
        TrainConfig c = new TrainConfig(8, 4, 16, 0.05f, 2, TrainConfig.Schedule.COSINE, 0.1f, 0f, 1f, 1, 0, 4, 2,
                11L, 1);
        ThreadRanks[] ranks = ThreadRanks.ranks(2);
        ExecutorService ex = Executors.newFixedThreadPool(2);
        try {
            List<Future<TrainingDivergedException>> fs = new ArrayList<>();
            for (ThreadRanks r : ranks) {
                fs.add(ex.submit(() -> {
                    try (Backend be = new CpuBackend(); BigramModel m = new BigramModel(be, 257, 16, 5);
                         Trainer t = new Trainer(m, new AdamWPolicy(), c, data.train(), data.validation(),
                                 dir.resolve("rank" + r.rank()))) {
                        m.nanAtCall = r.rank() == 1 ? 5 : 0;
                        t.setProcessGroup(r);
                        return assertThrows(TrainingDivergedException.class, t::run, "rank " + r.rank());
                    }
                }));
            }
            for (Future<TrainingDivergedException> f : fs) {
                TrainingDivergedException e = f.get();
                assertEquals(5, e.step(), e.getMessage());
                assertTrue(e.getMessage().contains("averaged over the 2 ranks is NaN"), e.getMessage());
            }
        } finally {
            ex.shutdownNow();
        }
        assertEquals(4, Checkpoint.readState(dir.resolve("rank0").resolve(Checkpoint.DIR)).step());
    }
}
