package ai.lorakit.bench.variants;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The sweep's instruction task (issue 14, deliverable 3; {@code --task brownpos-llama}): the Llama-family default
 * fine-tuned on Brown part-of-speech instructions, one run = {@link InstructionRun#run} with its table settings
 * ({@link InstructionRun.Options#defaults}); the sweep's seeds, methods and lr grids, the same selection rule
 * (best mean validation loss) and report as the text task, plus exact match and tag accuracy. Writes
 * variants-brownpos-llama.{json,md,png}.
 */
final class InstructionTask implements VariantsTable.Task {

    private final VariantsTable.Options o;          // the sweep's: seeds, methods, lrs, out, resume
    private final InstructionRun.Options io;        // the instruction run's: steps, batch, T, eval sizes
    private InstructionRun.Data data;
    private Backend be;

    InstructionTask(VariantsTable.Options o) {
        this.o = o;
        this.io = InstructionRun.Options.defaults(o.work().resolve("brownpos-llama"));
    }

    /** Encodes the data and opens the backend (not needed to re-render a report). */
    InstructionTask open() throws IOException {
        data = InstructionRun.prepare(io);
        be = BackendRegistry.open(io.backend());
        return this;
    }

    @Override
    public String stem() {
        return "variants-brownpos-llama";
    }

    @Override
    public VariantsTable.Options reportOptions() {
        return new VariantsTable.Options("brownpos-llama", io.steps(), io.batch(), io.seqLen(), o.seeds(), methods(),
                o.lrs(), false, io.evalEvery(), (io.curveRows() + io.batch() - 1) / io.batch(),
                (io.evalRows() + io.batch() - 1) / io.batch(), Path.of("default-llama"), io.backend(), o.out(),
                o.work(), o.reportOnly(), o.resume());
    }

    @Override
    public Map<String, Object> config() {
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("data", data.describe());
        cfg.put("model", "default-llama");
        cfg.put("split_seed", InstructionRun.SPLIT_SEED);
        cfg.put("train_documents", data.split().trainFiles().size());
        cfg.put("validation_documents", data.split().validationFiles().size());
        cfg.put("test_documents", data.split().testFiles().size());
        cfg.put("steps", io.steps());
        cfg.put("batch", io.batch());
        cfg.put("seq_len", io.seqLen());
        cfg.put("max_tags", io.maxTags());
        cfg.put("eval_every", io.evalEvery());
        cfg.put("eval_batches", io.curveRows());
        cfg.put("final_eval_batches", io.evalRows());
        cfg.put("gen_prompts", io.genPrompts());
        cfg.put("seeds", o.seeds());
        cfg.put("backend", io.backend());
        VariantsTable.Options ro = reportOptions();
        cfg.put("lr_grid", ro.methods().stream().collect(java.util.stream.Collectors.toMap(m -> m, ro::grid,
                (a, b) -> a, LinkedHashMap::new)));
        return cfg;
    }

    @Override
    public List<String> methods() {
        return o.methods();
    }

    @Override
    public RunRecord run(VariantsTable.Job job) throws IOException {
        InstructionRun.Result r = InstructionRun.run(job.method(), job.lr(), job.seed(), io, data, be);
        return new RunRecord(r.method(), r.seed(), r.lr(), io.steps(), r.trainable(), 0, 0, r.valLoss(),
                Math.exp(r.valLoss()), 0, r.trainS() > 0 ? io.steps() / r.trainS() : 0, r.tokensPerS(), r.wallS(),
                r.peakHeapMiB(), r.peakRssMiB(), 0, r.valCurve(), List.of(), r.note(), r.testLoss(), 0, "", r.exactMatch(),
                r.tagAccuracy());
    }

    @Override
    public void warmUp() throws IOException {
        InstructionRun.run(ai.lorakit.cli.Method.LORA, 1e-3, o.seeds().getFirst(), io.withSteps(10), data, be);
    }

    @Override
    public VariantsReport.Text text() {
        String intro = String.format(Locale.ROOT, "Every method fine-tunes the embedded Llama-family default base model"
                + " (`--model default-llama`, pretrained by lorakit on Brown non-fiction) on part-of-speech"
                + " instructions built from the tagged Brown fiction (prompt: a sentence, completion: its tags;"
                + " InstructionRun, BrownPosSplit), with matched settings: %d optimizer steps of batch %d rows of %d"
                + " tokens, loss on the completion tokens only, the same file splits, the same rows and the same"
                + " evaluation sets, %d seed%s (%s), CPU backend. Each method's learning rate is swept over the same"
                + " log grids as the Brown-fiction table (variants-brown.md); the lr with the best mean VALIDATION"
                + " loss is chosen and its TEST loss reported, with the exact-match accuracy and tag accuracy of greedy"
                + " generation on held-out test prompts. Losses are in nats per completion token. Generated by"
                + " `VariantsTable --task brownpos-llama` through benchmarks/variants-sweep.sh; raw numbers of every"
                + " run in variants-brownpos-llama.json, validation-loss curves at the chosen lrs in"
                + " variants-brownpos-llama.png.", io.steps(), io.batch(), io.seqLen(), o.seeds().size(),
                o.seeds().size() > 1 ? "s" : "", String.join(", ", o.seeds().stream().map(String::valueOf).toList()));
        String evalNote = String.format(Locale.ROOT, "on the first %d validation rows and the first %d test rows"
                + " (completion tokens only)", io.evalRows(), io.evalRows());
        String settings = String.format(Locale.ROOT, "- Data: %s. Split by Brown file, split seed %d (10 %% of the"
                + " files test, 10 %% validation).%n"
                + "- Learning rates: the grids of VariantsTable.GRID (as the Brown-fiction table), plus one point above"
                + " for full, LoRA, LoRA-FA, DoRA, VeRA and LoRA-drop, whose first sweep here chose their top point"
                + " (VariantsTable.INSTRUCTION_GRID, run with --resume true).%n"
                + "- Schedule: %d steps, batch %d x %d tokens, warm-up steps/10 then cosine to 10 %% of the peak,"
                + " AdamW, no weight decay, clip 1.0; adapters as `lorakit train --model default-llama --method M`"
                + " configures them (Method.Settings.defaults with the Llama family's default targets); LoRA-drop as"
                + " in the Brown-fiction table, its stage 1 on a sample of the training examples (InstructionRun).%n"
                + "- Throughput: real (non-padding) training tokens per second; LoRA-drop's stage 1 not included.%n"
                + "- Evaluation: every %d steps on the first %d validation rows (the curves); after training the"
                + " completion-token loss on %d validation rows (chooses the lr) and %d test rows (reported), and"
                + " greedy generation on %d test prompts (exact match and tag accuracy).%n",
                data == null ? "Brown fiction POS instructions" : data.describe(), InstructionRun.SPLIT_SEED,
                io.steps(), io.batch(), io.seqLen(), io.evalEvery(), io.curveRows(), io.evalRows(), io.evalRows(),
                io.genPrompts());
        return new VariantsReport.Text("Variants table: fine-tuning the Llama-family default on Brown part-of-speech"
                + " instructions", intro, evalNote, settings, stem(), "", true);
    }

    @Override
    public String plotData() {
        return "Brown POS instructions (default-llama)";
    }

    @Override
    public boolean checksSchedules() {
        return false;
    }

    @Override
    public void close() {
        if (be != null) {
            be.close();
        }
    }
}
