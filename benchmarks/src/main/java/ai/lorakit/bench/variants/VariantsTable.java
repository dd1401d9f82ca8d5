package ai.lorakit.bench.variants;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorInfo;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.RankAllocator;
import ai.lorakit.cli.Method;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Family;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.Evaluator;
import ai.lorakit.models.train.LoraDropTraining;
import ai.lorakit.models.train.StepMetrics;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.TrainListener;
import ai.lorakit.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The variants table (issue 4): fine-tunes the embedded base model (or --model) on Brown fiction with every method
 * at matched settings and seeds, in this JVM, through the Trainer API exactly as {@code lorakit train} configures
 * each method ({@link Method.Settings#defaults}: r 8, alpha 16, targets c_attn,c_proj,c_fc, no dropout; per-method
 * LR = the CLI's --lr default: 1e-3, VeRA 1e-2, full 3e-4; AdaLoRA init_r 12 -> target_r 8, tinit steps/10,
 * tfinal steps/5, deltaT 10; Delta-LoRA λ 2, K = steps/4; LoRA-drop α 0.1, T 0.9, restart, stage 1 =
 * ⌈α·steps⌉ but >= 10 steps, ranked PER MODULE: the CLI's default is per block, but the default model's least
 * important block holds more than 1 − T of the importance, so nothing would be dropped, and the paper ranks LoRA
 * modules individually). A short
 * discarded LoRA run first warms up the JIT, so the first method is not penalised. Shared by every run: steps, B, T, warm-up steps/10, cosine to 10 %, clip 1.0, no
 * weight decay, the document split (10 % validation, split seed {@value #SPLIT_SEED} for every run, so every seed is
 * evaluated on the same documents), the training windows (sampler seed = run seed) and the evaluation sets: every --eval-every steps the first --eval-batches validation batches (the
 * curve), after training the first --final-eval-batches (the table).
 *
 * <p>Writes {@code <out>/variants-brown.json} (after every run, so a crash keeps what ran), then
 * {@code variants-brown.md} (the table, the command, machine, date and the comparison with the papers,
 * {@link VariantsReport}) and {@code variants-brown.png} (validation-loss curves, {@link LossPlot}).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp benchmarks.jar ai.lorakit.bench.variants.VariantsTable \
 *      [--steps 150] [--batch 8] [--seq-len 128] [--seeds 1] [--methods full,lora,...] [--eval-every 25]
 *      [--eval-batches 8] [--final-eval-batches 32] [--model DIR] [--backend cpu] [--out benchmarks/results]
 * </pre>
 * {@code --report-only true} (with the same settings) re-renders the Markdown and the PNG from the JSON without
 * training again.
 */
public final class VariantsTable {

    /** The document split of every run (the CLI's default --seed): seeds vary windows and inits, not the data. */
    static final long SPLIT_SEED = 42;

    static final List<String> ALL = List.of("full", "lora", "lora-plus", "lora-fa", "dora", "vera", "adalora",
            "delta-lora", "lora-drop");

    /** Command-line settings. */
    record Options(int steps, int batch, int seqLen, List<Long> seeds, List<String> methods, int evalEvery,
                   int evalBatches, int finalEvalBatches, Path model, String backend, Path out, Path work,
                   boolean reportOnly) {
    }

    private VariantsTable() {
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Options o = parse(args);
        Files.createDirectories(o.out());
        if (o.reportOnly()) {                          // re-render md + png from the JSON of an earlier run
            VariantsReport.Saved saved = VariantsReport.readJson(o.out().resolve("variants-brown.json"));
            VariantsReport.writeMarkdown(o.out().resolve("variants-brown.md"), saved.command(), saved.machine(),
                    saved.started(), o, saved.runs(), saved.totalS(), BenchSetup.describe(o.model(),
                            BenchSetup.modelDir(o.model())));
            LossPlot.write(o.out().resolve("variants-brown.png"), saved.runs(), o);
            System.out.println("re-rendered " + o.out() + "/variants-brown.{md,png} from variants-brown.json");
            return;
        }
        Path modelDir = BenchSetup.modelDir(o.model());
        Tokenizer tok = BenchSetup.tokenizer(modelDir);
        String command = "java -cp benchmarks.jar ai.lorakit.bench.variants.VariantsTable " + String.join(" ", args);
        Map<String, Object> machine = Machine.describe();
        String started = Instant.now().toString();
        long t0 = System.nanoTime();
        List<RunRecord> runs = new ArrayList<>();
        try (Backend be = BackendRegistry.open(o.backend())) {
            Options warm = new Options(Math.min(20, o.steps()), o.batch(), o.seqLen(), o.seeds(), List.of("lora"), 0, 1, 1,
                    o.model(), o.backend(), o.out(), o.work().resolve("jit-warm-up"), false);
            TextDataset.Split split = BenchSetup.brownFiction(tok, SPLIT_SEED);
            runOne(Method.LORA, o.seeds().getFirst(), warm, modelDir, split, be);
            for (long seed : o.seeds()) {
                for (String name : o.methods()) {
                    RunRecord r = runOne(Method.parse(name), seed, o, modelDir, split, be);
                    runs.add(r);
                    System.out.printf(Locale.ROOT, "%-10s seed %d: val loss %.4f (ppl %.3f), trainable %,d, %.2f steps/s,"
                                    + " %.0f tokens/s, peak heap %.0f MiB, %.0f s  %s%n", r.method(), seed, r.valLoss(),
                            r.valPpl(), r.trainable(), r.stepsPerS(), r.tokensPerS(), r.peakHeapMiB(), r.wallS(), r.notes());
                    VariantsReport.writeJson(o.out().resolve("variants-brown.json"), command, machine, started, o,
                            split, runs, (System.nanoTime() - t0) / 1e9);
                }
            }
        }
        double total = (System.nanoTime() - t0) / 1e9;
        VariantsReport.writeJson(o.out().resolve("variants-brown.json"), command, machine, started, o,
                BenchSetup.brownFiction(tok, SPLIT_SEED), runs, total);
        machine.put("load_average_end", Machine.loadAverage());
        VariantsReport.writeMarkdown(o.out().resolve("variants-brown.md"), command, machine, started, o, runs, total,
                BenchSetup.describe(o.model(), modelDir));
        LossPlot.write(o.out().resolve("variants-brown.png"), runs, o);
        System.out.printf(Locale.ROOT, "wrote %s/variants-brown.{md,json,png} in %.0f s%n", o.out(), total);
    }

    /** One method, one seed; see the class comment for what is shared. */
    static RunRecord runOne(Method m, long seed, Options o, Path modelDir, TextDataset.Split split, Backend be)
            throws IOException {
        Method.Settings s = Method.Settings.defaults(o.steps(), seed, Gpt2Family.INSTANCE.defaultTargets());
        AdapterConfig ac = m.adapterConfig(s);
        OptimizerPolicy policy = m.policy(s);
        TrainConfig tc = new TrainConfig(o.steps(), o.batch(), o.seqLen(), m.defaultLr(), Math.min(100, o.steps() / 10),
                TrainConfig.Schedule.COSINE, 0.1f, 0f, 1f, 1, o.evalEvery(), o.evalBatches(), 0, seed, 10);
        Path runDir = o.work().resolve(m.cliName() + "-seed" + seed);
        List<double[]> val = new ArrayList<>();
        List<double[]> train = new ArrayList<>();
        TrainListener curves = new TrainListener() {
            @Override
            public void stepDone(StepMetrics sm, boolean logged) {
                train.add(new double[]{sm.step(), sm.loss()});
            }

            @Override
            public void evaluated(int step, EvalResult r) {
                val.add(new double[]{step, r.loss()});
            }
        };
        long t0 = System.nanoTime();
        try (MemorySampler mem = MemorySampler.start(20); DecoderModel gm = DecoderModel.load(modelDir, be)) {
            long base = gm.parameters().stream().mapToLong(p -> p.value().numel()).sum();
            if (ac == null) {
                gm.setFullFineTune(true);
            } else {
                gm.attachAdapters(ac, seed);
            }
            Trainer.Result res;
            long trainable;
            long saved;
            String notes;
            int stage1 = 0;
            if (m == Method.LORA_DROP) {
                LoraDropOptions opts = LoraDropOptions.defaults().withGrouping(LoraDropOptions.Grouping.PER_MODULE);
                stage1 = LoraDropTraining.defaultStage1Steps(o.steps(), opts);
                try (LoraDropTraining ld = new LoraDropTraining(gm, policy, tc, opts, stage1, split.train(),
                        split.validation(), runDir)) {
                    List<double[]> stage1Val = new ArrayList<>();
                    ld.setListener(new TrainListener() {
                        private int beforeTraining;                    // evaluations at step 0: one per stage
                        private boolean inStage2;

                        @Override
                        public void stepDone(StepMetrics sm, boolean logged) {
                            if (inStage2) {
                                curves.stepDone(sm, logged);
                            }
                        }

                        @Override
                        public void evaluated(int step, EvalResult r) {
                            if (step == 0) {
                                inStage2 = ++beforeTraining == 2;
                            }
                            (inStage2 ? val : stage1Val).add(new double[]{step, r.loss()});
                        }
                    });
                    LoraDropTraining.Result r = ld.run(false);
                    res = r.stage2();
                    trainable = r.trainableAfter();
                    ld.saveAdapter(runDir.resolve("adapter"));
                    saved = savedElements(runDir.resolve("adapter"));
                    notes = String.format(Locale.ROOT, "stage 1: %d steps on %.0f%% of the documents; %s; trainable"
                                    + " %,d -> %,d (%.0f%% of LoRA)", stage1, 100 * opts.alpha(),
                            LoraDropTraining.describe(r.selection()).replace("LoRA-drop selection ", "selection "),
                            r.trainableBefore(), r.trainableAfter(), 100.0 * r.trainableAfter() / r.trainableBefore());
                    EvalResult fin = Evaluator.evaluate(gm, split.validation().sequential(o.seqLen(), o.batch()),
                            o.finalEvalBatches());
                    return record(m, seed, tc, trainable, base, saved, fin, res, t0, mem, stage1, val, train, notes);
                }
            }
            try (Trainer t = new Trainer(gm, policy, tc, split.train(), split.validation(), runDir)) {
                t.setListener(curves);
                res = t.run();
                trainable = t.trainableParameterCount();
                if (ac == null) {
                    saved = base;
                    notes = "all " + String.format(Locale.ROOT, "%,d", base) + " parameters trained";
                } else {
                    t.saveAdapter(runDir.resolve("adapter"));
                    saved = savedElements(runDir.resolve("adapter"));
                    notes = switch (t.hook()) {
                        case RankAllocator ra -> String.format(Locale.ROOT, "budget %d -> %d triplets (tinit %d, tfinal"
                                        + " %d, deltaT %d); final ranks %s; largest |Λ| after training %.3f",
                                ra.initBudget(), ra.targetBudget(), s.adaloraTinit(), s.adaloraTfinal(),
                                s.adaloraDeltaT(), ranks(ra), maxAbs(gm, Parameter.Role.LORA_E));
                        case DeltaLoraUpdater d -> String.format(Locale.ROOT, "W += %.0f*s*(B'A' - BA) after step K = %d;"
                                + " exported as a rank-%d LoRA on the original W", d.policy().lambda(),
                                d.policy().startStep(), 2 * s.r());
                        default -> "";
                    };
                }
                EvalResult fin = Evaluator.evaluate(gm, split.validation().sequential(o.seqLen(), o.batch()),
                        o.finalEvalBatches());
                return record(m, seed, tc, trainable, base, saved, fin, res, t0, mem, stage1, val, train, notes);
            }
        }
    }

    private static RunRecord record(Method m, long seed, TrainConfig tc, long trainable, long base, long saved,
                                    EvalResult fin, Trainer.Result res, long t0, MemorySampler mem, int stage1,
                                    List<double[]> val, List<double[]> train, String notes) {
        double wall = (System.nanoTime() - t0) / 1e9;
        long total = m == Method.FULL ? base : base + trainable;
        return new RunRecord(m.cliName(), seed, tc.lr(), tc.steps(), trainable, total, saved, fin.loss(),
                fin.perplexity(), fin.tokens(), res.tokensPerS() / tc.tokensPerStep(), res.tokensPerS(), wall,
                mem.peakHeapMiB(), mem.peakRssMiB(), stage1, List.copyOf(val), List.copyOf(train), notes);
    }

    /** The largest |value| over the adapter parameters of one role (e.g. AdaLoRA's Λ). */
    private static double maxAbs(DecoderModel gm, Parameter.Role role) {
        double m = 0;
        for (var a : gm.adaptedModules()) {
            Parameter p = a.parameter(role);
            if (p != null) {
                for (float v : p.value().backend().download(p.value())) {
                    m = Math.max(m, Math.abs(v));
                }
            }
        }
        return m;
    }

    /** "12,9,8,..." kept triplets per layer, in model order. */
    private static String ranks(RankAllocator ra) {
        Map<String, boolean[]> p = ra.rankPattern();
        if (p == null) {
            return "(no allocation)";
        }
        List<String> out = new ArrayList<>();
        int sum = 0;
        for (boolean[] b : p.values()) {
            int k = 0;
            for (boolean x : b) {
                k += x ? 1 : 0;
            }
            sum += k;
            out.add(Integer.toString(k));
        }
        return String.join(",", out) + " (sum " + sum + (ra.finalized() ? ", final" : "") + ")";
    }

    /** Elements of every tensor in an adapter folder's adapter_model.safetensors. */
    static long savedElements(Path adapterDir) throws IOException {
        long n = 0;
        try (SafetensorsFile sf = SafetensorsFile.open(adapterDir.resolve("adapter_model.safetensors"))) {
            for (TensorInfo ti : sf.tensors().values()) {
                n += Arrays.stream(ti.shape()).reduce(1, (a, b) -> a * b);
            }
        }
        return n;
    }

    static Options parse(String[] args) throws IOException {
        Map<String, String> kv = new LinkedHashMap<>();
        for (int i = 0; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("usage: --name value ...; bad argument '" + args[i] + "'");
            }
            kv.put(args[i].substring(2), args[++i]);
        }
        List<Long> seeds = new ArrayList<>();
        int nSeeds = Integer.parseInt(kv.getOrDefault("seeds", "1"));
        for (int i = 0; i < nSeeds; i++) {
            seeds.add(42L + i);
        }
        List<String> methods = kv.containsKey("methods") ? List.of(kv.get("methods").split(",")) : ALL;
        methods.forEach(Method::parse);
        Path work = kv.containsKey("work") ? Path.of(kv.get("work")) : Files.createTempDirectory("lorakit-variants");
        Options o = new Options(Integer.parseInt(kv.getOrDefault("steps", "150")),
                Integer.parseInt(kv.getOrDefault("batch", "8")), Integer.parseInt(kv.getOrDefault("seq-len", "128")),
                seeds, methods, Integer.parseInt(kv.getOrDefault("eval-every", "25")),
                Integer.parseInt(kv.getOrDefault("eval-batches", "8")),
                Integer.parseInt(kv.getOrDefault("final-eval-batches", "32")),
                kv.containsKey("model") ? Path.of(kv.get("model")) : null, kv.getOrDefault("backend", "cpu"),
                Path.of(kv.getOrDefault("out", "benchmarks/results")), work,
                Boolean.parseBoolean(kv.getOrDefault("report-only", "false")));
        for (String k : kv.keySet()) {
            if (!KNOWN.contains(k)) {
                throw new IllegalArgumentException("unknown option --" + k + "; known: " + KNOWN);
            }
        }
        return o;
    }

    private static final java.util.Set<String> KNOWN = java.util.Set.of("steps", "batch", "seq-len", "seeds",
            "methods", "eval-every", "eval-batches", "final-eval-batches", "model", "backend", "out", "work",
            "report-only");
}
