package ai.lorakit.bench.variants;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.cli.Method;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.BrownCorpus;
import ai.lorakit.models.data.BrownPosInstructions;
import ai.lorakit.models.data.BrownPosSplit;
import ai.lorakit.models.data.InstructionEncoder;
import ai.lorakit.models.data.InstructionExample;
import ai.lorakit.models.data.InstructionSampler;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.eval.GreedyDecoder;
import ai.lorakit.models.eval.TaggingScore;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.LoraDropTraining;
import ai.lorakit.models.train.Evaluator;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.TrainListener;
import ai.lorakit.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.function.IntPredicate;
import java.util.stream.Stream;

/**
 * One run of the instruction table (issue 14, deliverable 3): the Llama-family default ({@code --model
 * default-llama}) fine-tuned on Brown part-of-speech instructions with one method, one learning rate and one seed,
 * configured as {@code lorakit train --model default-llama --method M --lr LR --data pos.jsonl} would configure it
 * ({@link Method.Settings#defaults} with the family's default targets, {@link Method#adapterConfig},
 * {@link Method#policy}; warm-up steps/10, cosine to 10 %, clip 1.0, no weight decay; prompt/completion encoded with
 * the model folder's tokenizer_config.json: BOS + prompt, completion + EOS trained, one example per row of T tokens).
 *
 * <p><b>Data</b> ({@link #prepare}, once per sweep): Brown fiction (categories k-r: none of it was in default-llama's
 * pretraining, which read non-fiction), split BY FILE with split seed {@value #SPLIT_SEED} (10 % test, 10 %
 * validation, {@link BrownPosSplit}); sentences of at most {@link Options#maxTags} tokens whose whole example
 * (BOS + prompt + completion + EOS) fits T+1 tokens, so no row is cut. The validation and test examples are
 * shuffled once with the split seed; the losses use their first {@link Options#evalRows}, generation the first
 * {@link Options#genPrompts} test prompts. Every run of a sweep sees the same rows; the run seed varies the
 * training order and the adapter init.
 *
 * <p><b>Metrics</b> ({@link Result}): mean cross-entropy on the completion tokens (incl. EOS) of the validation
 * rows (the sweep chooses the lr on it) and of the test rows; greedy generation ({@link GreedyDecoder}, one batched
 * forward per generated token, stop at EOS or a newline, at most the prompt's gold completion + 4 tokens) scored by
 * {@link TaggingScore} (exact match, per-tag accuracy).
 *
 * <p>LoRA-drop: as VariantsTable runs it (α 0.1, T 0.9, restart, stage 1 = ⌈α·steps⌉ but >= 10 steps, ranked
 * per module), on instruction rows ({@link LoraDropTraining}'s instruction constructor: stage 1 on α of the training
 * EXAMPLES, importance over their real positions). Its tokens/s and curve are stage 2's; wall time includes both.
 *
 * <pre>
 * java -cp benchmarks.jar ai.lorakit.bench.variants.InstructionRun [--method lora] [--lr 1e-3] [--seed 42]
 *      [--steps 60] [--batch 8] [--backend cpu]
 * </pre>
 */
public final class InstructionRun {

    /** The file split of every run: seeds vary training order and inits, not the data. */
    static final long SPLIT_SEED = 42;
    static final double VAL_FRACTION = 0.1;
    static final double TEST_FRACTION = 0.1;
    /** Tokens a generated completion may run past its gold length (room for stray whitespace). */
    static final int GEN_MARGIN = 4;

    /**
     * Settings shared by every run of a sweep.
     *
     * @param steps      optimizer steps
     * @param batch      rows per step (B)
     * @param seqLen     row length T (examples longer than T+1 tokens are left out of the data)
     * @param maxTags    longest sentence kept, in Brown tokens
     * @param evalEvery  steps between validation-curve points (0: before and after only)
     * @param curveRows  validation rows per curve point (rounded up to whole batches of B)
     * @param evalRows   validation rows and test rows of the final losses
     * @param genPrompts test prompts generated from
     * @param model      an HF model folder, or null for the embedded default-llama
     * @param backend    backend name (BackendRegistry.open)
     * @param work       where run folders go (deleted after each run)
     */
    public record Options(int steps, int batch, int seqLen, int maxTags, int evalEvery, int curveRows, int evalRows,
                          int genPrompts, Path model, String backend, Path work) {

        /**
         * The settings of the table. Measured 2026-12-08 on the shared 2-core machine (load 7-9), warm JVM: a LoRA
         * run takes about 25 s of process CPU (training ~11 s, generation ~11 s wall), VeRA about 44 s; wall time
         * follows the load.
         */
        public static Options defaults(Path work) {
            return new Options(60, 8, 128, 8, 30, 32, 160, 64, null, "cpu", work);
        }

        public Options withSteps(int s) {
            return new Options(s, batch, seqLen, maxTags, evalEvery, curveRows, evalRows, genPrompts, model, backend,
                    work);
        }
    }

    /**
     * The encoded data of a sweep ({@link #prepare}).
     *
     * @param modelDir    the base model folder
     * @param tokenizer   its tokenizer
     * @param eosId       the id that ends a completion
     * @param split       the file split (before the length filter)
     * @param train       training rows [N][T]
     * @param validation  the first evalRows validation rows
     * @param test        the first evalRows test rows
     * @param prompts     the first genPrompts test prompts (BOS + prompt ids)
     * @param gold        their gold completions
     * @param leftOut     examples left out because they do not fit T+1 tokens: {train, validation, test}
     * @param maxTags     longest sentence kept, in Brown tokens
     */
    public record Data(Path modelDir, Tokenizer tokenizer, int eosId, BrownPosSplit split, InstructionWindows train,
                       InstructionWindows validation, InstructionWindows test, List<int[]> prompts, List<String> gold,
                       int[] leftOut, int maxTags) {

        /** "Brown fiction POS instructions, ... train 4,389 examples (100 files), ..." for reports. */
        public String describe() {
            return String.format(Locale.ROOT, "Brown fiction POS instructions, sentences of <= %d tokens fitting %d"
                            + " tokens: train %,d examples (%d files), validation %,d (%d files; %d used), test %,d"
                            + " (%d files; %d used for the loss, %d prompts generated); left out as too long: %d/%d/%d",
                    maxTags, train.inputs()[0].length + 1, train.inputs().length, split.trainFiles().size(),
                    split.validation().size() - leftOut[1], split.validationFiles().size(), validation.inputs().length,
                    split.test().size() - leftOut[2], split.testFiles().size(), test.inputs().length, prompts.size(),
                    leftOut[0], leftOut[1], leftOut[2]);
        }
    }

    /**
     * What one run measured.
     *
     * @param method          the --method name
     * @param lr              peak learning rate
     * @param seed            training-order and adapter-init seed
     * @param valLoss         mean cross-entropy on the completion tokens of the validation rows, after training
     * @param testLoss        the same on the test rows
     * @param exactMatch      share of generated completions equal to the gold (whitespace-normalised)
     * @param tagAccuracy     position-wise tag matches / gold tags of the generated completions
     * @param trainable       trainable elements (each shared tensor once; AdaLoRA at init_r)
     * @param tokensPerS      training tokens per second, real tokens only (the padding of the rows not counted)
     * @param paddedTokensPerS training tokens per second counting every position of the B x T rows
     * @param trainS          seconds of optimizer steps (evaluations excluded)
     * @param generateS       seconds of greedy generation
     * @param peakHeapMiB     peak heap used during the run (sampled every 20 ms)
     * @param peakRssMiB      peak resident set during the run
     * @param wallS           the whole run: model load, training, curve, final losses, generation
     * @param valCurve        {step, validation loss on curveRows rows} (step 0 = before training)
     * @param note            method-specific facts (LoRA-drop's stage 1 and selection), or ""
     */
    public record Result(String method, double lr, long seed, double valLoss, double testLoss,
                         double exactMatch, double tagAccuracy, long trainable, double tokensPerS,
                         double paddedTokensPerS, double trainS, double generateS, double peakHeapMiB,
                         double peakRssMiB, double wallS, List<double[]> valCurve, String note) {

    }

    private InstructionRun() {
    }

    /** Loads and encodes the data of a sweep (see the class comment). */
    public static Data prepare(Options o) throws IOException {
        Path modelDir = BenchSetup.modelDir(o.model() == null ? Path.of("default-llama") : o.model());
        Tokenizer tok = BenchSetup.tokenizer(modelDir);
        InstructionEncoder enc = InstructionEncoder.forTokenizerDir(tok, modelDir);
        int eos = tok.endOfTextId().orElseThrow(() -> new IOException(modelDir + ": the tokenizer has no"
                + " end-of-text id to pad and stop with"));
        BrownPosSplit split = BrownPosSplit.of(BrownPosInstructions.byFile(BrownCorpus.Group.FICTION), o.maxTags(),
                VAL_FRACTION, TEST_FRACTION, SPLIT_SEED);
        int[] leftOut = new int[3];
        List<InstructionExample> train = fitting(split.train(), enc, o.seqLen(), leftOut, 0, null);
        List<String> valGold = new ArrayList<>();
        List<InstructionExample> val = shuffled(fitting(split.validation(), enc, o.seqLen(), leftOut, 1, valGold));
        List<String> testGold = new ArrayList<>();
        List<InstructionExample> testAll = fitting(split.test(), enc, o.seqLen(), leftOut, 2, testGold);
        List<Integer> order = shuffledOrder(testAll.size());
        List<InstructionExample> test = order.stream().map(testAll::get).toList();
        List<int[]> prompts = new ArrayList<>();
        List<String> gold = new ArrayList<>();
        for (int i = 0; i < Math.min(o.genPrompts(), test.size()); i++) {
            InstructionExample e = test.get(i);
            prompts.add(Arrays.copyOf(e.ids(), e.ids().length - e.trainedTokens()));   // BOS + prompt
            gold.add(testGold.get(order.get(i)));
        }
        return new Data(modelDir, tok, eos, split, InstructionWindows.of(train, o.seqLen(), eos),
                InstructionWindows.of(val.subList(0, Math.min(o.evalRows(), val.size())), o.seqLen(), eos),
                InstructionWindows.of(test.subList(0, Math.min(o.evalRows(), test.size())), o.seqLen(), eos),
                List.copyOf(prompts), List.copyOf(gold), leftOut, o.maxTags());
    }

    /** The examples whose encoding fits T+1 tokens, in order; counts the others in leftOut[which]. */
    private static List<InstructionExample> fitting(List<BrownPosInstructions.Example> examples,
                                                    InstructionEncoder enc, int t, int[] leftOut, int which,
                                                    List<String> gold) {
        List<InstructionExample> out = new ArrayList<>();
        for (BrownPosInstructions.Example e : examples) {
            InstructionExample x = enc.encode(e.prompt(), e.completion());
            if (x.ids().length > t + 1) {
                leftOut[which]++;
                continue;
            }
            out.add(x);
            if (gold != null) {
                gold.add(e.completion());
            }
        }
        return out;
    }

    private static List<Integer> shuffledOrder(int n) {
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(SPLIT_SEED));
        return order;
    }

    private static <T> List<T> shuffled(List<T> xs) {
        return shuffledOrder(xs.size()).stream().map(xs::get).toList();
    }

    /** Prepares the data, opens the backend, runs once (for a single run; a sweep calls the other overload). */
    public static Result run(Method method, double lr, long seed, Options o) throws IOException {
        Data d = prepare(o);
        try (Backend be = BackendRegistry.open(o.backend())) {
            return run(method, lr, seed, o, d, be);
        }
    }

    /** One run on prepared data (see the class comment). */
    public static Result run(Method method, double lr, long seed, Options o, Data d, Backend be) throws IOException {
        long t0 = System.nanoTime();
        Path runDir = Files.createDirectories(o.work()).resolve(method.cliName() + "-lr" + lr + "-seed" + seed);
        List<double[]> curve = new ArrayList<>();
        // resources close in reverse: LoRA-drop's shared adapters before the model that reads them
        try (MemorySampler mem = MemorySampler.start(20); DecoderModel gm = DecoderModel.load(d.modelDir(), be);
             DropHolder drop = new DropHolder()) {
            Method.Settings s = Method.Settings.defaults(o.steps(), seed, gm.config().family().defaultTargets());
            AdapterConfig ac = method.adapterConfig(s);
            OptimizerPolicy policy = method.policy(s);
            if (ac == null) {
                gm.setFullFineTune(true);
            } else {
                gm.attachAdapters(ac, seed);
            }
            TrainConfig tc = new TrainConfig(o.steps(), o.batch(), o.seqLen(), (float) lr, Math.min(100, o.steps() / 10),
                    TrainConfig.Schedule.COSINE, 0.1f, 0f, 1f, 1, o.evalEvery(),
                    (o.curveRows() + o.batch() - 1) / o.batch(), 0, seed, 10);
            Trainer.Result res;
            long trainable;
            String note = "";
            if (method == Method.LORA_DROP) {
                LoraDropOptions opts = LoraDropOptions.defaults().withGrouping(LoraDropOptions.Grouping.PER_MODULE);
                int stage1 = LoraDropTraining.defaultStage1Steps(o.steps(), opts);
                drop.ld = new LoraDropTraining(gm, policy, tc, opts, stage1, d.train(), d.validation(), runDir);
                drop.ld.setListener(new TrainListener() {
                    private int beforeTraining;                        // evaluations at step 0: one per stage

                    @Override
                    public void evaluated(int step, EvalResult r) {
                        beforeTraining += step == 0 ? 1 : 0;
                        if (beforeTraining == 2) {                     // stage 2's curve only
                            curve.add(new double[]{step, r.loss()});
                        }
                    }
                });
                LoraDropTraining.Result r = drop.ld.run(false);
                res = r.stage2();
                trainable = r.trainableAfter();
                note = String.format(Locale.ROOT, "stage 1: %d steps on %.0f%% of the training examples (not in"
                        + " tokens/s); %s; trainable %,d -> %,d", stage1, 100 * opts.alpha(),
                        LoraDropTraining.describe(r.selection()).replace("LoRA-drop selection ", "selection "),
                        r.trainableBefore(), r.trainableAfter());
            } else {
                try (Trainer t = new Trainer(gm, policy, tc, d.train(), d.validation(), runDir)) {
                    t.setListener(new TrainListener() {
                        @Override
                        public void evaluated(int step, EvalResult r) {
                            curve.add(new double[]{step, r.loss()});
                        }
                    });
                    res = t.run();
                    trainable = t.trainableParameterCount();
                }
            }
            double trainS = res.tokensPerS() > 0 ? (double) o.steps() * tc.tokensPerStep() / res.tokensPerS() : 0;
            double realTokens = realTokens(d.train(), o.batch(), seed, o.steps());
            EvalResult val = Evaluator.evaluate(gm, d.validation(), 32, 0, SingleProcess.INSTANCE);
            EvalResult test = Evaluator.evaluate(gm, d.test(), 32, 0, SingleProcess.INSTANCE);
            long g0 = System.nanoTime();
            TaggingScore score = generateAndScore(gm, d);
            double genS = (System.nanoTime() - g0) / 1e9;
            return new Result(method.cliName(), lr, seed, val.loss(), test.loss(), score.exactMatch(),
                    score.tagAccuracy(), trainable, trainS > 0 ? realTokens / trainS : 0, res.tokensPerS(), trainS,
                    genS, mem.peakHeapMiB(), mem.peakRssMiB(), (System.nanoTime() - t0) / 1e9, List.copyOf(curve),
                    note);
        } finally {
            deleteTree(runDir);
        }
    }

    /** LoRA-drop's two-stage run, if any, closed with the run's resources. */
    private static final class DropHolder implements AutoCloseable {
        LoraDropTraining ld;

        @Override
        public void close() {
            if (ld != null) {
                ld.close();
            }
        }
    }

    /**
     * Real (non-padding) input tokens of the first {@code steps} batches the Trainer draws: the same
     * {@link InstructionSampler} stream (seed = run seed), each row counted by its real length (up to its last
     * trained target, the EOS; {@link InstructionWindows#realLength}).
     */
    static long realTokens(InstructionWindows rows, int batch, long seed, int steps) {
        InstructionSampler s = new InstructionSampler(rows, batch, seed);
        long n = 0;
        for (int k = 0; k < steps; k++) {
            InstructionSampler.Rows b = s.nextBatch();
            InstructionWindows w = new InstructionWindows(b.inputs(), b.targets(), 0, 0);
            for (int i = 0; i < b.inputs().length; i++) {
                n += w.realLength(i);
            }
        }
        return n;
    }

    /**
     * Greedy completions of the test prompts, scored against the gold ones. Each prompt generates at most its gold
     * completion's length + {@value #GEN_MARGIN} tokens: a longer answer cannot match, and its tags past the gold
     * length do not count.
     */
    static TaggingScore generateAndScore(DecoderModel gm, Data d) {
        Tokenizer tok = d.tokenizer();
        int[] maxNew = d.gold().stream().mapToInt(g -> tok.encode(g).length + GEN_MARGIN).toArray();
        IntPredicate stop = id -> id == d.eosId() || tok.decode(new int[]{id}).contains("\n");
        GreedyDecoder.Generation g = GreedyDecoder.generate(gm, d.prompts(), maxNew, stop);
        List<String> predicted = Arrays.stream(g.completions()).map(tok::decode).toList();
        return TaggingScore.of(predicted, d.gold());
    }

    private static void deleteTree(Path dir) throws IOException {
        if (!Files.exists(dir)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }

    /** One run with the table's settings (flags override them); prints the data and the result. */
    public static void main(String[] args) throws IOException {
        String method = "lora";
        double lr = 1e-3;
        long seed = 42;
        Options o = Options.defaults(Files.createTempDirectory("lorakit-instruction-run"));
        for (int i = 0; i + 1 < args.length; i += 2) {
            switch (args[i]) {
                case "--method" -> method = args[i + 1];
                case "--lr" -> lr = Double.parseDouble(args[i + 1]);
                case "--seed" -> seed = Long.parseLong(args[i + 1]);
                case "--steps" -> o = o.withSteps(Integer.parseInt(args[i + 1]));
                case "--batch" -> o = new Options(o.steps(), Integer.parseInt(args[i + 1]), o.seqLen(), o.maxTags(),
                        o.evalEvery(), o.curveRows(), o.evalRows(), o.genPrompts(), o.model(), o.backend(), o.work());
                case "--backend" -> o = new Options(o.steps(), o.batch(), o.seqLen(), o.maxTags(), o.evalEvery(),
                        o.curveRows(), o.evalRows(), o.genPrompts(), o.model(), args[i + 1], o.work());
                default -> throw new IllegalArgumentException("unknown option " + args[i] + "; known: --method --lr"
                        + " --seed --steps --batch --backend");
            }
        }
        if (args.length % 2 != 0) {
            throw new IllegalArgumentException("usage: --name value ...; '" + args[args.length - 1] + "' has no value");
        }
        long t0 = System.nanoTime();
        Data d = prepare(o);
        System.out.printf(Locale.ROOT, "data in %.1f s: %s%n", (System.nanoTime() - t0) / 1e9, d.describe());
        try (Backend be = BackendRegistry.open(o.backend())) {
            Result r = run(Method.parse(method), lr, seed, o, d, be);
            System.out.println(String.format(Locale.ROOT, "%s lr %.0e seed %d: val loss %.4f, test"
                            + " loss %.4f, exact match %.3f, tag accuracy %.3f, trainable %,d, %.0f real tokens/s (%.0f"
                            + " padded), train %.1f s, generate %.1f s, peak heap %.0f MiB, RSS %.0f MiB, wall %.1f s;"
                            + " curve %s", r.method(), r.lr(), r.seed(), r.valLoss(), r.testLoss(), r.exactMatch(),
                    r.tagAccuracy(), r.trainable(), r.tokensPerS(), r.paddedTokensPerS(), r.trainS(), r.generateS(),
                    r.peakHeapMiB(), r.peakRssMiB(), r.wallS(), r.valCurve().stream().map(p -> String.format(
                            Locale.ROOT, "%.0f:%.3f", p[0], p[1])).toList()) + (r.note().isEmpty() ? ""
                    : "; " + r.note()));
        }
    }
}
