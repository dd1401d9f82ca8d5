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
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Family;
import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.Evaluator;
import ai.lorakit.models.train.LoraDropTraining;
import ai.lorakit.models.train.StepMetrics;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.TrainListener;
import ai.lorakit.models.train.Trainer;
import ai.lorakit.models.train.TrainingDivergedException;

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
 * The variants table (issues 4 and 14): fine-tunes the embedded base model (or --model) on Brown fiction with every
 * method at matched settings and seeds, in this JVM, through the Trainer API exactly as {@code lorakit train}
 * configures each method ({@link Method.Settings#defaults}: r 8, alpha 16, targets c_attn,c_proj,c_fc, no dropout;
 * AdaLoRA init_r 12 -> target_r 8, tinit steps/10, tfinal steps/5, deltaT 10; Delta-LoRA λ 2, K = steps/4; LoRA-drop
 * α 0.1, T 0.9, restart, stage 1 = ⌈α·steps⌉ but >= 10 steps, ranked PER MODULE: the CLI's default is per block,
 * but the default model's least important block holds more than 1 − T of the importance, so nothing would be
 * dropped, and the paper ranks LoRA modules individually).
 *
 * <p>Learning rates are swept (issue 14): every method runs at every lr of its {@link #GRID} (a 1-3 log ladder
 * around its CLI default before the sweep) and every seed; the table reports, per method, the lr with the best MEAN
 * validation loss and that lr's TEST loss. Train, validation and test are disjoint by document
 * ({@link BenchSetup#brownFictionSplits}, split seed {@value #SPLIT_SEED} for every run, so every seed sees the same
 * documents); the seed draws the training windows and the adapter inits. After the sweep, AdaLoRA's schedule
 * defaults are checked at its chosen lr ({@link #adaloraSchedules}). Runs are ordered seed, grid position, method,
 * so the methods' throughput is measured side by side in this JVM. A short discarded LoRA run first warms up the
 * JIT, so the first method is not penalised. Shared by every run: steps, B, T, warm-up steps/10, cosine to 10 %,
 * clip 1.0, no weight decay, the evaluation sets: every --eval-every steps the first --eval-batches validation
 * batches (the curve), after training the first --final-eval-batches of validation and of test (the table).
 *
 * <p>Writes {@code <out>/variants-brown.json} after every run (so a crash keeps what ran; {@code --resume true}
 * skips the runs already in it), then {@code variants-brown.md} (the sweep, the table, the command, machine, date
 * and the comparison with the papers, {@link VariantsReport}) and {@code variants-brown.png} (validation-loss curves
 * at the chosen lrs, {@link LossPlot}).
 *
 * <pre>
 * java --add-modules jdk.incubator.vector -cp benchmarks.jar ai.lorakit.bench.variants.VariantsTable \
 *      [--task all|brown|brownpos-llama] [--steps 150] [--batch 8] [--seq-len 128] [--seeds 2] [--methods full,lora,...]
 *      [--lrs 1e-3,3e-3 (instead of the grid)] [--adalora-schedules true] [--eval-every 25] [--eval-batches 8]
 *      [--final-eval-batches 32] [--model DIR] [--backend cpu] [--out benchmarks/results] [--resume false]
 * </pre>
 * {@code --report-only true} (with the same settings) re-renders the Markdown and the PNG from the JSON without
 * training again. {@code --task brownpos-llama} is the second table ({@link InstructionTask}: default-llama on Brown
 * POS instructions, its own steps and evaluation sizes, the same seeds, methods, grids and report); {@code --task all}
 * (the default) runs both. benchmarks/variants-sweep.sh is the documented command.
 */
public final class VariantsTable {

    /** The document split of every run (the CLI's default --seed): seeds vary windows and inits, not the data. */
    static final long SPLIT_SEED = 42;

    static final List<String> ALL = List.of("full", "lora", "lora-plus", "lora-fa", "dora", "vera", "adalora",
            "delta-lora", "lora-drop");

    /**
     * The sweep grid per method: four points of the 1-3 log ladder from one below to two above its CLI default before
     * the sweep (1e-3; VeRA 1e-2; full 3e-4); AdaLoRA from that default up to 1e-1 because issue 14 measured it
     * still improving at 3e-2; LoRA-FA one point further (3e-2) because the first sweep chose its top point 1e-2. Fixed here (not derived from {@link Method#defaultLr}) so that the sweep that chose
     * the defaults stays reproducible after they changed.
     */
    static final Map<String, List<Double>> GRID = Map.of(
            "full", List.of(1e-4, 3e-4, 1e-3, 3e-3),
            "lora", List.of(3e-4, 1e-3, 3e-3, 1e-2),
            "lora-plus", List.of(3e-4, 1e-3, 3e-3, 1e-2),
            "lora-fa", List.of(3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
            "dora", List.of(3e-4, 1e-3, 3e-3, 1e-2),
            "vera", List.of(3e-3, 1e-2, 3e-2, 1e-1),
            "adalora", List.of(1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
            "delta-lora", List.of(3e-4, 1e-3, 3e-3, 1e-2),
            "lora-drop", List.of(3e-4, 1e-3, 3e-3, 1e-2));

    /**
     * The instruction task's grid: {@link #GRID} plus one point above for the methods whose first sweep on that task
     * chose the top point of GRID (full, LoRA, LoRA-FA, DoRA, VeRA, LoRA-drop), added with --resume true.
     */
    static final Map<String, List<Double>> INSTRUCTION_GRID = Map.of(
            "full", List.of(1e-4, 3e-4, 1e-3, 3e-3, 1e-2),
            "lora", List.of(3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
            "lora-plus", GRID.get("lora-plus"),
            "lora-fa", List.of(3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1),
            "dora", List.of(3e-4, 1e-3, 3e-3, 1e-2, 3e-2),
            "vera", List.of(3e-3, 1e-2, 3e-2, 1e-1, 3e-1),
            "adalora", GRID.get("adalora"),
            "delta-lora", GRID.get("delta-lora"),
            "lora-drop", List.of(3e-4, 1e-3, 3e-3, 1e-2, 3e-2));

    /** Command-line settings; {@code lrs} null = each method's {@link #GRID} ({@link #INSTRUCTION_GRID}). */
    record Options(String task, int steps, int batch, int seqLen, List<Long> seeds, List<String> methods,
                   List<Double> lrs, boolean adaloraSchedules, int evalEvery, int evalBatches, int finalEvalBatches,
                   Path model, String backend, Path out, Path work, boolean reportOnly, boolean resume) {

        /** The lrs this run sweeps for {@code method}. */
        List<Double> grid(String method) {
            return lrs != null ? lrs : ("brownpos-llama".equals(task) ? INSTRUCTION_GRID : GRID).get(method);
        }

        Options withWarmUp() {
            return new Options(task, Math.min(20, steps), batch, seqLen, seeds, List.of("lora"), List.of(1e-3), false,
                    0, 1, 1, model, backend, out, work.resolve("jit-warm-up"), false, false);
        }
    }

    /**
     * AdaLoRA schedules checked besides the default (tinit steps/10, tfinal steps/5, deltaT 10), as {tinit, tfinal,
     * deltaT}: PEFT's defaults (prune from step 0, every step, to the end), a later and longer schedule, and rarer
     * allocations.
     */
    static List<int[]> adaloraSchedules(int steps) {
        return List.of(new int[]{0, 0, 1}, new int[]{steps / 5, steps / 3, 10},
                new int[]{steps / 10, steps / 5, 25});
    }

    static String scheduleName(int[] s) {
        return String.format(Locale.ROOT, "tinit %d, tfinal %d, deltaT %d", s[0], s[1], s[2]);
    }

    /** One planned run; {@code schedule} null = the method's default settings. */
    record Job(Method method, double lr, long seed, int[] schedule) {
        String key() {
            return RunRecord.key(method.cliName(), lr, seed, schedule == null ? "" : scheduleName(schedule));
        }
    }

    private VariantsTable() {
    }

    /**
     * One table of the sweep: what it trains and evaluates, where it writes ({@code <out>/<stem>.{json,md,png}}) and
     * the task-specific text of its report.
     */
    interface Task extends AutoCloseable {
        /** The file stem, e.g. "variants-brown". */
        String stem();

        /** The settings the report shows (steps, batch, seq-len, seeds: this task's own). */
        Options reportOptions();

        /** The JSON's config block; a resume requires the saved one to match. */
        Map<String, Object> config();

        /** The methods this task can run (of the options' methods). */
        List<String> methods();

        /** One run; a divergence is thrown as TrainingDivergedException. */
        RunRecord run(Job job) throws IOException;

        /** A short discarded run that warms up the JIT, so the first method is not penalised. */
        void warmUp() throws IOException;

        VariantsReport.Text text();

        /** What the PNG's title says was fitted, e.g. "Brown fiction". */
        String plotData();

        /** Whether the AdaLoRA schedule check runs after the lr sweep. */
        boolean checksSchedules();

        @Override
        void close();
    }

    /** The text task: the embedded GPT-2 default (or --model) on Brown fiction, {@link #runOne}. */
    static final class BrownTask implements Task {
        private final Options o;
        private final Path modelDir;
        private final String modelText;
        private BenchSetup.Splits split;
        private Backend be;

        BrownTask(Options o) throws IOException {
            this.o = o;
            this.modelDir = BenchSetup.modelDir(o.model());
            this.modelText = BenchSetup.describe(o.model(), modelDir);
        }

        /** Loads the data and opens the backend (not needed to re-render a report). */
        BrownTask open() throws IOException {
            split = BenchSetup.brownFictionSplits(BenchSetup.tokenizer(modelDir), SPLIT_SEED);
            be = BackendRegistry.open(o.backend());
            return this;
        }

        @Override
        public String stem() {
            return "variants-brown";
        }

        @Override
        public Options reportOptions() {
            return o;
        }

        @Override
        public Map<String, Object> config() {
            return VariantsReport.config(o, split);
        }

        @Override
        public List<String> methods() {
            return o.methods();
        }

        @Override
        public RunRecord run(Job job) throws IOException {
            return runOne(job, o, modelDir, split, be);
        }

        @Override
        public void warmUp() throws IOException {
            runOne(new Job(Method.LORA, 1e-3, o.seeds().getFirst(), null), o.withWarmUp(), modelDir, split, be);
        }

        @Override
        public VariantsReport.Text text() {
            return VariantsReport.brownText(o, modelText);
        }

        @Override
        public String plotData() {
            return "Brown fiction";
        }

        @Override
        public boolean checksSchedules() {
            return o.adaloraSchedules();
        }

        @Override
        public void close() {
            if (be != null) {
                be.close();
            }
        }
    }

    public static void main(String[] args) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Options o = parse(args);
        Files.createDirectories(o.out());
        String command = "java -cp benchmarks.jar ai.lorakit.bench.variants.VariantsTable " + String.join(" ", args);
        for (String name : o.task().equals("all") ? TASKS.subList(1, TASKS.size()) : List.of(o.task())) {
            try (Task task = openTask(name, o)) {
                Path json = o.out().resolve(task.stem() + ".json");
                if (o.reportOnly()) {                  // re-render md + png from the JSON of an earlier run
                    VariantsReport.Saved saved = VariantsReport.readJson(json);
                    render(task, saved.command(), saved.machine(), saved.started(), saved.runs(), saved.totalS());
                    System.out.println("re-rendered " + o.out() + "/" + task.stem() + ".{md,png} from its JSON");
                } else {
                    sweep(task, o, json, command);
                }
            }
        }
    }

    static Task openTask(String name, Options o) throws IOException {
        return switch (name) {
            case "brown" -> o.reportOnly() ? new BrownTask(o) : new BrownTask(o).open();
            case "brownpos-llama" -> o.reportOnly() ? new InstructionTask(o) : new InstructionTask(o).open();
            default -> throw new IllegalArgumentException("--task: unknown task '" + name + "'; choose one of " + TASKS);
        };
    }

    /** Runs (or, with --resume true, completes) one task's sweep, writing its JSON after every run, then its report. */
    static void sweep(Task task, Options o, Path json, String command) throws IOException {
        Map<String, Object> machine = Machine.describe();
        String started = Instant.now().toString();
        double before = 0;                             // wall time of earlier sessions of a resumed sweep
        List<RunRecord> runs = new ArrayList<>();
        Map<String, Object> config = task.config();
        if (o.resume() && Files.exists(json)) {
            VariantsReport.Saved saved = VariantsReport.readJson(json);
            VariantsReport.checkResumable(json, saved.config(), config);
            runs.addAll(saved.runs());
            before = saved.totalS();
            started = saved.started();
            machine = saved.machine();
            System.out.printf(Locale.ROOT, "resuming %s: %d runs done, %.0f s so far%n", json, runs.size(), before);
        }
        Options ro = task.reportOptions();
        Options jo = new Options(ro.task(), ro.steps(), ro.batch(), ro.seqLen(), ro.seeds(), task.methods(), ro.lrs(),
                ro.adaloraSchedules(), ro.evalEvery(), ro.evalBatches(), ro.finalEvalBatches(), ro.model(),
                ro.backend(), ro.out(), ro.work(), false, ro.resume());
        long t0 = System.nanoTime();
        boolean warmed = false;
        for (int pass = 0; pass <= jo.seeds().size(); pass++) {    // one pass per seed, then AdaLoRA's schedules
            List<Job> jobs = pass < jo.seeds().size() ? seedJobs(jo, jo.seeds().get(pass), runs)
                    : task.checksSchedules() ? scheduleJobs(jo, runs) : List.of();
            for (Job job : jobs) {
                if (runs.stream().anyMatch(r -> r.key().equals(job.key()))) {
                    continue;                          // resumed: ran in an earlier session
                }
                if (!warmed) {
                    task.warmUp();
                    warmed = true;
                    if (before > 0) {
                        machine.put("sessions", ((Number) machine.getOrDefault("sessions", 1)).intValue() + 1);
                    }
                }
                RunRecord r;
                try {
                    r = task.run(job);
                } catch (TrainingDivergedException e) {  // recorded, never chosen (NaN loss)
                    r = diverged(job, ro, e);
                }
                runs.add(r);
                System.out.printf(Locale.ROOT, "%-10s lr %.0e seed %d%s: val %.4f test %.4f%s, trainable %,d,"
                                + " %.0f tokens/s, peak heap %.0f MiB, %.0f s  %s%n", r.method(), r.lr(), r.seed(),
                        r.schedule().isEmpty() ? "" : " (" + r.schedule() + ")", r.valLoss(), r.testLoss(),
                        r.exactMatch() == null ? "" : String.format(Locale.ROOT, " exact %.3f tags %.3f",
                                r.exactMatch(), r.tagAccuracy()),
                        r.trainable(), r.tokensPerS(), r.peakHeapMiB(), r.wallS(), r.notes());
                VariantsReport.writeJson(json, command, machine, started, config, runs,
                        before + (System.nanoTime() - t0) / 1e9);
            }
        }
        double total = before + (System.nanoTime() - t0) / 1e9;
        machine.put("load_average_end", Machine.loadAverage());
        VariantsReport.writeJson(json, command, machine, started, config, runs, total);
        render(task, command, machine, started, runs, total);
        System.out.printf(Locale.ROOT, "wrote %s/%s.{md,json,png}; %.0f s in all%n", o.out(), task.stem(), total);
    }

    private static void render(Task task, String command, Map<String, Object> machine, String started,
                               List<RunRecord> runs, double total) throws IOException {
        Options o = task.reportOptions();
        VariantsReport.writeMarkdown(o.out().resolve(task.stem() + ".md"), command, machine, started, o, runs, total,
                task.text());
        LossPlot.write(o.out().resolve(task.stem() + ".png"), VariantsReport.chosenRuns(runs), o, task.plotData());
    }

    /**
     * The lr sweep, ordered seed, grid position, method (methods side by side in time); all seeds' jobs with
     * {@code runs} as done so far ({@link #seedJobs}).
     */
    static List<Job> sweepJobs(Options o, List<RunRecord> runs) {
        List<Job> jobs = new ArrayList<>();
        for (long seed : o.seeds()) {
            jobs.addAll(seedJobs(o, seed, runs));
        }
        return jobs;
    }

    /**
     * One seed's share of the sweep. The first seed walks each method's grid in order; a later seed walks it best
     * first (by the mean validation loss of the method's earlier runs at each lr; lrs not run yet last, in grid
     * order), so an interrupted sweep has every seed at the lrs that matter.
     */
    static List<Job> seedJobs(Options o, long seed, List<RunRecord> runs) {
        Map<String, java.util.TreeMap<Double, List<RunRecord>>> done = VariantsReport.grid(runs.stream()
                .filter(r -> r.seed() != seed).toList());
        Map<String, List<Double>> order = new LinkedHashMap<>();
        for (String m : o.methods()) {
            List<Double> lrs = new ArrayList<>(o.grid(m));
            if (seed != o.seeds().getFirst() && done.containsKey(m)) {
                java.util.TreeMap<Double, List<RunRecord>> byLr = done.get(m);
                lrs.sort(java.util.Comparator.comparingDouble(lr -> byLr.containsKey(lr)
                        ? byLr.get(lr).stream().mapToDouble(RunRecord::valLoss).average().orElse(Double.NaN)
                        : Double.MAX_VALUE));                  // NaN (diverged) sorts after every finite loss
            }
            order.put(m, lrs);
        }
        List<Job> jobs = new ArrayList<>();
        int longest = order.values().stream().mapToInt(List::size).max().orElse(0);
        for (int i = 0; i < longest; i++) {
            for (String m : o.methods()) {
                if (i < order.get(m).size()) {
                    jobs.add(new Job(Method.parse(m), order.get(m).get(i), seed, null));
                }
            }
        }
        return jobs;
    }

    /** AdaLoRA's schedule check at its chosen lr (empty when AdaLoRA is not swept or the check is off). */
    static List<Job> scheduleJobs(Options o, List<RunRecord> runs) {
        Double lr = VariantsReport.chosenLr(runs).get("adalora");
        if (!o.adaloraSchedules() || lr == null) {
            return List.of();
        }
        List<Job> jobs = new ArrayList<>();
        for (long seed : o.seeds()) {
            for (int[] s : adaloraSchedules(o.steps())) {
                jobs.add(new Job(Method.ADALORA, lr, seed, s));
            }
        }
        return jobs;
    }

    /** One method, lr and seed; see the class comment for what is shared. */
    static RunRecord runOne(Job job, Options o, Path modelDir, BenchSetup.Splits split, Backend be)
            throws IOException {
        Method m = job.method();
        long seed = job.seed();
        Method.Settings s = withSchedule(Method.Settings.defaults(o.steps(), seed,
                Gpt2Family.INSTANCE.defaultTargets()), job.schedule());
        AdapterConfig ac = m.adapterConfig(s);
        OptimizerPolicy policy = m.policy(s);
        TrainConfig tc = new TrainConfig(o.steps(), o.batch(), o.seqLen(), (float) job.lr(), Math.min(100, o.steps() / 10),
                TrainConfig.Schedule.COSINE, 0.1f, 0f, 1f, 1, o.evalEvery(), o.evalBatches(), 0, seed, 10);
        String schedule = job.schedule() == null ? "" : scheduleName(job.schedule());
        Path runDir = o.work().resolve(m.cliName() + "-lr" + String.format(Locale.ROOT, "%.0e", job.lr()) + "-seed"
                + seed + (job.schedule() == null ? "" : "-" + String.join("-", Arrays.stream(job.schedule())
                .mapToObj(Integer::toString).toList())));
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
                    return record(m, seed, tc, trainable, base, saved, gm, split, o, res, t0, mem, stage1, val, train,
                            notes, schedule);
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
                return record(m, seed, tc, trainable, base, saved, gm, split, o, res, t0, mem, stage1, val, train,
                        notes, schedule);
            }
        }
    }

    /** Evaluates the trained model on the validation and test splits and records the run. */
    private static RunRecord record(Method m, long seed, TrainConfig tc, long trainable, long base, long saved,
                                    DecoderModel gm, BenchSetup.Splits split, Options o, Trainer.Result res, long t0,
                                    MemorySampler mem, int stage1, List<double[]> val, List<double[]> train,
                                    String notes, String schedule) {
        EvalResult fin = Evaluator.evaluate(gm, split.validation().sequential(o.seqLen(), o.batch()),
                o.finalEvalBatches());
        EvalResult test = Evaluator.evaluate(gm, split.test().sequential(o.seqLen(), o.batch()), o.finalEvalBatches());
        double wall = (System.nanoTime() - t0) / 1e9;
        long total = m == Method.FULL ? base : base + trainable;
        return new RunRecord(m.cliName(), seed, tc.lr(), tc.steps(), trainable, total, saved, fin.loss(),
                fin.perplexity(), fin.tokens(), res.tokensPerS() / tc.tokensPerStep(), res.tokensPerS(), wall,
                mem.peakHeapMiB(), mem.peakRssMiB(), stage1, List.copyOf(val), List.copyOf(train), notes, test.loss(),
                test.tokens(), schedule, null, null);
    }

    /** The record of a run that diverged: NaN losses, the reason in the notes. */
    static RunRecord diverged(Job job, Options o, TrainingDivergedException e) {
        return new RunRecord(job.method().cliName(), job.seed(), job.lr(), o.steps(), 0, 0, 0, Double.NaN, Double.NaN,
                0, 0, 0, 0, 0, 0, 0, List.of(), List.of(), "diverged: " + e.getMessage(), Double.NaN, 0,
                job.schedule() == null ? "" : scheduleName(job.schedule()), null, null);
    }

    /** {@code s} with AdaLoRA's {tinit, tfinal, deltaT} replaced ({@code schedule} null: unchanged). */
    static Method.Settings withSchedule(Method.Settings s, int[] schedule) {
        if (schedule == null) {
            return s;
        }
        return new Method.Settings(s.r(), s.alpha(), s.dropout(), s.rslora(), s.targets(), s.loraPlusRatio(),
                s.veraR(), s.adaloraInitR(), s.adaloraTargetR(), schedule[0], schedule[1], schedule[2],
                s.adaloraOrthReg(), s.steps(), s.seed(), s.deltaLambda(), s.deltaStart());
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
        for (String k : kv.keySet()) {
            if (!KNOWN.contains(k)) {
                throw new IllegalArgumentException("unknown option --" + k + "; known: " + KNOWN);
            }
        }
        String task = kv.getOrDefault("task", "all");
        if (!TASKS.contains(task)) {
            throw new IllegalArgumentException("--task: unknown task '" + task + "'; choose one of " + TASKS);
        }
        List<Long> seeds = new ArrayList<>();
        int nSeeds = Integer.parseInt(kv.getOrDefault("seeds", "2"));
        for (int i = 0; i < nSeeds; i++) {
            seeds.add(42L + i);
        }
        List<String> methods = kv.containsKey("methods") ? List.of(kv.get("methods").split(",")) : ALL;
        methods.forEach(Method::parse);
        List<Double> lrs = null;
        if (kv.containsKey("lrs")) {
            lrs = Arrays.stream(kv.get("lrs").split(",")).map(Double::parseDouble).toList();
            if (lrs.stream().anyMatch(x -> !(x > 0) || x.isInfinite())) {
                throw new IllegalArgumentException("--lrs: learning rates must be positive and finite, got " + lrs);
            }
        }
        Path work = kv.containsKey("work") ? Path.of(kv.get("work")) : Files.createTempDirectory("lorakit-variants");
        return new Options(task, Integer.parseInt(kv.getOrDefault("steps", "150")),
                Integer.parseInt(kv.getOrDefault("batch", "8")), Integer.parseInt(kv.getOrDefault("seq-len", "128")),
                seeds, methods, lrs, Boolean.parseBoolean(kv.getOrDefault("adalora-schedules", "true")),
                Integer.parseInt(kv.getOrDefault("eval-every", "25")),
                Integer.parseInt(kv.getOrDefault("eval-batches", "8")),
                Integer.parseInt(kv.getOrDefault("final-eval-batches", "32")),
                kv.containsKey("model") ? Path.of(kv.get("model")) : null, kv.getOrDefault("backend", "cpu"),
                Path.of(kv.getOrDefault("out", "benchmarks/results")), work,
                Boolean.parseBoolean(kv.getOrDefault("report-only", "false")),
                Boolean.parseBoolean(kv.getOrDefault("resume", "false")));
    }

    /** --task values: "all" runs the others in this order. */
    static final List<String> TASKS = List.of("all", "brown", "brownpos-llama");

    private static final java.util.Set<String> KNOWN = java.util.Set.of("task", "steps", "batch", "seq-len", "seeds",
            "methods", "lrs", "adalora-schedules", "eval-every", "eval-batches", "final-eval-batches", "model",
            "backend", "out", "work", "report-only", "resume");
}
