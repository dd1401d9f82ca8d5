package ai.lorakit.cli;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.RankAllocator;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.ProcessGroups;
import ai.lorakit.gpu.dist.SingleProcess;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.decoder.Families;
import ai.lorakit.models.decoder.ModelConfig;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.tokenizer.Tokenizer;
import ai.lorakit.models.train.Checkpoint;
import ai.lorakit.models.train.EvalResult;
import ai.lorakit.models.train.LoraDropTraining;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.Trainer;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine;

import java.io.IOException;
import java.nio.file.Path;
import java.time.LocalDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;

/**
 * {@code lorakit train}: fine-tunes (or, with {@code --method full --init random}, pretrains) a GPT-2 model and
 * writes {@code <out>/adapter} (PEFT format) or {@code <out>/model} (HF checkpoint), {@code metrics.jsonl} and
 * {@code checkpoint/}. {@code --resume} re-reads the arguments stored in the checkpoint (options given again
 * override them) and continues exactly where the checkpoint stopped.
 *
 * <p>The training-time variants: {@code adalora} runs the rank allocator and the orthogonality regulariser every
 * step (total_step = --steps) and saves the adapter pruned by its rank_pattern; {@code delta-lora} updates W after
 * each step past K and saves the rank-2r LoRA on the original W that reproduces the trained model (it refuses
 * adapter dropout); {@code lora-drop} runs stage 1 in {@code <out>/stage1}, writes
 * {@code <out>/lora_drop_selection.json}, then trains stage 2 ({@link LoraDropTraining}).
 *
 * <p>Data parallel: started by mpirun or srun ({@link ProcessGroups#fromEnvironment}), every rank runs this command;
 * {@code --batch} is the global batch, split evenly over the ranks. Rank 0 prints and writes (the other ranks are
 * silent); a rank that fails prints "rank r of W failed: ..." and stops the whole job (MPI_Abort).
 */
@Command(name = "train", mixinStandardHelpOptions = true, sortOptions = false,
        description = {"Fine-tune a GPT-2 model with a LoRA-family adapter, or fully (--method full).",
            "Writes <out>/adapter (PEFT format) or <out>/model (HF checkpoint), <out>/metrics.jsonl and"
                + " <out>/checkpoint (for --resume)."})
final class TrainCommand implements Callable<Integer> {


    /** Swapped for a silent one on ranks other than 0. */
    private Cli cli;
    /** True for the re-parse of saved + given arguments under --resume. */
    private boolean merged;
    /** The ranks of this run; set by {@link #call} before training. */
    private ProcessGroup group = SingleProcess.INSTANCE;

    @Option(names = "--method", defaultValue = "lora", paramLabel = "<m>",
            description = "lora, lora-plus, lora-fa, dora, vera, adalora, delta-lora, lora-drop, full. Default: ${DEFAULT-VALUE}.")
    String method;

    @Option(names = "--model", paramLabel = "<dir>", description = ModelSource.MODEL_HELP)
    Path model;

    @Option(names = "--init", defaultValue = "pretrained", paramLabel = "<how>",
            description = "pretrained (load --model) or random (a new model: --config-json or --n-layer/--n-embd/--n-head/--n-positions/--vocab). Default: ${DEFAULT-VALUE}.")
    String init;

    @Option(names = "--config-json", paramLabel = "<file>", description = "HF config.json of the random model (--init random).")
    Path configJson;

    @Option(names = "--n-layer", paramLabel = "<n>", description = "Blocks of the random model (default 4).")
    Integer nLayer;

    @Option(names = "--n-embd", paramLabel = "<n>", description = "Width of the random model (default 128).")
    Integer nEmbd;

    @Option(names = "--n-head", paramLabel = "<n>", description = "Attention heads of the random model (default 4).")
    Integer nHead;

    @Option(names = "--n-positions", paramLabel = "<n>", description = "Longest sequence of the random model (default 256).")
    Integer nPositions;

    @Option(names = "--vocab", paramLabel = "<n>", description = "vocab_size of the random model (default: the tokenizer's).")
    Integer vocab;

    @Option(names = "--data", defaultValue = "brown:fiction", paramLabel = "<src>",
            description = "A text file, a folder of files, a .jsonl file ({\"text\": ...} per line), an instruction .jsonl ({\"prompt\", \"completion\"} or {\"messages\"} per line: loss on completion tokens only; messages need the tokenizer folder's chat template), or brown:fiction / brown:non-fiction. Default: ${DEFAULT-VALUE}.")
    String data;

    @Option(names = "--val-fraction", defaultValue = "0.1", paramLabel = "<f>", description = "Share of documents held out for validation. Default: ${DEFAULT-VALUE}.")
    double valFraction;

    @Option(names = "--tokenizer", defaultValue = "auto", paramLabel = "<t>",
            description = "auto (the model folder's tokenizer.json, else its vocab.json + merges.txt, else bytes when vocab_size is 256/257), bytes, or a folder with tokenizer.json or vocab.json + merges.txt. Default: ${DEFAULT-VALUE}.")
    String tokenizer;

    @Option(names = "--backend", defaultValue = "auto", paramLabel = "<b>", description = "auto, cuda-ffm, cuda-jcuda, opencl, cpu. Default: ${DEFAULT-VALUE}.")
    String backend;

    @Option(names = "--precision", defaultValue = "auto", paramLabel = "<p>",
            description = "fp32, bf16 (bf16 frozen weights and activations; fp32 statistics, loss and adapters), or auto (bf16 on CUDA, fp32 elsewhere). Default: ${DEFAULT-VALUE}.")
    String precision;

    @picocli.CommandLine.Mixin
    DeviceOption deviceOption = new DeviceOption();   // --device (OpenCL)

    @Option(names = "--r", defaultValue = "8", paramLabel = "<r>", description = "Adapter rank. Default: ${DEFAULT-VALUE}.")
    int r;

    @Option(names = "--alpha", defaultValue = "16", paramLabel = "<a>", description = "lora_alpha (scaling alpha/r). Default: ${DEFAULT-VALUE}.")
    float alpha;

    @Option(names = "--dropout", defaultValue = "0.0", paramLabel = "<p>", description = "Dropout on the adapter input. Default: ${DEFAULT-VALUE}.")
    float dropout;

    @Option(names = "--target", split = ",", paramLabel = "<m>",
            description = "Target modules: names or dotted suffixes, 're:<regex>', or all-linear. Default: the model family's (GPT-2: c_attn,c_proj,c_fc, every linear layer of each block; PEFT's GPT-2 default is c_attn).")
    List<String> target;

    @Option(names = "--rslora", description = "Scale alpha/sqrt(r) instead of alpha/r.")
    boolean rslora;

    @Option(names = "--lora-plus-ratio", defaultValue = "16", paramLabel = "<x>", description = "LoRA+: learning rate of B / of A. Default: ${DEFAULT-VALUE}.")
    float loraPlusRatio;

    @Option(names = "--vera-r", defaultValue = "256", paramLabel = "<r>", description = "VeRA's shared rank. Default: ${DEFAULT-VALUE}.")
    int veraR;

    @Option(names = "--adalora-init-r", defaultValue = "12", paramLabel = "<r>", description = "AdaLoRA's initial rank. Default: ${DEFAULT-VALUE}.")
    int adaloraInitR;

    @Option(names = "--adalora-target-r", defaultValue = "8", paramLabel = "<r>", description = "AdaLoRA's average target rank. Default: ${DEFAULT-VALUE}.")
    int adaloraTargetR;

    @Option(names = "--adalora-tinit", paramLabel = "<n>", description = "AdaLoRA: warm-up steps at the initial budget. Default: steps/10 (PEFT: 0).")
    Integer adaloraTinit;

    @Option(names = "--adalora-tfinal", paramLabel = "<n>", description = "AdaLoRA: final steps at the target budget (ranks fixed). Default: steps/5 (PEFT: 0).")
    Integer adaloraTfinal;

    @Option(names = "--adalora-delta-t", defaultValue = "10", paramLabel = "<n>", description = "AdaLoRA: steps between rank allocations. Default: ${DEFAULT-VALUE} (PEFT: 1).")
    int adaloraDeltaT;

    @Option(names = "--adalora-orth-reg", defaultValue = "0.5", paramLabel = "<w>", description = "AdaLoRA: orthogonality regulariser weight (PEFT's form: mean non-squared ||C - I||_F). Default: ${DEFAULT-VALUE}.")
    float adaloraOrthReg;

    @Option(names = "--delta-lambda", defaultValue = "2", paramLabel = "<x>", description = "Delta-LoRA: update ratio lambda of W += lambda*s*(B'A' - BA). Default: ${DEFAULT-VALUE}.")
    float deltaLambda;

    @Option(names = "--delta-start", paramLabel = "<k>", description = "Delta-LoRA: start step K (W moves after step K). Default: 500, or steps/4 when that is smaller.")
    Integer deltaStart;

    @Option(names = "--drop-sample-fraction", defaultValue = "0.1", paramLabel = "<a>", description = "LoRA-drop: share alpha of the training documents stage 1 trains and measures on. Default: ${DEFAULT-VALUE}.")
    double dropSampleFraction;

    @Option(names = "--drop-threshold", defaultValue = "0.9", paramLabel = "<t>", description = "LoRA-drop: cumulative importance T the individually kept adapters reach. Default: ${DEFAULT-VALUE}.")
    double dropThreshold;

    @Option(names = "--drop-grouping", defaultValue = "block", paramLabel = "<g>", description = "LoRA-drop: rank, keep and drop per block (all modules of a transformer block) or per module. Default: ${DEFAULT-VALUE}.")
    String dropGrouping;

    @Option(names = "--drop-stage2", defaultValue = "restart", paramLabel = "<how>", description = "LoRA-drop: stage 2 restarts every adapter from a fresh init, or continues the kept ones. Default: ${DEFAULT-VALUE}.")
    String dropStage2;

    @Option(names = "--drop-stage1-steps", paramLabel = "<n>", description = "LoRA-drop: stage-1 steps. Default: ceil(alpha*steps), at least 10, at most --steps.")
    Integer dropStage1Steps;

    @Option(names = "--steps", defaultValue = "200", paramLabel = "<n>", description = "Optimizer steps. Default: ${DEFAULT-VALUE}.")
    int steps;

    @Option(names = "--batch", defaultValue = "8", paramLabel = "<b>", description = "Windows per micro-batch (under mpirun/srun: the global batch, split evenly over the ranks). Default: ${DEFAULT-VALUE}.")
    int batch;

    @Option(names = "--seq-len", paramLabel = "<t>", description = "Tokens per window. Default: min(128, n_positions).")
    Integer seqLen;

    @Option(names = "--lr", paramLabel = "<lr>", description = "Peak learning rate. Default per method, the best of the learning-rate sweep on the default model (benchmarks/results/variants-brown.md): lora 3e-3, lora-plus 1e-3, lora-fa 1e-2, dora 3e-3, vera 3e-2, adalora 3e-2, full 3e-4, delta-lora 3e-3, lora-drop 3e-3.")
    Float lr;

    @Option(names = "--warmup", paramLabel = "<n>", description = "Linear warm-up steps. Default: steps/10, at most 100.")
    Integer warmup;

    @Option(names = "--schedule", defaultValue = "cosine", paramLabel = "<s>", description = "cosine, linear or constant after warm-up. Default: ${DEFAULT-VALUE}.")
    String schedule;

    @Option(names = "--min-lr-ratio", defaultValue = "0.1", paramLabel = "<f>", description = "Decay floor as a share of --lr. Default: ${DEFAULT-VALUE}.")
    float minLrRatio;

    @Option(names = "--clip", defaultValue = "1.0", paramLabel = "<norm>", description = "Global gradient-norm clip, 0 = off. Default: ${DEFAULT-VALUE}.")
    float clip;

    @Option(names = "--grad-accum", defaultValue = "1", paramLabel = "<n>", description = "Micro-batches per step. Default: ${DEFAULT-VALUE}.")
    int gradAccum;

    @Option(names = "--weight-decay", defaultValue = "0.0", paramLabel = "<wd>", description = "AdamW decoupled weight decay. Default: ${DEFAULT-VALUE}.")
    float weightDecay;

    @Option(names = "--eval-every", defaultValue = "50", paramLabel = "<n>", description = "Validate every n steps (0: before and after only). Default: ${DEFAULT-VALUE}.")
    int evalEvery;

    @Option(names = "--eval-batches", defaultValue = "20", paramLabel = "<n>", description = "Validation batches per evaluation (0: all). Default: ${DEFAULT-VALUE}.")
    int evalBatches;

    @Option(names = "--checkpoint-every", defaultValue = "100", paramLabel = "<n>", description = "Checkpoint every n steps (0: at the end only). Default: ${DEFAULT-VALUE}.")
    int checkpointEvery;

    @Option(names = "--log-every", defaultValue = "10", paramLabel = "<n>", description = "Metrics line every n steps. Default: ${DEFAULT-VALUE}.")
    int logEvery;

    @Option(names = "--seed", defaultValue = "42", paramLabel = "<s>", description = "Seed of the split, the windows and the adapter init. Default: ${DEFAULT-VALUE}.")
    long seed;

    @Option(names = "--out", paramLabel = "<dir>", description = "Run folder. Default: runs/<method>-<timestamp>.")
    Path out;

    @Option(names = "--resume", description = "Continue the run in --out from its checkpoint (stored options are reused; options given now override them).")
    boolean resume;

    @Option(names = "--debug", description = "Print stack traces of errors.")
    boolean debug;

    TrainCommand(Cli cli) {
        this.cli = cli;
    }

    @Override
    public Integer call() throws IOException {
        try (ProcessGroup g = ProcessGroups.fromEnvironment()) {
            if (!g.distributed()) {
                return callIn(g);
            }
            java.io.PrintStream err = cli.err;
            try {
                if (g.rank() != 0) {
                    java.io.PrintStream quiet = new java.io.PrintStream(java.io.OutputStream.nullOutputStream());
                    Cli silent = new Cli(quiet, quiet);
                    silent.subcommandArgs = cli.subcommandArgs;
                    cli = silent;
                }
                return callIn(g);
            } catch (Throwable ex) {
                int code = Main.exitCode(ex);
                err.println("lorakit train: rank " + g.rank() + " of " + g.size() + " failed: " + Main.describe(ex)
                        + "; stopping every rank (MPI_Abort " + code + ")");
                err.flush();
                g.abort(code);
                throw ex;
            }
        }
    }

    private Integer callIn(ProcessGroup g) throws IOException {
        this.group = g;
        List<String> given = strip(cli.subcommandArgs);
        if (resume && !merged) {
            if (out == null) {
                throw new UsageException("--resume needs --out <run folder> (the folder with checkpoint/)");
            }
            Map<String, Object> run = Trainer.readRunInfo(out);
            if (run == null) {                                  // a LoRA-drop run stopped in stage 1
                run = Trainer.readRunInfo(out.resolve(LoraDropTraining.STAGE1_DIR));
            }
            if (run == null) {
                throw new UsageException("--resume: no checkpoint in " + out);
            }
            List<String> all = new ArrayList<>();
            if (run.get("argv") instanceof List<?> saved) {
                saved.forEach(a -> all.add(String.valueOf(a)));
            }
            all.addAll(given);
            TrainCommand again = new TrainCommand(cli);
            again.merged = true;
            again.group = group;
            CommandLine c = new CommandLine(again);
            c.setOverwrittenOptionsAllowed(true);
            List<String> parse = new ArrayList<>(all);
            parse.add("--resume");
            c.parseArgs(parse.toArray(String[]::new));
            return again.train(all);
        }
        return train(given);
    }

    private static final java.util.Set<String> PATH_OPTIONS = java.util.Set.of("--model", "--data", "--out",
            "--tokenizer", "--config-json");

    /** argv with the values of path options made absolute, so --resume works from any working folder. */
    static List<String> absolutePaths(List<String> argv) {
        List<String> out = new ArrayList<>(argv.size());
        for (int i = 0; i < argv.size(); i++) {
            String a = argv.get(i);
            int eq = a.indexOf('=');
            String name = eq > 0 ? a.substring(0, eq) : a;
            if (!PATH_OPTIONS.contains(name)) {
                out.add(a);
            } else if (eq > 0) {
                out.add(name + "=" + absolute(name, a.substring(eq + 1)));
            } else {
                out.add(a);
                if (i + 1 < argv.size()) {
                    out.add(absolute(name, argv.get(++i)));
                }
            }
        }
        return out;
    }

    private static String absolute(String option, String value) {
        try {
            Path p = Path.of(value);
            boolean path = option.equals("--out") || java.nio.file.Files.exists(p);
            return path ? p.toAbsolutePath().normalize().toString() : value;   // brown:..., auto, bytes stay as they are
        } catch (java.nio.file.InvalidPathException e) {
            return value;
        }
    }

    /** The arguments without --resume and --debug (what a checkpoint stores). */
    private static List<String> strip(List<String> args) {
        return args.stream().filter(a -> !a.equals("--resume") && !a.equals("--debug")).toList();
    }

    private int train(List<String> argv) throws IOException {
        Method m = Method.parse(method);
        validate();
        TrainConfig.Schedule sched;
        try {
            sched = TrainConfig.Schedule.parse(schedule);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--schedule: " + e.getMessage());
        }
        Path outDir = out != null ? out : Path.of("runs", m.cliName + "-"
                + LocalDateTime.now().format(DateTimeFormatter.ofPattern("yyyyMMdd-HHmmss")));
        if (!resume && (Checkpoint.locate(outDir) != null
                || Checkpoint.locate(outDir.resolve(LoraDropTraining.STAGE1_DIR)) != null)) {
            throw new UsageException("--out " + outDir + " already holds a checkpoint; add --resume to continue it,"
                    + " or choose another --out");
        }
        List<String> stored = absolutePaths(argv);
        if (out == null) {
            stored.add("--out");
            stored.add(outDir.toString());
        }
        int localRank = ai.lorakit.gpu.dist.Launch.localRank(System.getenv());
        if (group.distributed() && localRank >= 0 && System.getProperty(BackendRegistry.CUDA_DEVICE_PROPERTY) == null) {
            // one GPU per rank on a node: CUDA device = the node-local rank, unless -Dlorakit.cuda.device says otherwise
            System.setProperty(BackendRegistry.CUDA_DEVICE_PROPERTY, Integer.toString(localRank));
        }
        Backend be = deviceOption.open(backend, () -> ModelSource.openBackend(backend));
        try {
            return train(m, sched, outDir, stored, be);
        } finally {
            be.close();
        }
    }

    private int train(Method m, TrainConfig.Schedule sched, Path outDir, List<String> stored, Backend be)
            throws IOException {
        Precision prec;
        try {
            prec = Precision.parse(precision, be);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--precision: " + e.getMessage());
        }
        if (m == Method.FULL) {
            prec = prec.withFp32Weights();   // trainable base weights are their own fp32 masters
        }
        Tokenizer tok;
        Path modelDir;
        String modelName;
        DecoderModel gm;
        if (init.equals("random")) {
            if (model != null) {
                throw new UsageException("--init random builds a new model; drop --model (or use --init pretrained)");
            }
            tok = tokenizer.equals("auto") || tokenizer.equals("bytes")
                    ? ModelSource.tokenizer("bytes", null, Integer.MAX_VALUE)
                    : ModelSource.tokenizer(tokenizer, null, Integer.MAX_VALUE);
            ModelConfig gc = randomConfig(tok);
            if (tok.vocabSize() > gc.vocabSize()) {
                throw new UsageException("--vocab " + gc.vocabSize() + " is smaller than the tokenizer's "
                        + tok.vocabSize() + " ids");
            }
            gm = DecoderModel.random(gc, be, seed, prec);
            modelDir = null;
            modelName = "random-init";
        } else if (init.equals("pretrained")) {
            if (configJson != null || nLayer != null || nEmbd != null || nHead != null || nPositions != null
                    || vocab != null) {
                throw new UsageException("--config-json / --n-layer / --n-embd / --n-head / --n-positions / --vocab"
                        + " describe a new model: they need --init random");
            }
            ModelSource.Resolved src = ModelSource.resolve(model);
            gm = ModelSource.load(src, be, prec);
            modelDir = src.dir();
            modelName = src.name();
            try {
                tok = ModelSource.tokenizer(tokenizer, modelDir, gm.vocabSize());
            } catch (RuntimeException | IOException e) {
                gm.close();
                throw e;
            }
        } else {
            throw new UsageException("--init must be pretrained or random, got '" + init + "'");
        }
        try (gm) {
            return train(m, sched, outDir, stored, gm, tok, modelDir, modelName);
        }
    }

    /** --config-json: any registered family (by model_type); the size flags describe a GPT-2, the default family. */
    private ModelConfig randomConfig(Tokenizer tok) throws IOException {
        if (configJson != null) {
            if (nLayer != null || nEmbd != null || nHead != null || nPositions != null || vocab != null) {
                throw new UsageException("--config-json and --n-layer/--n-embd/--n-head/--n-positions/--vocab"
                        + " exclude each other");
            }
            if (!java.nio.file.Files.isRegularFile(configJson)) {
                throw new UsageException("--config-json: no such file: " + configJson);
            }
            return Families.readConfig(configJson);
        }
        int v = vocab != null ? vocab : tok.vocabSize();
        int p = nPositions != null ? nPositions : 256;
        int c = nEmbd != null ? nEmbd : 128;
        int l = nLayer != null ? nLayer : 4;
        int h = nHead != null ? nHead : 4;
        Cli.positive("--vocab", v);
        Cli.positive("--n-positions", p);
        Cli.positive("--n-embd", c);
        Cli.positive("--n-layer", l);
        Cli.positive("--n-head", h);
        if (c % h != 0) {
            throw new UsageException("--n-embd " + c + " must be divisible by --n-head " + h);
        }
        return Gpt2Config.of(v, p, c, l, h);
    }

    @SuppressWarnings("try")   // rep.close() before the summary lines: the bar must be gone first
    private int train(Method m, TrainConfig.Schedule sched, Path outDir, List<String> stored, DecoderModel gm,
                      Tokenizer tok, Path modelDir, String modelName) throws IOException {
        int t = seqLen != null ? seqLen : Math.min(128, gm.maxSeqLen());
        Cli.positive("--seq-len", t);
        if (t > gm.maxSeqLen()) {
            throw new UsageException("--seq-len " + t + " exceeds the model's " + gm.config().maxSeqLenKey() + " "
                    + gm.maxSeqLen());
        }
        boolean instruct = InstructionSource.detect(data);
        TextDataset.Split split = null;
        InstructionSource.Split rows = null;
        if (instruct) {
            rows = InstructionSource.load(data, tok, InstructionSource.tokenizerDir(tokenizer, modelDir), t, valFraction,
                    seed);
        } else {
            split = DataSource.split(DataSource.load(data, tok), valFraction, seed);
        }
        List<String> targets = target != null ? target : gm.config().family().defaultTargets();
        Method.Settings s = new Method.Settings(r, alpha, dropout, rslora, targets, loraPlusRatio, veraR, adaloraInitR,
                adaloraTargetR, adaloraTinit != null ? adaloraTinit : Method.Settings.defaultTinit(steps),
                adaloraTfinal != null ? adaloraTfinal : Method.Settings.defaultTfinal(steps), adaloraDeltaT,
                adaloraOrthReg, steps, seed, deltaLambda,
                deltaStart != null ? deltaStart : Method.Settings.defaultDeltaStart(steps));
        AdapterConfig ac;
        OptimizerPolicy policy;
        try {
            ac = m.adapterConfig(s);
            policy = m.policy(s);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--method " + m.cliName + ": " + e.getMessage());
        }
        LoraDropOptions dropOptions = m == Method.LORA_DROP ? dropOptions() : null;
        if (ac == null) {
            gm.setFullFineTune(true);
        } else {
            gm.attachAdapters(ac, seed);
        }
        int w = warmup != null ? warmup : Math.min(100, steps / 10);
        TrainConfig tc = new TrainConfig(steps, batch, t, lr != null ? lr : m.defaultLr, w, sched, minLrRatio,
                weightDecay, clip, gradAccum, evalEvery, evalBatches, checkpointEvery, seed, logEvery);
        long trainable = 0;
        long total = 0;
        for (Parameter p : gm.parameters()) {
            total += p.value().numel();
            trainable += p.trainable() ? p.value().numel() : 0;
        }
        if (dropOptions != null) {
            return trainLoraDrop(m, ac, policy, tc, dropOptions, split, rows, tok, stored, gm, modelName, outDir, w,
                    t, trainable, total);
        }
        try (Trainer tr = instruct ? new Trainer(gm, policy, tc, rows.train(), rows.validation(), outDir)
                : new Trainer(gm, policy, tc, split.train(), split.validation(), outDir);
             ProgressReporter rep = ProgressReporter.create(cli.out, cli.err)) {
            tr.setListener(rep);
            tr.setRunInfo(Map.of("argv", stored, "method", m.cliName, "model", modelName));
            tr.setBaseModelName(modelName);
            tr.setProcessGroup(group);
            header(m, ac, gm, modelName, trainable, total, tok, split, tc, t, w, outDir);
            if (instruct) {
                cli.out.println("instruction data: " + rows.examples() + " examples -> " + rows.train().inputs().length
                        + " training rows (" + rows.train().countedTargets() + " completion tokens), "
                        + rows.validation().inputs().length + " validation rows (" + rows.validation().countedTargets()
                        + " completion tokens); one example per row of " + t + " tokens, loss on completion tokens"
                        + " only" + (rows.truncated() > 0 ? "; " + rows.truncated() + " cut to the window" : "")
                        + (rows.dropped() > 0 ? "; " + rows.dropped() + " dropped (no completion token in the window)"
                        : ""));
            }
            if (tr.hook() instanceof RankAllocator ra) {
                cli.out.println(String.format(Locale.ROOT, "adalora budget: %d triplets -> %d (tinit %d, tfinal %d,"
                        + " deltaT %d, orth_reg %.3g)", ra.initBudget(), ra.targetBudget(), s.adaloraTinit(),
                        s.adaloraTfinal(), s.adaloraDeltaT(), s.adaloraOrthReg()));
            } else if (tr.hook() instanceof DeltaLoraUpdater d) {
                cli.out.println(String.format(Locale.ROOT, "delta-lora: W += %.3g * s * (B'A' - BA) after each step"
                        + " past K = %d", d.policy().lambda(), d.policy().startStep()));
            }
            if (resume) {
                int at = tr.resume();
                cli.out.println("resumed from " + tr.lastCheckpoint() + " at step " + at);
            }
            Trainer.Result res = tr.run();
            rep.close();
            if (res.after() != null && res.step() > 0) {
                cli.out.println("validation loss after:  " + fmt(res.after()));
            }
            if (group.rank() != 0) {
                return 0;                                       // rank 0 writes the model or adapter
            }
            if (ac == null) {
                Path dst = outDir.resolve("model");
                gm.saveHf(dst, DType.F32);
                ModelSource.copyTokenizerFiles(modelDir, dst);
                if (!tokenizer.equals("auto") && !tokenizer.equals("bytes")) {
                    ModelSource.copyTokenizerFiles(Path.of(tokenizer), dst);
                }
                cli.out.println("wrote " + dst + " (HF checkpoint: config.json + model.safetensors)");
            } else {
                Path dst = outDir.resolve("adapter");
                tr.saveAdapter(dst);
                if (tr.hook() instanceof RankAllocator ra) {
                    cli.out.println("adalora ranks: " + ranks(ra));
                }
                cli.out.println("wrote " + dst + " (PEFT adapter: adapter_config.json + adapter_model.safetensors"
                        + (tr.hook() instanceof DeltaLoraUpdater ? "; delta-lora: the rank-" + 2 * r + " LoRA on the"
                        + " original base weights that reproduces the trained model)" : ")"));
            }
            cli.out.println(String.format(Locale.ROOT, "trained to step %d in %.1f s (%s tokens/s); metrics in %s",
                    res.step(), res.elapsedS(), ProgressReporter.tokens(res.tokensPerS()),
                    outDir.resolve("metrics.jsonl")));
            printAllReduce(tr, res);
            cli.out.println(String.format(Locale.ROOT, "model tensors (precision %s): parameters and gradients"
                    + " %.2f MiB, activation buffers %.2f MiB, adapter work buffers %.2f MiB", gm.precision().name(),
                    gm.parameterBytes() / 1048576.0, gm.activationBytes() / 1048576.0,
                    gm.adapterWorkBytes() / 1048576.0));
        }
        return 0;
    }

    /** Data parallel: the all-reduce's share of a step, as rank 0 measured it. */
    private void printAllReduce(Trainer tr, Trainer.Result res) {
        if (!group.distributed() || res.tokensPerS() <= 0) {
            return;
        }
        double step = tr.config().tokensPerStep() / res.tokensPerS();
        double ar = tr.reducer().secondsPerStep();
        cli.out.println(String.format(Locale.ROOT, "all-reduce: %.2f ms per step of %.1f ms (%.1f%%), %,d floats over %d"
                + " ranks (%s)", ar * 1e3, step * 1e3, 100 * ar / step, tr.reducer().elements(), group.size(),
                tr.reducer().transport()));
    }

    @SuppressWarnings("try")
    /** LoRA-drop's two stages on text ({@code split}) or instruction rows ({@code rows}; the other is null). */
    private int trainLoraDrop(Method m, AdapterConfig ac, OptimizerPolicy policy, TrainConfig tc,
                              LoraDropOptions options, TextDataset.Split split, InstructionSource.Split rows,
                              Tokenizer tok, List<String> stored, DecoderModel gm, String modelName, Path outDir,
                              int w, int t, long trainable, long total) throws IOException {
        int stage1 = dropStage1Steps != null ? dropStage1Steps : LoraDropTraining.defaultStage1Steps(steps, options);
        try (LoraDropTraining ld = rows != null
                ? new LoraDropTraining(gm, policy, tc, options, stage1, rows.train(), rows.validation(), outDir)
                : new LoraDropTraining(gm, policy, tc, options, stage1, split.train(), split.validation(), outDir);
             ProgressReporter rep = ProgressReporter.create(cli.out, cli.err)) {
            ld.setListener(rep);
            ld.setLog(cli.out::println);
            ld.setRunInfo(Map.of("argv", stored, "method", m.cliName, "model", modelName));
            ld.setBaseModelName(modelName);
            ld.setProcessGroup(group);
            header(m, ac, gm, modelName, trainable, total, tok, split, tc, t, w, outDir);
            LoraDropTraining.Result res = ld.run(resume);
            rep.close();
            Trainer.Result r2 = res.stage2();
            if (r2.after() != null && r2.step() > 0) {
                cli.out.println("validation loss after:  " + fmt(r2.after()));
            }
            Path dst = outDir.resolve("adapter");
            if (group.rank() != 0) {
                return 0;
            }
            ld.saveAdapter(dst);
            cli.out.println("wrote " + dst + " (plain PEFT LoRA: " + LoraDropTraining.adapterFiles() + ")");
            cli.out.println(String.format(Locale.ROOT, "trained to step %d in %.1f s (%s tokens/s); metrics in %s",
                    r2.step(), r2.elapsedS(), ProgressReporter.tokens(r2.tokensPerS()),
                    outDir.resolve("metrics.jsonl")));
            printAllReduce(ld.stage2(), r2);
        }
        return 0;
    }

    private void header(Method m, AdapterConfig ac, DecoderModel gm, String modelName, long trainable, long total,
                        Tokenizer tok, TextDataset.Split split, TrainConfig tc, int t, int w, Path outDir) {
        // split: null for instruction data
        cli.out.println("lorakit train: " + (ac == null ? "full fine-tuning" : m.cliName + ", "
                + LoadedModel.describe(ac, gm.adaptedModules().size())) + "; backend " + gm.backend().name()
                + "; precision " + gm.precision().name());
        cli.out.println("base model " + modelName + ": " + gm.config().describe() + "; trainable "
                + String.format(Locale.ROOT, "%,d of %,d parameters (%.2f%%)", trainable, total, 100.0 * trainable / total));
        if (split != null) {
            cli.out.println("data " + data + " (" + tok + "): " + split.train().tokenCount() + " training tokens ("
                    + split.train().documentCount() + " documents), " + split.validation().tokenCount()
                    + " validation tokens (" + split.validation().documentCount() + " documents)");
        } else {
            cli.out.println("data " + data + " (" + tok + "): instruction JSONL");
        }
        cli.out.println(String.format(Locale.ROOT, "%d steps x %d tokens (batch %d x seq %d x accum %d), lr %.2e"
                + " %s, warm-up %d; run folder %s", tc.steps(), tc.tokensPerStep(), batch, t, gradAccum, tc.lr(),
                tc.schedule(), w, outDir));
        if (group.distributed()) {
            cli.out.println("data parallel: " + group.size() + " ranks x " + batch / group.size() + " windows (global"
                    + " batch " + batch + "), one gradient all-reduce per step; rank 0 writes; " + group.describe());
        }
    }

    /** "h.0.attn.c_attn 7/12, ..." : kept triplets per layer of the latest allocation (none before the first). */
    static String ranks(RankAllocator ra) {
        Map<String, boolean[]> p = ra.rankPattern();
        if (p == null) {
            return "no allocation yet (every layer at init_r)";
        }
        List<String> parts = new ArrayList<>();
        int kept = 0;
        int all = 0;
        for (Map.Entry<String, boolean[]> e : p.entrySet()) {
            int k = 0;
            for (boolean b : e.getValue()) {
                k += b ? 1 : 0;
            }
            kept += k;
            all += e.getValue().length;
            parts.add(e.getKey().replace("transformer.", "").replace(".lora_E", "") + " " + k);
        }
        return kept + " of " + all + " triplets kept" + (ra.finalized() ? " (final)" : "") + ": "
                + String.join(", ", parts);
    }

    private LoraDropOptions dropOptions() {
        LoraDropOptions.Grouping g = switch (dropGrouping.toLowerCase(Locale.ROOT)) {
            case "block" -> LoraDropOptions.Grouping.PER_BLOCK;
            case "module" -> LoraDropOptions.Grouping.PER_MODULE;
            default -> throw new UsageException("--drop-grouping must be block or module, got '" + dropGrouping + "'");
        };
        LoraDropOptions.Stage2 st = switch (dropStage2.toLowerCase(Locale.ROOT)) {
            case "restart" -> LoraDropOptions.Stage2.RESTART;
            case "continue" -> LoraDropOptions.Stage2.CONTINUE;
            default -> throw new UsageException("--drop-stage2 must be restart or continue, got '" + dropStage2 + "'");
        };
        if (!(dropSampleFraction > 0 && dropSampleFraction <= 1)) {
            throw new UsageException("--drop-sample-fraction must be in (0, 1], got " + dropSampleFraction);
        }
        if (!(dropThreshold > 0 && dropThreshold <= 1)) {
            throw new UsageException("--drop-threshold must be in (0, 1], got " + dropThreshold);
        }
        return new LoraDropOptions(dropSampleFraction, dropThreshold, g, st);
    }

    static String fmt(EvalResult r) {
        return String.format(Locale.ROOT, "%.4f (perplexity %.2f, %d tokens)", r.loss(), r.perplexity(), r.tokens());
    }

    private void validate() {
        Cli.positive("--r", r);
        Cli.positiveFinite("--alpha", alpha);
        if (!(dropout >= 0 && dropout < 1)) {
            throw new UsageException("--dropout must be in [0, 1), got " + dropout);
        }
        Cli.positiveFinite("--lora-plus-ratio", loraPlusRatio);
        Cli.positive("--vera-r", veraR);
        Cli.positive("--adalora-init-r", adaloraInitR);
        Cli.positive("--adalora-target-r", adaloraTargetR);
        if (adaloraTargetR > adaloraInitR) {
            throw new UsageException("--adalora-target-r " + adaloraTargetR + " must be <= --adalora-init-r " + adaloraInitR);
        }
        Cli.positive("--steps", steps);
        Cli.positive("--batch", batch);
        Method m = Method.parse(method);
        if (m == Method.ADALORA) {
            int ti = adaloraTinit != null ? adaloraTinit : Method.Settings.defaultTinit(steps);
            int tf = adaloraTfinal != null ? adaloraTfinal : Method.Settings.defaultTfinal(steps);
            if (ti < 0 || tf < 0) {
                throw new UsageException("--adalora-tinit and --adalora-tfinal must be >= 0, got " + ti + ", " + tf);
            }
            if (ti >= steps - tf) {
                throw new UsageException("--adalora-tinit " + ti + " must be < --steps - --adalora-tfinal = "
                        + (steps - tf) + " (AdaLoRA needs a budgeting phase between warm-up and the final steps)");
            }
            Cli.positive("--adalora-delta-t", adaloraDeltaT);
            Cli.nonNegative("--adalora-orth-reg", adaloraOrthReg);
        }
        if (m == Method.DELTA_LORA) {
            if (dropout > 0) {
                throw new UsageException("--method delta-lora refuses --dropout " + dropout + ": Delta-LoRA's W update"
                        + " lambda*s*(B'A' - BA) stands in for W's gradient step only when the adapter sees the same,"
                        + " undropped input as W (the paper removes dropout); use --dropout 0");
            }
            Cli.nonNegative("--delta-lambda", deltaLambda);
            if (deltaStart != null && deltaStart < 0) {
                throw new UsageException("--delta-start must be >= 0, got " + deltaStart);
            }
        }
        if (m == Method.LORA_DROP) {
            dropOptions();
            if (dropStage1Steps != null) {
                Cli.positive("--drop-stage1-steps", dropStage1Steps);
            }
        }
        if (lr != null) {
            Cli.positiveFinite("--lr", lr);
        }
        if (warmup != null && warmup < 0) {
            throw new UsageException("--warmup must be >= 0, got " + warmup);
        }
        if (!(minLrRatio >= 0 && minLrRatio <= 1)) {
            throw new UsageException("--min-lr-ratio must be in [0, 1], got " + minLrRatio);
        }
        Cli.nonNegative("--clip", clip);
        Cli.positive("--grad-accum", gradAccum);
        Cli.nonNegative("--weight-decay", weightDecay);
        Cli.nonNegative("--eval-every", evalEvery);
        Cli.nonNegative("--eval-batches", evalBatches);
        Cli.nonNegative("--checkpoint-every", checkpointEvery);
        Cli.positive("--log-every", logEvery);
        if (!(valFraction > 0 && valFraction < 1)) {
            throw new UsageException("--val-fraction must be in (0, 1), got " + valFraction);
        }
        if (target != null && (target.isEmpty() || target.stream().anyMatch(String::isBlank))) {
            throw new UsageException("--target must name modules, got '" + String.join(",", target) + "'");
        }
    }
}
