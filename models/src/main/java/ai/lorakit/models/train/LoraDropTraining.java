package ai.lorakit.models.train;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.ImportanceMeter;
import ai.lorakit.adapters.schedule.LoraDrop;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.LoraDropSelection;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.data.SequentialBatches;
import ai.lorakit.models.data.TextDataset;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.TreeMap;
import java.util.function.Consumer;

/**
 * LoRA-drop (Zhou et al., arXiv 2402.07721; VARIANTS.md section 8) as two {@link Trainer} runs on one model whose
 * plain-LoRA adapters are attached:
 * <ol>
 *   <li><b>Stage 1</b> ({@code <out>/stage1/}): LoRA trained on the sample D_s ({@link #sample}: a fraction α of the
 *       training DOCUMENTS (instruction data: EXAMPLES), drawn with the run's seed) for {@code stage1Steps} steps (default
 *       {@link #defaultStage1Steps}: ⌈α·steps⌉, at least 10 and at most steps, so stage 1 costs about α of the
 *       run: the paper trains "a few steps" on α of the data) with the run's learning rate and a schedule scaled
 *       to that length; it validates only before and after (at most 4 batches).</li>
 *   <li><b>Importance</b> ({@link #measureImportance}): every window of D_s (instruction rows: their real positions) forwarded once in
 *       EVAL mode (no dropout) with an {@link ImportanceMeter} attached: I_i = Σ ‖ΔW_i x‖², never forming N x d_out.</li>
 *   <li><b>Selection</b>: {@link LoraDropSelection#select} (threshold T, grouping), reported through the log
 *       consumer and saved as {@code <out>/}{@value LoraDropSelection#FILE}.</li>
 *   <li><b>Apply</b>: {@link LoraDrop#apply} ties the dropped modules to one shared adapter per shape; restart or
 *       continue per {@link LoraDropOptions#stage2()}.</li>
 *   <li><b>Stage 2</b> ({@code <out>/}): a NEW Trainer (so a new optimizer over each shared tensor once, see
 *       {@link Trainer#distinct}) for the full {@code config} on all the training data.</li>
 * </ol>
 * Resume ({@code run(true)}): with a stage-2 checkpoint and the saved selection, the selection is applied again
 * and stage 2 continues from its checkpoint; otherwise stage 1 resumes from {@code <out>/stage1} (if it has a
 * checkpoint) and everything after it runs again.
 *
 * <p>{@link #close} releases the stage-2 trainer and the shared adapters: the model's tied modules cannot run after
 * it, so close this after the last use of the model.
 */
public final class LoraDropTraining implements AutoCloseable {

    /** Stage 1's run folder under the run folder. */
    public static final String STAGE1_DIR = "stage1";
    /** Most validation batches stage 1 evaluates (before and after it). */
    static final int STAGE1_EVAL_BATCHES = 4;

    /** What {@link #run} measured. stage1 is null when stage 2 was resumed from its checkpoint. */
    public record Result(LoraDropSelection selection, Trainer.Result stage1, Trainer.Result stage2, int stage1Steps,
                         long trainableBefore, long trainableAfter) {
    }

    private final LanguageModel model;
    private final OptimizerPolicy policy;
    private final TrainConfig config;
    private final LoraDropOptions options;
    private final int stage1Steps;
    /** Text data, or null for instruction data. */
    private final TextDataset train;
    private final TextDataset validation;
    /** Instruction data ({@link InstructionWindows}), or null for text data. */
    private final InstructionWindows rowsTrain;
    private final InstructionWindows rowsValidation;
    private final Path outDir;
    private TrainListener listener = new TrainListener() {
    };
    private Consumer<String> log = line -> {
    };
    private Map<String, Object> runInfo = Map.of();
    private String baseModelName;
    private LoraDrop drop;
    private Trainer stage2;
    private ProcessGroup group = SingleProcess.INSTANCE;

    /**
     * @param model       the model with plain LoRA adapters attached (fresh, or as the original run attached them
     *                    when resuming)
     * @param config      stage 2's settings (the whole run's steps, batch, LR ...); its seed also seeds the sample
     *                    and the re-initialisation of {@link LoraDropOptions.Stage2#RESTART}
     * @param stage1Steps stage-1 optimizer steps (> 0); {@link #defaultStage1Steps} if unsure
     * @throws IllegalArgumentException no adapters, or adapters that are not plain LoRA
     */
    public LoraDropTraining(LanguageModel model, OptimizerPolicy policy, TrainConfig config, LoraDropOptions options,
                            int stage1Steps, TextDataset train, TextDataset validation, Path outDir) {
        this(model, policy, config, options, stage1Steps, train, validation, null, null, outDir);
    }

    /**
     * On instruction rows (one example per row, loss on completion tokens): stage 1 trains on a sample of α of
     * the training EXAMPLES ({@link #sample(InstructionWindows, LoraDropOptions, long)}) and the importance is
     * measured on their real positions only ({@link #measureImportance(LanguageModel, InstructionWindows, int,
     * ProcessGroup)}); otherwise as the text constructor.
     */
    public LoraDropTraining(LanguageModel model, OptimizerPolicy policy, TrainConfig config, LoraDropOptions options,
                            int stage1Steps, InstructionWindows train, InstructionWindows validation, Path outDir) {
        this(model, policy, config, options, stage1Steps, null, null, train, validation, outDir);
    }

    private LoraDropTraining(LanguageModel model, OptimizerPolicy policy, TrainConfig config, LoraDropOptions options,
                             int stage1Steps, TextDataset train, TextDataset validation, InstructionWindows rowsTrain,
                             InstructionWindows rowsValidation, Path outDir) {
        List<AdaptedLinear> modules = model.adaptedModules();
        if (modules.isEmpty() || modules.stream().anyMatch(m -> !(m.config() instanceof LoraConfig c) || c.useDora())) {
            throw new IllegalArgumentException("LoRA-drop needs plain LoRA adapters attached to the model, got "
                    + (modules.isEmpty() ? "none" : modules.getFirst().config()));
        }
        if (stage1Steps <= 0) {
            throw new IllegalArgumentException("LoRA-drop stage1Steps must be > 0, got " + stage1Steps);
        }
        this.model = model;
        this.policy = policy;
        this.config = config;
        this.options = options;
        this.stage1Steps = stage1Steps;
        this.train = train;
        this.validation = validation;
        this.rowsTrain = rowsTrain;
        this.rowsValidation = rowsValidation;
        this.outDir = outDir;
    }

    /** ⌈α·steps⌉, at least 10, at most steps. */
    public static int defaultStage1Steps(int steps, LoraDropOptions options) {
        int s = (int) Math.ceil(options.alpha() * steps);
        return Math.min(steps, Math.max(10, s));
    }

    /**
     * D_s: round(α·D) of the D training documents (at least one; all when α = 1 or D &lt; 2), chosen by a seeded
     * shuffle ({@link TextDataset#split}, whose held-out part is the sample), so no document is cut.
     */
    public static TextDataset sample(TextDataset train, LoraDropOptions options, long seed) {
        if (options.alpha() >= 1.0 || train.documentCount() < 2) {
            return train;
        }
        return train.split(options.alpha(), seed ^ 0x4C6F5241L).validation();
    }

    /**
     * D_s of instruction data: round(α·N) of the N training rows (at least one; all when α = 1 or N &lt; 2),
     * chosen by a seeded shuffle (the text sample's seed), kept in their order.
     */
    public static InstructionWindows sample(InstructionWindows train, LoraDropOptions options, long seed) {
        int n = train.inputs().length;
        if (options.alpha() >= 1.0 || n < 2) {
            return train;
        }
        int k = Math.max(1, Math.min(n, (int) Math.round(n * options.alpha())));
        List<Integer> order = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            order.add(i);
        }
        Collections.shuffle(order, new Random(seed ^ 0x4C6F5241L));
        int[] keep = order.subList(0, k).stream().mapToInt(Integer::intValue).sorted().toArray();
        int[][] x = new int[k][];
        int[][] y = new int[k][];
        for (int i = 0; i < k; i++) {
            x[i] = train.inputs()[keep[i]];
            y[i] = train.targets()[keep[i]];
        }
        return new InstructionWindows(x, y, 0, 0);
    }

    /** Stage 1's settings: {@code c} with stage1Steps steps, warm-up scaled alike, validation before/after only. */
    public static TrainConfig stage1Config(TrainConfig c, int stage1Steps) {
        int warmup = (int) Math.min(stage1Steps - 1L, (long) c.warmupSteps() * stage1Steps / c.steps());
        int evalBatches = c.evalBatches() == 0 ? STAGE1_EVAL_BATCHES : Math.min(c.evalBatches(), STAGE1_EVAL_BATCHES);
        return new TrainConfig(stage1Steps, c.batchSize(), c.seqLen(), c.lr(), Math.max(0, warmup), c.schedule(),
                c.minLrRatio(), c.weightDecay(), c.gradClip(), c.gradAccum(), 0, evalBatches, c.checkpointEvery(),
                c.seed(), c.logEvery());
    }

    /**
     * I_i of every adapted module over every window of {@code sample} (consecutive windows of T+1 tokens, B per
     * forward), in eval mode; the model is left in eval mode.
     */
    public static Map<String, Double> measureImportance(LanguageModel model, TextDataset sample, int seqLen,
                                                        int batchSize) {
        return measureImportance(model, sample, seqLen, batchSize, SingleProcess.INSTANCE);
    }

    /**
     * Data parallel: rank r forwards the batches i with i mod W = r, and the ranks' sums I_i are added with one
     * all-reduce, so every rank selects the same modules.
     */
    public static Map<String, Double> measureImportance(LanguageModel model, TextDataset sample, int seqLen,
                                                        int batchSize, ProcessGroup group) {
        SequentialBatches batches = sample.sequential(seqLen, batchSize);
        model.setTraining(false);
        Map<String, Double> importance;
        try (ImportanceMeter meter = ImportanceMeter.attach(model.adaptedModules())) {
            for (int i = group.rank(); i < batches.batchCount(); i += group.size()) {
                model.evalLoss(batches.batch(i));
            }
            importance = meter.importance();
        }
        return allReduced(importance, group);
    }

    /**
     * I_i over instruction rows, counting their real positions only ({@link InstructionWindows#realLength}): rows of
     * equal real length L are forwarded together, B at a time, cut to L columns, so no padding position adds to
     * I_i. Data parallel as the text form (rank r takes the batches i with i mod W = r).
     */
    public static Map<String, Double> measureImportance(LanguageModel model, InstructionWindows sample, int batchSize,
                                                        ProcessGroup group) {
        TreeMap<Integer, List<Integer>> byLength = new TreeMap<>();
        for (int b = 0; b < sample.inputs().length; b++) {
            byLength.computeIfAbsent(sample.realLength(b), l -> new ArrayList<>()).add(b);
        }
        List<int[][][]> batches = new ArrayList<>();          // {inputs [b][L], targets [b][L]}
        for (var e : byLength.entrySet()) {
            List<Integer> rows = e.getValue();
            for (int from = 0; from < rows.size(); from += batchSize) {
                List<Integer> part = rows.subList(from, Math.min(rows.size(), from + batchSize));
                int[][] x = new int[part.size()][];
                int[][] y = new int[part.size()][];
                for (int i = 0; i < part.size(); i++) {
                    x[i] = Arrays.copyOf(sample.inputs()[part.get(i)], e.getKey());
                    y[i] = Arrays.copyOf(sample.targets()[part.get(i)], e.getKey());
                }
                batches.add(new int[][][]{x, y});
            }
        }
        model.setTraining(false);
        Map<String, Double> importance;
        try (ImportanceMeter meter = ImportanceMeter.attach(model.adaptedModules())) {
            for (int i = group.rank(); i < batches.size(); i += group.size()) {
                model.evalLoss(batches.get(i)[0], batches.get(i)[1]);
            }
            importance = meter.importance();
        }
        return allReduced(importance, group);
    }

    private static Map<String, Double> allReduced(Map<String, Double> importance, ProcessGroup group) {
        if (!group.distributed()) {
            return importance;
        }
        List<String> names = List.copyOf(importance.keySet());
        double[] v = names.stream().mapToDouble(importance::get).toArray();
        group.allReduceSum(v);
        Map<String, Double> out = new LinkedHashMap<>();
        for (int i = 0; i < v.length; i++) {
            out.put(names.get(i), v[i]);
        }
        return out;
    }

    /** Trains both stages data-parallel over {@code group} ({@link Trainer#setProcessGroup}); rank 0 writes. */
    public void setProcessGroup(ProcessGroup group) {
        this.group = group;
    }

    /** Listener of both stages' trainers. */
    public void setListener(TrainListener l) {
        this.listener = l;
    }

    /** Receives one human-readable line per event (stage starts, the selection); the library never prints. */
    public void setLog(Consumer<String> log) {
        this.log = log;
    }

    /** Stored in both stages' checkpoints (see {@link Trainer#setRunInfo}). */
    public void setRunInfo(Map<String, Object> info) {
        this.runInfo = Map.copyOf(info);
    }

    public void setBaseModelName(String name) {
        this.baseModelName = name;
    }

    /** Runs (or, with {@code resume}, continues) both stages; see the class comment. */
    public Result run(boolean resume) throws IOException {
        if (stage2 != null) {
            throw new IllegalStateException("LoRA-drop run already ran");
        }
        Path selectionFile = outDir.resolve(LoraDropSelection.FILE);
        long before = Trainer.distinct(model.parameters()).stream().filter(p -> p.trainable())
                .mapToLong(p -> p.value().numel()).sum();
        LoraDropSelection selection;
        Trainer.Result r1 = null;
        if (resume && Checkpoint.locate(outDir) != null && Files.isRegularFile(selectionFile)) {
            selection = LoraDropSelection.load(selectionFile);
            log.accept("LoRA-drop: stage 2 resumes from its checkpoint with the saved selection " + selectionFile);
        } else {
            TextDataset sample = train == null ? null : sample(train, options, config.seed());
            InstructionWindows rowsSample = train != null ? null : sample(rowsTrain, options, config.seed());
            TrainConfig c1 = stage1Config(config, stage1Steps);
            log.accept(train != null ? String.format(Locale.ROOT, "LoRA-drop stage 1: %d steps on a sample of %d of %d"
                    + " training documents (alpha %.3g, %d tokens)", stage1Steps, sample.documentCount(),
                    train.documentCount(), options.alpha(), sample.tokenCount())
                    : String.format(Locale.ROOT, "LoRA-drop stage 1: %d steps on a sample of %d of %d training"
                    + " examples (alpha %.3g)", stage1Steps, rowsSample.inputs().length, rowsTrain.inputs().length,
                    options.alpha()));
            Path dir1 = outDir.resolve(STAGE1_DIR);
            try (Trainer t1 = train != null ? new Trainer(model, policy, c1, sample, validation, dir1)
                    : new Trainer(model, policy, c1, rowsSample, rowsValidation, dir1)) {
                t1.setListener(listener);
                t1.setRunInfo(runInfo);
                t1.setBaseModelName(baseModelName);
                t1.setProcessGroup(group);
                if (resume && Checkpoint.locate(dir1) != null) {
                    int at = t1.resume();
                    log.accept("LoRA-drop stage 1 resumed from " + t1.lastCheckpoint() + " at step " + at);
                }
                r1 = t1.run();
            }
            Map<String, Double> importance = train != null
                    ? measureImportance(model, sample, config.seqLen(), config.batchSize(), group)
                    : measureImportance(model, rowsSample, config.batchSize(), group);
            selection = LoraDropSelection.select(importance, options);
            if (group.rank() == 0) {
                Files.createDirectories(outDir);
                selection.save(selectionFile);
            }
            log.accept(describe(selection) + "; saved " + selectionFile);
        }
        drop = LoraDrop.apply(selection, model.adaptedModules(), config.seed());
        stage2 = train != null ? new Trainer(model, policy, config, train, validation, outDir)
                : new Trainer(model, policy, config, rowsTrain, rowsValidation, outDir);
        long after = stage2.trainableParameterCount();
        log.accept(String.format(Locale.ROOT, "LoRA-drop stage 2: %d steps on all %d training %s (%s);"
                + " trainable parameters %,d -> %,d (%.1f%%)", config.steps(), train != null ? train.documentCount()
                : rowsTrain.inputs().length, train != null ? "documents" : "examples",
                options.stage2().name().toLowerCase(Locale.ROOT), before, after, 100.0 * after / before));
        stage2.setListener(listener);
        stage2.setRunInfo(runInfo);
        stage2.setBaseModelName(baseModelName);
        stage2.setProcessGroup(group);
        if (resume && Checkpoint.locate(outDir) != null) {
            int at = stage2.resume();
            log.accept("LoRA-drop stage 2 resumed from " + stage2.lastCheckpoint() + " at step " + at);
        }
        Trainer.Result r2 = stage2.run();
        return new Result(selection, r1, r2, stage1Steps, before, after);
    }

    /** "kept 3 of 4 blocks (...), cumulative importance 0.93 >= T 0.9; 4 modules tied to 2 shared adapters". */
    public static String describe(LoraDropSelection s) {
        StringBuilder sb = new StringBuilder("LoRA-drop selection (T ").append(s.options().threshold()).append(", ")
                .append(s.options().grouping().name().toLowerCase(Locale.ROOT).replace('_', ' ')).append("):");
        long kept = s.groups().stream().filter(LoraDropSelection.Group::kept).count();
        for (LoraDropSelection.Group g : s.groups()) {
            sb.append(String.format(Locale.ROOT, " %s %s %.3f;", g.kept() ? "keep" : "drop", g.name(), g.share()));
        }
        sb.append(String.format(Locale.ROOT, " kept %d of %d units (%d of %d modules), cumulative importance %.3f",
                kept, s.groups().size(), s.keptModules().size(),
                s.keptModules().size() + s.droppedModules().size(), s.keptShare()));
        return sb.toString();
    }

    /** The stage-2 trainer (after {@link #run}). */
    public Trainer stage2() {
        return stage2;
    }

    /** The applied selection's tying (after {@link #run}). */
    public LoraDrop drop() {
        return drop;
    }

    /**
     * The trained adapter as a plain PEFT LoRA ({@link LoraDrop#export}: shared tensors written once per module)
     * plus the selection file next to it.
     */
    public void saveAdapter(Path dir) throws IOException {
        if (stage2 == null || drop == null) {
            throw new IllegalStateException("LoRA-drop: nothing trained yet; call run() first");
        }
        List<AdaptedLinear> modules = model.adaptedModules();
        LoraDrop.export(dir, (LoraConfig) modules.getFirst().config(), modules, drop.selection(), baseModelName);
    }

    /** The PEFT file the export writes (for messages). */
    public static String adapterFiles() {
        return PeftAdapterIO.CONFIG_FILE + " + " + PeftAdapterIO.WEIGHTS_FILE + " + " + LoraDropSelection.FILE;
    }

    /** Closes the stage-2 trainer, then the shared adapters (the tied modules must not run afterwards). */
    @Override
    public void close() {
        try {
            if (stage2 != null) {
                stage2.close();
            }
        } finally {
            if (drop != null) {
                drop.close();
            }
        }
    }
}
