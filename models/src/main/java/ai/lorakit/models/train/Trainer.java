package ai.lorakit.models.train;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.Safetensors;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.LoraDrop;
import ai.lorakit.adapters.schedule.RankAllocator;
import ai.lorakit.adapters.schedule.TrainingHook;
import ai.lorakit.adapters.schedule.TrainingHooks;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.data.InstructionSampler;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.data.SequentialBatches;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.data.WindowSampler;

import java.io.IOException;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;
import java.util.TreeSet;
import java.util.function.Consumer;

/**
 * The training loop (ARCHITECTURE.md layer 4). One optimizer step s (0-based):
 * <ol>
 *   <li>{@code gradAccum} batches [B][T+1] from the {@link WindowSampler}, all uploaded first
 *       ({@code model.uploadStep}), then {@code model.trainUploaded} with gradScale 1/gradAccum each (gradients
 *       accumulate; each micro-batch's loss sum stays on the device; the step's loss is the mean);</li>
 *   <li>{@code hook.beforeOptimizerStep(s, stats, G + 1)}: regulariser gradients added (AdaLoRA's orthogonality
 *       term), its value reg left on the device; the step's reported loss is the mean + reg;</li>
 *   <li>global gradient norm over the trainable parameters, on the device ({@link Gradients#squaredNormTo});</li>
 *   <li>{@code optimizer.setLearningRate(schedule.at(s))}, {@code optimizer.stepClipped}: one multi-tensor AdamW
 *       that clips the gradients to {@code gradClip} by that norm and skips the update on a NaN/Inf loss or norm;</li>
 *   <li>{@code hook.afterOptimizerStep(s)} (AdaLoRA's importance update, Delta-LoRA's W update), then
 *       {@code zeroGrad()};</li>
 *   <li>the step's results read to the host, then {@code hook.afterStep(s)} (AdaLoRA's masking to the budget,
 *       which reads the device, so it runs between steps).</li>
 * </ol>
 * The hook is ALWAYS built, in the constructor, by {@link TrainingHooks#forTraining}(adapted modules, optimizer)
 * and called on every step, so no method can run without its schedule (PEFT's most reported AdaLoRA bug is a
 * forgotten {@code update_and_allocate}); for LoRA, LoRA+, LoRA-FA, DoRA, VeRA and full fine-tuning it is
 * {@link TrainingHook#NONE}. Parameters are taken once each by identity ({@link #distinct}): LoRA-drop's tied
 * modules share Parameter objects, which must be optimised, norm-measured and clipped once.
 *
 * <p>Before training (fresh runs), every {@code evalEvery} steps and after the last step it measures the validation
 * loss ({@link Evaluator}); it writes {@code metrics.jsonl} ({@link MetricsLog}) and checkpoints atomically
 * ({@link Checkpoint}) every {@code checkpointEvery} steps and at the end.
 *
 * <p>Exact resume: a checkpoint holds every piece of state the next step reads (trainable weights and adapter
 * tensors, AdamW moments and step counts, the hook's state ({@link TrainingHook#state()}: AdaLoRA's EMAs and
 * masks, Delta-LoRA's snapshots and the changed W), the sampler's (seed, windows drawn), every adapted layer's
 * dropout counter, the step, which fixes the LR), so {@link #resume} followed by {@link #run} produces, on a
 * deterministic backend, bit for bit the losses and weights of an uninterrupted run. The model must be built the
 * same way (base weights, adapter config and attach seed: each layer's dropout stream follows from that seed, and
 * resume refuses a layer whose stream differs; a LoRA-drop model must have its selection applied again, see
 * {@link LoraDropTraining}).
 *
 * <p>Data parallel ({@link #setProcessGroup}): B is the GLOBAL batch; each of the W ranks trains on its share
 * ({@link WindowSampler#nextShard}), and {@link GradientReducer} sums the gradients and the loss once per step
 * between step 1 and step 2, so every rank computes the same update. Rank 0 alone writes metrics.jsonl and the
 * checkpoints; every rank reads the checkpoint on {@link #resume}. The sampler state counts global windows, so a
 * checkpoint resumes under another W with the same window stream as long as B splits evenly over the new W.
 *
 * <p>Instruction data ({@link InstructionWindows}, one example per row, targets IGNORE outside the completion):
 * the rows come shuffled from an {@link InstructionSampler}, and each step's loss is the mean over the step's
 * counted targets: with micro-batches k holding c_k counted targets (over every rank), micro-batch k gets
 * gradScale = c_k / Σc and the step's loss is Σ loss_k·c_k / Σc. Validation weights each batch by its counted
 * targets ({@link Evaluator}).
 *
 * <p>A NaN or infinite loss or gradient norm stops the run with {@link TrainingDivergedException}, read with the
 * step's results; the optimizer's kernel has then skipped the update (no parameter was updated); no checkpoint is
 * written after the last good one.
 */
public final class Trainer implements AutoCloseable {

    /** What a finished {@link #run} measured. */
    public record Result(int step, EvalResult before, EvalResult after, double lastLoss, double elapsedS,
                         double tokensPerS) {
    }

    private final LanguageModel model;
    private final TrainConfig cfg;
    private final Path outDir;
    private final Optimizer optimizer;
    /** Built once by TrainingHooks.forTraining; NONE when the method has no schedule. */
    private final TrainingHook hook;
    /** Every parameter of the model once (by identity), model order. */
    private final List<Parameter> params;
    /** Text data: the window sampler and the validation windows; null for instruction data. */
    private final WindowSampler sampler;
    private final SequentialBatches validation;
    /** Instruction data: the shuffled training rows and the validation rows; null for text data. */
    private final InstructionSampler rows;
    private final InstructionWindows rowsValidation;
    private final LrSchedule schedule;
    private TrainListener listener = new TrainListener() {
    };
    private Map<String, Object> runInfo = Map.of();
    private String baseModelName;
    private Checkpoint.Body extraFiles;
    private int step;
    private float lastLr;
    private double lastNorm;
    private double elapsedBefore;
    private boolean resumed;
    private Path lastCheckpoint;
    private int lastCheckpointStep;
    private GradientReducer reducer = new GradientReducer(SingleProcess.INSTANCE);
    /** The step's results on the device ({@link #stats(int)}), made at the first step. */
    private Tensor stats;
    /** Runs the kernels of a step (between its upload and its results' read); {@link #setStepRunner}. */
    private Consumer<Runnable> stepRunner = Runnable::run;

    /**
     * @param model      the model, adapters already attached (or full fine-tuning enabled)
     * @param policy     how the trainable parameters are updated (AdamW, LoRA+, LoRA-FA, Delta-LoRA)
     * @param validation the held-out part ({@link TextDataset#split})
     * @param outDir     where metrics.jsonl and checkpoint/ go
     * @throws IllegalArgumentException T above the model's n_positions, no trainable parameter, a dataset too
     *                                  short for one window, a method the hooks refuse (Delta-LoRA with adapter
     *                                  dropout or on non-LoRA modules, AdaLoRA mixed with other adapters)
     */
    public Trainer(LanguageModel model, OptimizerPolicy policy, TrainConfig config, TextDataset train,
                   TextDataset validation, Path outDir) {
        this(model, policy, config, train.sampler(config.seqLen(), config.batchSize(), config.seed()),
                validation.sequential(config.seqLen(), config.batchSize()), null, null, outDir);
    }

    /**
     * Trains on instruction rows (their window T must be config.seqLen()): the loss is taken on the trained
     * (completion / assistant) targets only.
     *
     * @throws IllegalArgumentException as the text constructor; rows of another T than seqLen, no training rows
     *                                  or no validation rows
     */
    public Trainer(LanguageModel model, OptimizerPolicy policy, TrainConfig config, InstructionWindows train,
                   InstructionWindows validation, Path outDir) {
        this(model, policy, config, null, null, new InstructionSampler(checkRows("training", train, config),
                config.batchSize(), config.seed()), checkRows("validation", validation, config), outDir);
    }

    private static InstructionWindows checkRows(String what, InstructionWindows w, TrainConfig config) {
        if (w.inputs().length == 0) {
            throw new IllegalArgumentException("the " + what + " instruction data has no row with a trained"
                    + " (completion) token inside the window");
        }
        if (w.inputs()[0].length != config.seqLen()) {
            throw new IllegalArgumentException("the " + what + " instruction rows have T=" + w.inputs()[0].length
                    + " but seqLen is " + config.seqLen());
        }
        return w;
    }

    private Trainer(LanguageModel model, OptimizerPolicy policy, TrainConfig config, WindowSampler sampler,
                    SequentialBatches validation, InstructionSampler rows, InstructionWindows rowsValidation,
                    Path outDir) {
        this.model = model;
        this.cfg = config;
        this.outDir = outDir;
        this.sampler = sampler;
        this.validation = validation;
        this.rows = rows;
        this.rowsValidation = rowsValidation;
        if (config.seqLen() > model.maxSeqLen()) {
            throw new IllegalArgumentException("seqLen " + config.seqLen() + " exceeds the model's n_positions "
                    + model.maxSeqLen());
        }
        this.params = distinct(model.parameters());
        if (params.stream().noneMatch(Parameter::trainable)) {
            throw new IllegalArgumentException("nothing to train: the model has no trainable parameter (attach"
                    + " adapters or enable full fine-tuning)");
        }
        this.schedule = config.lrSchedule();
        OptimizerConfig oc = new OptimizerConfig(config.lr(), 0.9f, 0.999f, 1e-8f, config.weightDecay());
        this.optimizer = Optimizer.create(policy, oc, params,
                policy instanceof LoraFaPolicy ? Optimizer.pairsOf(model.adaptedModules()) : List.of());
        try {
            this.hook = TrainingHooks.forTraining(model.adaptedModules(), optimizer);
        } catch (RuntimeException e) {
            optimizer.close();
            throw e;
        }
    }

    /**
     * Each parameter once, by identity, in first-occurrence order ({@link LoraDrop#distinctParameters} for a whole
     * model): a tied A or B appears in several modules' parameter lists.
     */
    public static List<Parameter> distinct(List<Parameter> all) {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> out = new ArrayList<>(all.size());
        for (Parameter p : all) {
            if (seen.add(p)) {
                out.add(p);
            }
        }
        return List.copyOf(out);
    }

    public void setListener(TrainListener l) {
        this.listener = l;
    }

    /**
     * How each step's kernels run: the runner gets the part of the step between the upload of its batch and the read
     * of its results (the forward and backward of every micro-batch, the gradient norm, the optimizer, the method's
     * hook) and must run it exactly once, e.g. by capturing it with {@code CudaBackend.capture} and replaying the
     * graph. The default runs it directly. A captured step replays the learning rate and AdamW step counts it was
     * captured with, so capturing each step anew is what gives a run's exact numbers.
     */
    public void setStepRunner(Consumer<Runnable> runner) {
        this.stepRunner = Objects.requireNonNull(runner, "runner");
    }

    /** Stored in every checkpoint's trainer.json ("run"); the CLI keeps its arguments there. */
    public void setRunInfo(Map<String, Object> info) {
        this.runInfo = Map.copyOf(info);
    }

    /** base_model_name_or_path of the PEFT adapter in checkpoints (may be null). */
    public void setBaseModelName(String name) {
        this.baseModelName = name;
    }

    /** Extra files written into each checkpoint before trainer.json (tests inject failures here). */
    public void setExtraCheckpointFiles(Checkpoint.Body body) {
        this.extraFiles = body;
    }

    /**
     * Trains data-parallel over {@code group} (default: a single process); call before {@link #resume} and
     * {@link #run}.
     *
     * @throws IllegalArgumentException the batch does not split evenly over the group's ranks
     */
    public void setProcessGroup(ProcessGroup group) {
        if (cfg.batchSize() % group.size() != 0) {
            throw new IllegalArgumentException("batch " + cfg.batchSize() + " is the global batch and must split"
                    + " evenly over the " + group.size() + " ranks; use a multiple of " + group.size());
        }
        reducer.close();
        this.reducer = GradientReducer.of(group, model.backend());   // NCCL on a CUDA backend, else MPI on the host
    }

    /** The gradient all-reduce of this trainer (its time is the benchmark's communication time). */
    public GradientReducer reducer() {
        return reducer;
    }

    /** True on the rank that writes files (rank 0; the only rank of a single process). */
    private boolean writes() {
        return reducer.group().rank() == 0;
    }

    public Optimizer optimizer() {
        return optimizer;
    }

    /**
     * The training hook called around every step: a {@link RankAllocator} (AdaLoRA), a {@link DeltaLoraUpdater}
     * (Delta-LoRA policy) or {@link TrainingHook#NONE}.
     */
    public TrainingHook hook() {
        return hook;
    }

    /** Every parameter of the model once (by identity), as the optimizer was given them. */
    public List<Parameter> parameters() {
        return params;
    }

    /** Number of trainable elements (each shared tensor counted once). */
    public long trainableParameterCount() {
        long n = 0;
        for (Parameter p : params) {
            n += p.trainable() ? p.value().numel() : 0;
        }
        return n;
    }

    public TrainConfig config() {
        return cfg;
    }

    /** Completed optimizer steps. */
    public int step() {
        return step;
    }

    /** The surviving checkpoint folder, or null before the first one. */
    public Path lastCheckpoint() {
        return lastCheckpoint;
    }

    /**
     * The validation loss now (eval mode; training mode is restored by the next step); data parallel, each rank
     * evaluates its share of the batches and the sums are reduced.
     */
    public EvalResult evaluate() {
        return rows != null
                ? Evaluator.evaluate(model, rowsValidation, cfg.batchSize(), cfg.evalBatches(), reducer.group())
                : Evaluator.evaluate(model, validation, cfg.evalBatches(), reducer.group());
    }

    /** The "run" map of the checkpoint in {@code outDir}, or null when there is none. */
    public static Map<String, Object> readRunInfo(Path outDir) throws IOException {
        Path dir = Checkpoint.locate(outDir);
        return dir == null ? null : Checkpoint.readState(dir).run();
    }

    // ---------------------------------------------------------------- the loop

    /** Trains from the current step to {@code config.steps()}. */
    public Result run() throws IOException {
        long t0 = System.nanoTime();
        EvalResult before = null;
        EvalResult last = null;
        double lastLoss = Double.NaN;
        long runTokens = 0;
        long runTrainNanos = 0;
        try (MetricsLog log = !writes() ? null : resumed ? MetricsLog.resume(outDir, step) : MetricsLog.create(outDir)) {
            if (step == 0) {
                before = evaluate();
                last = before;
                listener.evaluated(0, before);
                if (log != null) {
                    log.write(new StepMetrics(0, null, null, null, null, before.loss(), before.perplexity(), elapsedBefore));
                }
            }
            listener.started(step, cfg.steps(), cfg.tokensPerStep(), elapsedBefore);
            long logTokens = 0;
            long logNanos = 0;
            while (step < cfg.steps()) {
                long ts = System.nanoTime();
                double loss = trainOneStep();
                long dt = System.nanoTime() - ts;
                lastLoss = loss;
                logTokens += cfg.tokensPerStep();
                logNanos += dt;
                runTokens += cfg.tokensPerStep();
                runTrainNanos += dt;
                boolean evalNow = step == cfg.steps() || (cfg.evalEvery() > 0 && step % cfg.evalEvery() == 0);
                boolean logNow = evalNow || step % cfg.logEvery() == 0;
                StepMetrics m = new StepMetrics(step, loss, (double) lastLr, lastNorm, logTokens / (logNanos / 1e9),
                        null, null, elapsedBefore + (System.nanoTime() - t0) / 1e9);
                if (evalNow) {
                    last = evaluate();
                    listener.evaluated(step, last);
                    m = m.withValidation(last);
                }
                if (logNow) {
                    if (log != null) {
                        log.write(m);
                    }
                    logTokens = 0;
                    logNanos = 0;
                }
                listener.stepDone(m, logNow);
                if (step == cfg.steps() || (cfg.checkpointEvery() > 0 && step % cfg.checkpointEvery() == 0)) {
                    if (writes()) {
                        saveCheckpoint(elapsedBefore + (System.nanoTime() - t0) / 1e9);
                    } else {
                        lastCheckpointStep = step;   // rank 0 wrote it
                    }
                }
            }
        }
        double elapsed = elapsedBefore + (System.nanoTime() - t0) / 1e9;
        return new Result(step, before, last, lastLoss, elapsed, runTrainNanos == 0 ? 0 : runTokens / (runTrainNanos / 1e9));
    }

    /**
     * Steps 1-5 of the class comment; returns the step's mean loss plus the regulariser's value. On a device
     * backend nothing crosses to the host between the first micro-batch's upload ({@link TrainListener#stepUploaded})
     * and the one read of the step's results ({@link TrainListener#stepResultsRead}): the micro-batches' loss sums
     * (slots 0..G-1 of {@link #stats}) and the squared gradient norm (slot G) stay on the device, and the optimizer
     * clips by that norm and skips the whole update when a loss or the norm is NaN or infinite
     * ({@link Optimizer#stepClipped}); the divergence checks then run on the values read. Every micro-batch is
     * uploaded before the first kernel ({@link LanguageModel#trainStepsTo}). The hook's regulariser writes its value
     * to slot G + 1; its work that reads the device runs after the read ({@link TrainingHook#afterStep}). Not yet
     * inside the window: data parallel (the loss is read before the all-reduce).
     */
    private double trainOneStep() {
        int s = step;
        model.setTraining(true);
        ProcessGroup g = reducer.group();
        int accum = cfg.gradAccum();
        Tensor st = stats(accum);
        double[] weights = new double[accum];            // the step's loss = Σ_k weights[k] · (loss sum of k)
        float[] scales = rows != null ? uploadRows(weights) : uploadWindows(weights);
        listener.stepUploaded(s + 1);
        double[] reduced = new double[1];           // data parallel: the all-reduced loss
        lastLr = schedule.at(s);
        optimizer.setLearningRate(lastLr);
        stepRunner.accept(() -> {                          // the step's kernels: no host transfer on one process
            model.trainUploaded(scales, st);
            if (g.distributed()) {                       // the all-reduce sums the loss with the gradients
                reduced[0] = reducer.reduce(params, stepLoss(model.backend().download(st), weights));
            }
            hook.beforeOptimizerStep(s, st, accum + 1);      // before clipping: its gradients are clipped too
            Gradients.squaredNormTo(params, st, accum);
            optimizer.stepClipped(st, accum, (float) cfg.gradClip());   // no update if a loss or the norm is not finite
            hook.afterOptimizerStep(s);                      // gradients still hold step s's values
            optimizer.zeroGrad();
        });
        listener.stepResultsRead(s + 1);
        double loss = reduced[0];
        float[] r = model.backend().download(st);            // the step's one read
        double reg = hook.hasRegulariser() ? DeviceSums.at(r, accum + 1) : 0.0;
        if (!g.distributed()) {
            for (int k = 0; k < accum; k++) {
                checkMicroLoss(s, k, DeviceSums.at(r, k));   // a loss sum is finite iff its mean is
            }
            loss = stepLoss(r, weights);
        }
        if (!Double.isFinite(loss)) {
            throw diverged(s + 1, "the loss averaged over the " + g.size() + " ranks is " + loss);
        }
        if (!Double.isFinite(reg)) {
            throw diverged(s + 1, "the regulariser (" + hook + ") is " + reg + " (loss " + loss + ")");
        }
        double norm = Math.sqrt(DeviceSums.at(r, accum));
        if (!Double.isFinite(norm)) {
            throw diverged(s + 1, "the gradient norm is " + norm + " (loss " + loss + ")");
        }
        lastNorm = norm;
        hook.afterStep(s);                                   // between steps: may read the device
        step = s + 1;
        return loss + reg;
    }

    /** Σ_k weights[k] · slot k: the step's loss from the micro-batches' loss sums. */
    private static double stepLoss(float[] stats, double[] weights) {
        double loss = 0;
        for (int k = 0; k < weights.length; k++) {
            loss += DeviceSums.at(stats, k) * weights[k];
        }
        return loss;
    }

    /**
     * The step's device results: slots 0..G-1 the micro-batches' loss sums, slot G the squared gradient norm, slot
     * G + 1 the hook's regulariser value.
     */
    private Tensor stats(int accum) {
        if (stats == null) {
            stats = model.backend().zeros(DType.F32, 2 * (accum + 2)).named("trainer.stats");
        }
        return stats;
    }

    /**
     * Step 1 on text windows, uploaded: gradAccum micro-batches of this rank's share, each loss sum weighted
     * 1/(G·counted); returns their gradScales.
     */
    private float[] uploadWindows(double[] weights) {
        float scale = reducer.gradScale(cfg.gradAccum());
        ProcessGroup g = reducer.group();
        List<int[][]> inputs = new ArrayList<>(), targets = new ArrayList<>();
        float[] scales = new float[cfg.gradAccum()];
        for (int k = 0; k < cfg.gradAccum(); k++) {
            int[][] w = sampler.nextShard(g.rank(), g.size());
            int[][] in = new int[w.length][];
            int[][] tg = new int[w.length][];
            for (int b = 0; b < w.length; b++) {                 // inputs = w[:, :T], targets = w[:, 1:]
                in[b] = Arrays.copyOfRange(w[b], 0, w[b].length - 1);
                tg[b] = Arrays.copyOfRange(w[b], 1, w[b].length);
            }
            inputs.add(in);
            targets.add(tg);
            scales[k] = scale;
        }
        int[] counted = model.uploadStep(inputs, targets);
        for (int k = 0; k < counted.length; k++) {
            weights[k] = 1.0 / ((double) counted[k] * cfg.gradAccum());
        }
        return scales;
    }

    /**
     * Step 1 on instruction rows, uploaded: micro-batch k (c_k counted targets) gets gradScale c_k / Σc, Σc over
     * every micro-batch of every rank (one all-reduce of the counts when distributed); the step's loss is
     * Σ_k (loss sum of k) / Σc times W, as {@link GradientReducer#reduce} averages the ranks' values. Returns the
     * gradScales.
     */
    private float[] uploadRows(double[] weights) {
        ProcessGroup g = reducer.group();
        InstructionSampler.Rows[] micro = new InstructionSampler.Rows[cfg.gradAccum()];
        double[] total = {0};
        for (int k = 0; k < micro.length; k++) {
            micro[k] = rows.nextShard(g.rank(), g.size());
            total[0] += micro[k].counted();
        }
        if (g.distributed()) {
            g.allReduceSum(total);
        }
        List<int[][]> inputs = new ArrayList<>(), targets = new ArrayList<>();
        float[] scales = new float[micro.length];
        for (int k = 0; k < micro.length; k++) {
            inputs.add(micro[k].inputs());
            targets.add(micro[k].targets());
            scales[k] = (float) (micro[k].counted() / total[0]);
            weights[k] = g.size() / total[0];
        }
        model.uploadStep(inputs, targets);
        return scales;
    }

    /** A non-finite micro-batch loss stops a single process at once (distributed: the reduced loss carries it). */
    private void checkMicroLoss(int s, int k, double l) {
        if (!Double.isFinite(l) && !reducer.group().distributed()) {
            optimizer.zeroGrad();
            throw diverged(s + 1, "loss is " + l + (cfg.gradAccum() > 1
                    ? " in micro-batch " + (k + 1) + " of " + cfg.gradAccum() : ""));
        }
    }

    private TrainingDivergedException diverged(int atStep, String what) {
        return new TrainingDivergedException(atStep, what, lastCheckpoint, lastCheckpointStep);
    }

    // ---------------------------------------------------------------- checkpoints

    /** Every adapter tensor (trainable or not, e.g. LoRA-FA's frozen A) and every trainable parameter, by name. */
    private Map<String, Parameter> checkpointParameters() {
        Map<String, Parameter> out = new LinkedHashMap<>();
        for (AdaptedLinear m : model.adaptedModules()) {
            for (Parameter p : m.parameters()) {
                out.put(p.name(), p);
            }
        }
        for (Parameter p : model.parameters()) {
            if (p.trainable()) {
                out.put(p.name(), p);
            }
        }
        return out;
    }

    /** Writes a checkpoint of the current state now. */
    public Path saveCheckpoint(double elapsedS) throws IOException {
        Path dir = Checkpoint.write(outDir, tmp -> {
            Map<String, TensorData> values = new LinkedHashMap<>();
            checkpointParameters().forEach((name, p) -> values.put(name, f32(p.value())));
            Safetensors.write(tmp.resolve(Checkpoint.PARAMS), values, Map.of("format", "lorakit"));
            Map<String, TensorData> moments = new LinkedHashMap<>();
            Map<String, Integer> momentSteps = new LinkedHashMap<>();
            optimizer.state().forEach((name, st) -> {
                moments.put(name + ".exp_avg", f32(st.m()));
                moments.put(name + ".exp_avg_sq", f32(st.v()));
                momentSteps.put(name, st.step());
            });
            Safetensors.write(tmp.resolve(Checkpoint.OPTIMIZER), moments, Map.of("format", "lorakit"));
            List<AdaptedLinear> modules = model.adaptedModules();
            Map<String, Long> dropout = new LinkedHashMap<>();
            Map<String, Long> dropoutSeeds = new LinkedHashMap<>();
            for (AdaptedLinear m : modules) {
                dropout.put(m.name(), m.dropoutStep());
                dropoutSeeds.put(m.name(), m.dropoutSeed(0));
            }
            Map<String, TensorData> hookState = new LinkedHashMap<>();
            hook.state().forEach((name, t) -> hookState.put(name, f32(t)));
            if (!hookState.isEmpty()) {
                Safetensors.write(tmp.resolve(Checkpoint.HOOKS), hookState, Map.of("format", "lorakit"));
            }
            if (!modules.isEmpty()) {
                saveAdapter(tmp.resolve(Checkpoint.ADAPTER));
            }
            if (extraFiles != null) {
                extraFiles.write(tmp);
            }
            WindowSampler.State ss = rows != null ? rows.state() : sampler.state();
            Checkpoint.writeState(tmp, new TrainerState(TrainerState.FORMAT, TrainerState.VERSION, step, step, lastLr,
                    ss.seed(), ss.windowsDrawn(), optimizer.stepCount(), momentSteps, dropout, dropoutSeeds, elapsedS, cfg,
                    !modules.isEmpty(), runInfo));
        });
        lastCheckpoint = dir;
        lastCheckpointStep = step;
        listener.checkpointed(step, dir);
        return dir;
    }

    /**
     * Writes the trained adapter as a PEFT adapter folder, in the form each method exports:
     * <ul>
     *   <li>AdaLoRA: the allocator's config with its rank_pattern (null before the first mask), so the tensors are
     *       pruned to the kept triplets as PEFT saves them;</li>
     *   <li>Delta-LoRA: the rank-2r plain LoRA on the ORIGINAL base weights ({@link DeltaLoraUpdater#export}), which
     *       reproduces the trained model (whose W changed) on the unmodified base checkpoint;</li>
     *   <li>everything else (LoRA-drop included: tied tensors are written once per module): the modules as they are.</li>
     * </ul>
     *
     * @throws IllegalStateException the model has no adapters (full fine-tuning)
     */
    public void saveAdapter(Path dir) throws IOException {
        List<AdaptedLinear> modules = model.adaptedModules();
        if (modules.isEmpty()) {
            throw new IllegalStateException("no adapters to save: this is a full fine-tuning run");
        }
        AdapterConfig config = modules.getFirst().config();
        if (hook instanceof DeltaLoraUpdater d) {
            DeltaLoraUpdater.save(d.export((LoraConfig) config), model.backend(), dir, baseModelName);
        } else if (hook instanceof RankAllocator ra) {
            PeftAdapterIO.save(dir, ra.adapterConfig(), modules, null, baseModelName);
        } else {
            PeftAdapterIO.save(dir, config, modules, modules.getFirst().veraProjections(), baseModelName);
        }
    }

    /**
     * Loads {@code outDir}'s checkpoint into the model, optimizer and sampler; the next {@link #run} continues
     * from its step. B, T, gradAccum and the seed must equal the checkpoint's (they define the window stream).
     *
     * @return the step resumed at
     * @throws NoSuchFileException      there is no checkpoint in outDir
     * @throws IllegalArgumentException the checkpoint does not fit this model or configuration
     */
    public int resume() throws IOException {
        Path dir = Checkpoint.locate(outDir);
        if (dir == null) {
            throw new NoSuchFileException(outDir.resolve(Checkpoint.DIR).toString(), null,
                    "no checkpoint to resume from");
        }
        TrainerState st = Checkpoint.readState(dir);
        TrainConfig c = st.config();
        same("batch size", cfg.batchSize(), c.batchSize(), dir);
        same("sequence length", cfg.seqLen(), c.seqLen(), dir);
        same("gradient accumulation", cfg.gradAccum(), c.gradAccum(), dir);
        same("seed", cfg.seed(), c.seed(), dir);
        if (st.step() > cfg.steps()) {
            throw new IllegalArgumentException("cannot resume from " + dir + ": it is at step " + st.step()
                    + ", beyond steps=" + cfg.steps());
        }
        Map<String, Tensor> dst = new LinkedHashMap<>();
        checkpointParameters().forEach((name, p) -> dst.put(name, p.value()));
        Map<String, float[]> values = readExactly(dir.resolve(Checkpoint.PARAMS), dst);
        Map<String, Optimizer.SavedMoments> moments = new LinkedHashMap<>();
        Map<String, Tensor> momentShapes = new LinkedHashMap<>();
        Map<String, Parameter> byName = new LinkedHashMap<>();
        model.parameters().forEach(p -> byName.put(p.name(), p));
        for (String name : st.momentSteps().keySet()) {
            Parameter p = byName.get(name);
            if (p == null) {
                throw new IllegalArgumentException("cannot resume from " + dir + ": optimizer state for " + name
                        + ", which this model does not have");
            }
            momentShapes.put(name + ".exp_avg", p.value());
            momentShapes.put(name + ".exp_avg_sq", p.value());
        }
        Map<String, float[]> mv = readExactly(dir.resolve(Checkpoint.OPTIMIZER), momentShapes);
        Map<String, Tensor> hookState = hook.state();
        Map<String, float[]> hookValues = Map.of();
        boolean hookFile = java.nio.file.Files.isRegularFile(dir.resolve(Checkpoint.HOOKS));
        if (!hookState.isEmpty() || hookFile) {
            if (!hookFile) {
                throw new IllegalArgumentException("cannot resume from " + dir + ": it has no " + Checkpoint.HOOKS
                        + " but this run's training hook (" + hook + ") keeps state (was it made with another method?)");
            }
            hookValues = readExactly(dir.resolve(Checkpoint.HOOKS), hookState);
        }
        st.momentSteps().forEach((name, t) ->
                moments.put(name, new Optimizer.SavedMoments(mv.get(name + ".exp_avg"), mv.get(name + ".exp_avg_sq"), t)));
        for (AdaptedLinear m : model.adaptedModules()) {
            if (!st.dropoutSteps().containsKey(m.name())) {
                throw new IllegalArgumentException("cannot resume from " + dir + ": no dropout state for layer "
                        + m.name() + " (was the checkpoint made with other adapter targets?)");
            }
            Long seed0 = st.dropoutSeeds().get(m.name());
            if (seed0 != null && seed0 != m.dropoutSeed(0)) {
                throw new IllegalArgumentException("cannot resume from " + dir + ": layer " + m.name() + " has another"
                        + " dropout stream than the checkpoint's (attach the adapters with the seed of the original run)");
            }
        }
        // everything validated: apply
        values.forEach((name, v) -> {
            Tensor t = dst.get(name);
            Backend be = t.backend();
            try (Tensor staged = be.upload(v, DType.F32, t.shape())) {
                be.copy(staged, t);
            }
        });
        checkpointParameters().values().forEach(Parameter::markChanged);   // adapted layers restage their bf16 copies
        hookValues.forEach((name, v) -> {
            Tensor t = hookState.get(name);
            Backend be = t.backend();
            try (Tensor staged = be.upload(v, DType.F32, t.shape())) {
                be.copy(staged, t);
            }
        });
        if (!hookState.isEmpty()) {
            hook.stateRestored();
        }
        optimizer.loadState(st.optimizerSteps(), moments);
        WindowSampler.State saved = new WindowSampler.State(st.samplerSeed(), st.samplerWindowsDrawn());
        if (rows != null) {
            rows.restore(saved);
        } else {
            sampler.restore(saved);
        }
        for (AdaptedLinear m : model.adaptedModules()) {
            m.setDropoutStep(st.dropoutSteps().get(m.name()));
        }
        step = st.step();
        lastLr = st.lr();
        elapsedBefore = st.elapsedS();
        resumed = true;
        lastCheckpoint = dir;
        lastCheckpointStep = step;
        return step;
    }

    private static void same(String what, long now, long saved, Path dir) {
        if (now != saved) {
            throw new IllegalArgumentException("cannot resume from " + dir + ": " + what + " " + now
                    + " differs from the checkpoint's " + saved + " (the run would not continue the same way)");
        }
    }

    /** The file's tensors, which must be exactly the expected names with the expected shapes. */
    private static Map<String, float[]> readExactly(Path file, Map<String, Tensor> expected) throws IOException {
        Map<String, float[]> out = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        try (SafetensorsFile sf = SafetensorsFile.open(file)) {
            for (Map.Entry<String, Tensor> e : expected.entrySet()) {
                String name = e.getKey();
                long[] want = Arrays.stream(e.getValue().shape()).asLongStream().toArray();
                if (!sf.contains(name)) {
                    problems.add("missing " + name + " " + Arrays.toString(want));
                } else if (!Arrays.equals(sf.info(name).shape(), want)) {
                    problems.add(name + ": shape " + Arrays.toString(sf.info(name).shape()) + ", expected "
                            + Arrays.toString(want));
                } else {
                    out.put(name, sf.floats(name));
                }
            }
            TreeSet<String> extra = new TreeSet<>(sf.names());
            extra.removeAll(expected.keySet());
            extra.forEach(n -> problems.add("unexpected " + n + " (not in this model)"));
        }
        if (!problems.isEmpty()) {
            throw new IllegalArgumentException("cannot resume from " + file + " (was it made with another model,"
                    + " method or adapter settings?): " + String.join("; ", problems.subList(0, Math.min(5, problems.size())))
                    + (problems.size() > 5 ? "; ... " + (problems.size() - 5) + " more" : ""));
        }
        return out;
    }

    private static TensorData f32(Tensor t) {
        float[] v = t.backend().download(t);
        return TensorData.f32(v, Arrays.stream(t.shape()).asLongStream().toArray());
    }

    /** Releases the hook's, the optimizer's and the reducer's state (the model and the group are the caller's). */
    @Override
    public void close() {
        try {
            if (stats != null) {
                stats.close();
            }
            hook.close();
        } finally {
            try {
                optimizer.close();
            } finally {
                reducer.close();
            }
        }
    }
}
