package ai.lorakit.bench.variants;

import ai.lorakit.cli.Method;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Writes the variants table's raw JSON and its Markdown report. Each method is reported at its chosen lr
 * ({@link #chosenLr}: the best mean validation loss over the seeds); the comparison with the papers is computed
 * from the TEST losses at the chosen lrs (so a rerun rewrites it consistently): a difference smaller than the tie
 * band τ is called a tie; τ = max(0.01 nats, 2 x the standard deviation of LoRA's test loss over the seeds).
 */
final class VariantsReport {

    private static final JsonMapper JSON = JsonMapper.builder().enable(SerializationFeature.INDENT_OUTPUT).build();

    /** The papers' claims, per method (issue 4's list, with the papers' own numbers where we have them). */
    private static final Map<String, String> CLAIMS = Map.of(
            "full", "LoRA (Hu et al. 2021): LoRA matches or beats full fine-tuning with far fewer trainable parameters",
            "lora-plus", "LoRA+ (Hayou et al. 2024): B's learning rate 16x A's converges faster (up to ~2x) and 1-2 % better",
            "lora-fa", "LoRA-FA (Zhang et al. 2023): A frozen, half of LoRA's trainable parameters, quality close to LoRA",
            "dora", "DoRA (Liu et al. 2024): magnitude/direction split, >= LoRA at the same rank, at some extra cost",
            "vera", "VeRA (Kopiczko et al. 2024): ~10x fewer trainable parameters than LoRA, slightly worse or on par",
            "adalora", "AdaLoRA (Zhang et al. 2023): adaptive rank budget, >= LoRA at the same final budget",
            "delta-lora", "Delta-LoRA (Zi et al. 2023): also moving W by the adapter's change, >= LoRA at LoRA's memory",
            "lora-drop", "LoRA-drop (Zhou et al. 2024): ~half of LoRA's parameters at similar loss");

    /**
     * What bounds each method at this scale: mechanisms that follow from the method and the settings, not from the
     * measured numbers (which the verdicts report).
     */
    private static final Map<String, String> MECHANISMS = Map.of(
            "lora-plus", "B's learning rate is 16 x the base rate: the authors' reference code advises pairing a"
                    + " large ratio with a ~2x smaller base rate than plain LoRA's; the sweep chooses the base rate"
                    + " with the ratio fixed at 16.",
            "adalora", "ΔW = P Λ Q · alpha/init_r starts from Λ = 0 and Adam moves each λ by at most about the"
                    + " learning rate per step, so ΔW's singular values (alpha/init_r)·|λ| grow about linearly with"
                    + " the lr in a short run (the largest |Λ| is in the per-method facts above), while the"
                    + " orthogonality term makes P and Q orthonormal early; LoRA's B moves against a random A whose"
                    + " rows already have a useful size. Hence AdaLoRA's best lr lies above LoRA's (issue 14: at"
                    + " LoRA's 1e-3 it hardly moved in 150 steps); the paper trains for thousands of steps.",
            "vera", "Only the scaling vectors train (frozen shared random A [256, in_max], B [out_max, 256]); the"
                    + " saved adapter includes those projections, hence its size.",
            "delta-lora", "W moves by λ·s·(B'A' − BA) after each step past K, i.e. the effective update of the merged"
                    + " weight is (1 + λ) times LoRA's from step K on, with gradients computed at the LoRA scale; at"
                    + " a fixed learning rate it behaves partly like a larger step size.",
            "lora-drop", "T = 0.9 ties only the least important modules whose importance shares sum below 1 − T ="
                    + " 0.1: the fewer the modules (16 here) and the more evenly the importance is spread, the less"
                    + " it can drop.",
            "lora-fa", "A stays at its random init, so ΔW = s·B·A only ever acts on the fixed r-dimensional row space"
                    + " of A (the input directions A happens to pick); in exchange A needs no gradient and no optimizer"
                    + " state.",
            "dora", "The magnitude vector adds out parameters per module and a column-norm pass per step.",
            "full", "Full fine-tuning updates every weight, including the embeddings.");

    private VariantsReport() {
    }

    /** What {@link #readJson} recovers from a variants-brown.json. */
    record Saved(String command, String started, double totalS, Map<String, Object> machine,
                 Map<String, Object> config, List<RunRecord> runs) {
    }

    /** Reads a variants-brown.json back (to re-render the report without training again). */
    @SuppressWarnings("unchecked")
    static Saved readJson(Path file) throws IOException {
        com.fasterxml.jackson.databind.JsonNode root = JSON.readTree(file.toFile());
        List<RunRecord> runs = new ArrayList<>();
        for (com.fasterxml.jackson.databind.JsonNode n : root.get("runs")) {
            runs.add(JSON.treeToValue(n, RunRecord.class));
        }
        return new Saved(root.get("command").asText(), root.get("started").asText(), root.get("total_s").asDouble(),
                JSON.convertValue(root.get("machine"), LinkedHashMap.class),
                JSON.convertValue(root.get("config"), LinkedHashMap.class), runs);
    }

    /**
     * Refuses to resume a sweep whose JSON was written with other settings (its runs would not be comparable), naming
     * the difference and the remedy.
     */
    static void checkResumable(Path file, Map<String, Object> saved, Map<String, Object> now) {
        Map<String, Object> want = JSON.convertValue(now, LinkedHashMap.class);   // same number types as read back
        for (String k : List.of("data", "model", "train_documents", "validation_documents", "test_documents", "steps",
                "batch", "seq_len", "eval_every", "eval_batches", "final_eval_batches", "backend")) {
            Object a = saved == null ? null : saved.get(k);
            if (!java.util.Objects.equals(a, want.get(k))) {
                throw new IllegalArgumentException(file + " was written with " + k + " " + a + ", this run has "
                        + want.get(k) + ": rerun with that file's settings, or pass --resume false to start over");
            }
        }
    }

    /** The JSON's config block: the data split and the shared settings. */
    static Map<String, Object> config(VariantsTable.Options o, BenchSetup.Splits split) {
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("data", "brown:fiction");
        cfg.put("model", o.model() == null ? "default" : o.model().toString());
        cfg.put("split_seed", VariantsTable.SPLIT_SEED);
        cfg.put("train_documents", split.train().documentCount());
        cfg.put("train_tokens", split.train().tokenCount());
        cfg.put("validation_documents", split.validation().documentCount());
        cfg.put("validation_tokens", split.validation().tokenCount());
        cfg.put("test_documents", split.test().documentCount());
        cfg.put("test_tokens", split.test().tokenCount());
        cfg.put("steps", o.steps());
        cfg.put("batch", o.batch());
        cfg.put("seq_len", o.seqLen());
        cfg.put("seeds", o.seeds());
        cfg.put("eval_every", o.evalEvery());
        cfg.put("eval_batches", o.evalBatches());
        cfg.put("final_eval_batches", o.finalEvalBatches());
        cfg.put("backend", o.backend());
        cfg.put("lr_grid", o.methods().stream().collect(java.util.stream.Collectors.toMap(m -> m, o::grid,
                (a, b) -> a, LinkedHashMap::new)));
        return cfg;
    }

    /** Writes the JSON atomically (temp file + rename), so an interrupted write keeps the previous version. */
    static void writeJson(Path file, String command, Map<String, Object> machine, String started,
                          Map<String, Object> config, List<RunRecord> runs, double totalS) throws IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("command", command);
        root.put("started", started);
        root.put("total_s", totalS);
        root.put("machine", machine);
        root.put("config", config);
        root.put("runs", runs);
        Path tmp = file.resolveSibling(file.getFileName() + ".tmp");
        Files.writeString(tmp, JSON.writeValueAsString(root) + "\n", StandardCharsets.UTF_8);
        Files.move(tmp, file, java.nio.file.StandardCopyOption.REPLACE_EXISTING,
                java.nio.file.StandardCopyOption.ATOMIC_MOVE);
    }

    /**
     * The sweep's choice per method: the lr with the lowest mean validation loss over the seeds, among the
     * default-schedule runs and the lrs with the most seeds done (a partial sweep does not pick a one-seed lr).
     */
    static Map<String, Double> chosenLr(List<RunRecord> runs) {
        Map<String, Double> out = new LinkedHashMap<>();
        grid(runs).forEach((m, byLr) -> {
            int most = byLr.values().stream().mapToInt(List::size).max().orElse(0);
            byLr.entrySet().stream().filter(e -> e.getValue().size() == most)
                    .min(java.util.Comparator.comparingDouble(e -> meanVal(e.getValue())))
                    .ifPresent(e -> out.put(m, e.getKey()));
        });
        return out;
    }

    /** method -> lr (ascending) -> its default-schedule runs, in run order. */
    static Map<String, java.util.TreeMap<Double, List<RunRecord>>> grid(List<RunRecord> runs) {
        Map<String, java.util.TreeMap<Double, List<RunRecord>>> g = new LinkedHashMap<>();
        for (RunRecord r : runs) {
            if (r.schedule() == null || r.schedule().isEmpty()) {
                g.computeIfAbsent(r.method(), k -> new java.util.TreeMap<>()).computeIfAbsent(r.lr(),
                        k -> new ArrayList<>()).add(r);
            }
        }
        return g;
    }

    /** The default-schedule runs at each method's chosen lr, in method order. */
    static List<RunRecord> chosenRuns(List<RunRecord> runs) {
        Map<String, Double> lr = chosenLr(runs);
        List<RunRecord> out = new ArrayList<>();
        grid(runs).forEach((m, byLr) -> out.addAll(byLr.get(lr.get(m))));
        return out;
    }

    private static double meanVal(List<RunRecord> rs) {
        return rs.stream().mapToDouble(RunRecord::valLoss).average().orElse(Double.NaN);
    }

    private static double sd(List<RunRecord> rs, java.util.function.ToDoubleFunction<RunRecord> f) {
        double m = mean(rs, f);
        return rs.size() < 2 ? 0 : Math.sqrt(rs.stream().mapToDouble(r -> (f.applyAsDouble(r) - m)
                * (f.applyAsDouble(r) - m)).sum() / (rs.size() - 1));
    }

    /**
     * One method at its chosen lr, mean over the seeds: {@code loss} is the TEST loss (the verdicts use it),
     * {@code val} the validation loss that chose the lr. Throughput, memory and wall time are over ALL the method's
     * sweep runs (every lr and seed: more samples of the same work on a shared machine; memory: the peak).
     */
    record Row(String method, int n, double lr, boolean edge, long trainable, long saved, double loss, double lossSd,
               double val, double valSd, double ppl, double stepsPerS, double tokensPerS, double heap, double rss,
               double wall, String notes, List<double[]> curve, Double exactMatch, Double tagAccuracy) {
    }

    static Map<String, Row> rows(List<RunRecord> runs) {
        Map<String, Double> chosen = chosenLr(runs);
        Map<String, double[][]> curves = LossPlot.meanCurves(chosenRuns(runs));
        Map<String, Row> out = new LinkedHashMap<>();
        grid(runs).forEach((m, byLr) -> {
            List<RunRecord> rs = byLr.get(chosen.get(m));
            List<RunRecord> all = byLr.values().stream().flatMap(List::stream).toList();
            double loss = mean(rs, RunRecord::testLoss);
            double[][] c = curves.get(m);
            List<double[]> curve = new ArrayList<>();
            for (int i = 0; i < c[0].length; i++) {
                curve.add(new double[]{c[0][i], c[1][i]});
            }
            boolean edge = byLr.size() > 1 && (chosen.get(m).equals(byLr.firstKey())
                    || chosen.get(m).equals(byLr.lastKey()));
            out.put(m, new Row(m, rs.size(), chosen.get(m), edge, rs.getFirst().trainable(),
                    rs.getFirst().savedParams(), loss, sd(rs, RunRecord::testLoss), meanVal(rs),
                    sd(rs, RunRecord::valLoss), Math.exp(loss), mean(all, RunRecord::stepsPerS),
                    mean(all, RunRecord::tokensPerS), all.stream().mapToDouble(RunRecord::peakHeapMiB).max().orElse(0),
                    all.stream().mapToDouble(RunRecord::peakRssMiB).max().orElse(0), mean(rs, RunRecord::wallS),
                    rs.getFirst().notes(), curve,
                    rs.getFirst().exactMatch() == null ? null : mean(rs, RunRecord::exactMatch),
                    rs.getFirst().tagAccuracy() == null ? null : mean(rs, RunRecord::tagAccuracy)));
        });
        return out;
    }

    private static double mean(List<RunRecord> rs, java.util.function.ToDoubleFunction<RunRecord> f) {
        return rs.stream().mapToDouble(f).average().orElse(Double.NaN);
    }

    /**
     * The task-specific parts of a report: its title, opening paragraph, the "Matched settings" bullets, the file stem
     * (e.g. "variants-brown"), a sentence on what the task cannot run (or ""), and whether rows carry the instruction
     * metrics (exact match, tag accuracy).
     */
    record Text(String title, String intro, String evalNote, String settings, String stem, String unsupported,
                boolean instruction) {
    }

    /** The GPT-2 default on Brown fiction (VariantsTable's text task). */
    static Text brownText(VariantsTable.Options o, String modelText) {
        String intro = String.format(Locale.ROOT, "Every method fine-tunes %s on the fiction genres of the Brown corpus,"
                + " with matched settings: %d optimizer steps of batch %d x %d tokens, the same document splits, the"
                + " same training windows and the same evaluation sets, %d seed%s (%s), CPU backend. Each method's"
                + " learning rate is swept over a log grid; the lr with the best mean VALIDATION loss is chosen and"
                + " its TEST loss reported (train, validation and test are disjoint sets of documents). Losses are in"
                + " nats per token (per byte: the tokenizer is byte-level). Generated by `VariantsTable`"
                + " (benchmarks/src/main/java/ai/lorakit/bench/variants) through benchmarks/variants-sweep.sh; raw"
                + " numbers and curves of every run in variants-brown.json, validation-loss curves at the chosen lrs"
                + " in variants-brown.png.",
                modelText, o.steps(), o.batch(), o.seqLen(), o.seeds().size(), o.seeds().size() > 1 ? "s" : "",
                String.join(", ", o.seeds().stream().map(String::valueOf).toList()));
        String settings = String.format(Locale.ROOT, "- Data: Brown fiction (categories k-r) split by document, split"
                + " seed %d for every run: %.0f %% of the documents are the test split, %.0f %% of them the validation"
                + " split (BenchSetup.brownFictionSplits), the rest trains; training windows drawn by the Trainer's"
                + " sampler from the run seed, so every method of a seed sees the same windows; the seed also draws the"
                + " adapter inits.%n"
                + "- Learning rates: each method's grid (VariantsTable.GRID) is four points of the 1-3 log ladder,"
                + " one below to two above its CLI default before this sweep (1e-3; VeRA 1e-2; full 3e-4); AdaLoRA"
                + " five points from 1e-3 to 1e-1 (issue 14 found it still improving at 3e-2); LoRA-FA one more, 3e-2,"
                + " added (with --resume true) after the first sweep chose its top point 1e-2. The CLI's --lr defaults"
                + " (Method.defaultLr) are now the chosen lrs of this table.%n"
                + "- Schedule: %d steps, batch %d x %d tokens, linear warm-up %d steps then cosine to 10 %% of the peak,"
                + " AdamW (β 0.9/0.999, eps 1e-8, no weight decay), gradient-norm clip 1.0, no dropout.%n"
                + "- Adapters as `lorakit train` configures them (Method.Settings.defaults): r 8, alpha 16 on"
                + " c_attn, c_proj (attention and MLP) and c_fc. LoRA+ ratio 16."
                + " VeRA r 256, d_initial 0.1. AdaLoRA init_r 12 -> target_r 8 (the same final average rank as"
                + " LoRA), tinit %d, tfinal %d, deltaT 10, orth_reg 0.5 (PEFT's form). Delta-LoRA λ 2, K = steps/4 ="
                + " %d. LoRA-drop α 0.1 (stage 1 on 10 %% of the training documents for %d steps), T 0.9, ranked PER"
                + " MODULE (the CLI's default is per block, but in a trial run the least important of the 4 blocks"
                + " held 18 %% of the importance, more than 1 − T, so nothing could be dropped; the paper ranks LoRA"
                + " modules individually), stage 2 restarts from fresh adapters; its stage-2 run is the table's row"
                + " and its wall time includes stage 1 and the importance pass.%n"
                + "- Evaluation: every %d steps on the first %d validation batches (the curves), after training on the"
                + " first %d batches of the validation split (chooses the lr) and of the test split (reported).%n",
                VariantsTable.SPLIT_SEED, 100 * BenchSetup.TEST_FRACTION, 100 * BenchSetup.VAL_FRACTION, o.steps(),
                o.batch(), o.seqLen(), Math.min(100, o.steps() / 10),
                o.steps() / 10, o.steps() / 5, Math.min(500, o.steps() / 4),
                Math.min(o.steps(), Math.max(10, (int) Math.ceil(0.1 * o.steps()))), o.evalEvery(), o.evalBatches(),
                o.finalEvalBatches());
        String evalNote = String.format(Locale.ROOT, "on the first %d batches of each split (%,d tokens)",
                o.finalEvalBatches(), (long) o.finalEvalBatches() * o.batch() * o.seqLen());
        return new Text("Variants table: fine-tuning lorakit's default base model on Brown fiction", intro, evalNote,
                settings, "variants-brown", "", false);
    }

    static void writeMarkdown(Path file, String command, Map<String, Object> machine, String started,
                              VariantsTable.Options o, List<RunRecord> runs, double totalS, Text text)
            throws IOException {
        Map<String, Row> rows = rows(runs);
        Row lora = rows.get("lora");
        Row full = rows.get("full");
        double tau = lora == null ? 0.01 : Math.max(0.01, 2 * lora.lossSd());
        StringBuilder md = new StringBuilder();
        md.append("# ").append(text.title()).append("\n\n").append(text.intro()).append("\n\n");
        md.append("## Result\n\n");
        md.append(String.format(Locale.ROOT, "Chosen lr: the grid point with the lowest mean validation loss (below);"
                + " † = at the edge of the grid. Test and validation loss: after training, %s, mean ± sd over the seeds"
                + " at the chosen lr.%s Δ vs LoRA: test loss, negative ="
                + " better than LoRA. Throughput: training steps only (evaluations and checkpoints excluded), mean over"
                + " all the method's sweep runs, every method in the same JVM and interleaved in time (seed, lr, method),"
                + " on a 2-core machine whose load averages at the start and the end are under Machine and date (other"
                + " processes may have shared the cores): compare the columns only roughly"
                + " (benchmarks/results/cpu-peer.md measures speed on its own). Memory: peak heap used (tensors live"
                + " in float[] on the heap with the CPU backend) and peak resident set of the JVM, sampled every 20 ms,"
                + " the maximum over the method's sweep runs. Wall s: one run at the chosen lr.%n%n",
                text.evalNote(), text.instruction() ? " Exact match: share of the held-out test prompts whose greedy"
                        + " completion equals the gold tag sequence; tag accuracy: position-wise share of the gold"
                        + " tags generated (both mean over the seeds)." : ""));
        md.append("| method | chosen lr | trainable params | % of full |" + (text.instruction() ? ""
                : " saved adapter params |") + " test loss | test perplexity | Δ vs LoRA | val loss |"
                + (text.instruction() ? " exact match | tag accuracy |" : "")
                + " steps/s | tokens/s | peak heap MiB | peak RSS MiB | wall s |\n");
        md.append("|---|---|---:|---:|" + (text.instruction() ? "" : "---:|") + "---:|---:|---:|---:|"
                + (text.instruction() ? "---:|---:|" : "") + "---:|---:|---:|---:|---:|\n");
        for (Row r : rows.values()) {
            md.append(String.format(Locale.ROOT, "| %s | %s%s | %,d | %s |%s %s | %.3f | %s | %s |%s %.2f | %,.0f |"
                            + " %.0f | %.0f | %.0f |%n", r.method(), lr(r.lr()), r.edge() ? " †" : "", r.trainable(),
                    full == null ? "?" : String.format(Locale.ROOT, "%.2f%%", 100.0 * r.trainable() / full.trainable()),
                    text.instruction() ? "" : String.format(Locale.ROOT, " %,d |", r.saved()),
                    pm(r.loss(), r.lossSd(), r.n()), r.ppl(),
                    lora == null || r == lora ? "–" : String.format(Locale.ROOT, "%+.4f", r.loss() - lora.loss()),
                    pm(r.val(), r.valSd(), r.n()), text.instruction() ? String.format(Locale.ROOT, " %.3f | %.3f |",
                            nz(r.exactMatch()), nz(r.tagAccuracy())) : "",
                    r.stepsPerS(), r.tokensPerS(), r.heap(), r.rss(), r.wall()));
        }
        if (!text.unsupported().isEmpty()) {
            md.append('\n').append(text.unsupported()).append('\n');
        }
        if (rows.values().stream().anyMatch(r -> !r.notes().isEmpty())) {
            md.append("\nPer-method facts (at the chosen lr, seed ").append(o.seeds().getFirst()).append("):\n\n");
        }
        for (Row r : rows.values()) {
            if (!r.notes().isEmpty()) {
                md.append("- **").append(r.method()).append("**: ").append(r.notes()).append('\n');
            }
        }
        appendSweep(md, runs, o);
        appendSchedules(md, runs, tau);
        md.append("\n## Against the papers\n\n");
        md.append(String.format(Locale.ROOT, "Each method at its chosen lr, on the test split. Tie band τ = %.3f nats"
                + " (max of 0.01 and twice the standard deviation of LoRA's test loss over the seeds, which share the"
                + " data split): smaller differences are not called a win or a loss. The papers fine-tune 100 M -"
                + " 7 B parameter models on GLUE, E2E, commonsense or instruction data for thousands of steps and report"
                + " task metrics; this is a %.1f M parameter model, %d steps, one small corpus, and the verdicts"
                + " read one metric (test loss%s), so where the verdict below says \"differs\" that is the small-scale"
                + " result, not a refutation.%n%n", tau, full == null ? Double.NaN : full.trainable() / 1e6, o.steps(),
                text.instruction() ? "; exact match and tag accuracy are reported beside it" : ""));
        md.append("| method | paper's claim | measured here | verdict |\n|---|---|---|---|\n");
        Map<String, List<String>> verdicts = new LinkedHashMap<>();
        for (Row r : rows.values()) {
            if (r.method().equals("lora") || lora == null) {
                continue;
            }
            String[] mv = verdict(r, lora, full, rows, tau);
            md.append("| ").append(r.method()).append(" | ").append(CLAIMS.getOrDefault(r.method(), "")).append(" | ")
                    .append(mv[0]).append(" | ").append(mv[1]).append(" |\n");
            verdicts.computeIfAbsent(closing(mv[1]), k -> new ArrayList<>()).add(r.method());
        }
        if (!verdicts.isEmpty()) {
            md.append("\nClosing note, at this scale with every method at its own best lr: ");
            md.append(String.join("; ", verdicts.entrySet().stream().map(e -> e.getKey() + ": "
                    + String.join(", ", e.getValue())).toList())).append(".\n");
        }
        md.append("\nWhat bounds each method at this scale (mechanisms, independent of the measured numbers):\n\n");
        for (Row r : rows.values()) {
            String why = MECHANISMS.get(r.method());
            if (why != null) {
                md.append("- **").append(r.method()).append("**: ").append(why).append('\n');
            }
        }
        md.append("\n## Matched settings\n\n").append(text.settings()).append('\n');
        md.append("## Command\n\n```\ncd /work/main && benchmarks/variants-sweep.sh\n```\n\nwhich builds the"
                + " benchmarks jar and runs (for this table)\n\n```\n"
                + "java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \\\n"
                + "     -cp benchmarks/target/benchmarks.jar ai.lorakit.bench.variants.VariantsTable")
                .append(command.substring(command.indexOf("VariantsTable") + "VariantsTable".length()))
                .append("\n```\n\n");
        Object sessions = machine.get("sessions");
        md.append(String.format(Locale.ROOT, "Total wall time %.0f s (%.1f min) for %d runs%s.%s%n%n", totalS,
                totalS / 60, runs.size(), sessions == null ? "" : " over " + sessions + " sessions (resumed with"
                        + " --resume true; the time is their sum)",
                o.reportOnly() ? " This report and the PNG were re-rendered from that run's " + text.stem() + ".json with"
                        + " the same command plus `--report-only true` (no training)." : ""));
        md.append("## Machine and date\n\n");
        md.append("- Started ").append(started).append('\n');
        machine.forEach((k, v) -> md.append("- ").append(k.replace('_', ' ')).append(": ").append(v).append('\n'));
        md.append("- Speeds move with the machine's load (above); compare rows of one run only.\n");
        Files.writeString(file, md.toString(), StandardCharsets.UTF_8);
    }

    /** The sweep: mean validation loss per method and lr (the chosen one in bold), and the test loss there. */
    private static void appendSweep(StringBuilder md, List<RunRecord> runs, VariantsTable.Options o) {
        Map<String, java.util.TreeMap<Double, List<RunRecord>>> g = grid(runs);
        java.util.TreeSet<Double> lrs = new java.util.TreeSet<>();
        g.values().forEach(m -> lrs.addAll(m.keySet()));
        Map<String, Double> chosen = chosenLr(runs);
        md.append("\n## Learning-rate sweep\n\nMean validation loss over the seeds per lr (blank: not in the method's"
                + " grid); bold: the chosen lr. The row's last cell is the test loss at the chosen lr.\n\n| method |");
        lrs.forEach(x -> md.append(' ').append(lr(x)).append(" |"));
        md.append(" test loss at chosen |\n|---|");
        lrs.forEach(x -> md.append("---:|"));
        md.append("---:|\n");
        g.forEach((m, byLr) -> {
            md.append("| ").append(m).append(" |");
            for (double x : lrs) {
                List<RunRecord> rs = byLr.get(x);
                String v = rs == null ? "" : String.format(Locale.ROOT, "%.4f", meanVal(rs))
                        + (rs.stream().anyMatch(r -> !Double.isFinite(r.valLoss())) ? " (diverged)" : "")
                        + (rs.size() < o.seeds().size() ? " ¹" : "");
                md.append(' ').append(chosen.get(m) == x ? "**" + v + "**" : v).append(" |");
            }
            md.append(String.format(Locale.ROOT, " %.4f |%n", mean(byLr.get(chosen.get(m)), RunRecord::testLoss)));
        });
        long planned = o.methods().stream().mapToLong(m -> o.grid(m).size()).sum() * o.seeds().size();
        long ran = g.values().stream().mapToLong(m -> m.values().stream().mapToLong(List::size).sum()).sum();
        if (ran < planned) {
            md.append(String.format(Locale.ROOT, "%nINCOMPLETE: %d of the %d planned sweep runs ran (stopped at the"
                    + " session's deadline). ¹ = fewer seeds than planned. Seeds after the first run each method's lrs"
                    + " best first (by the first seed's validation loss), and the lr is chosen among the lrs with the"
                    + " most seeds, so a chosen lr with all seeds beat the others on the first seed and on the mean.%n",
                    ran, planned));
        }
    }

    /** AdaLoRA's schedule check at its chosen lr: the default schedule's runs against the others. */
    private static void appendSchedules(StringBuilder md, List<RunRecord> runs, double tau) {
        Double lr = chosenLr(runs).get("adalora");
        Map<String, List<RunRecord>> by = new LinkedHashMap<>();
        for (RunRecord r : runs) {
            if (r.method().equals("adalora") && lr != null && r.lr() == lr) {
                by.computeIfAbsent(r.schedule().isEmpty() ? "default: " + defaultSchedule(r) : r.schedule(),
                        k -> new ArrayList<>()).add(r);
            }
        }
        if (by.size() < 2) {
            return;
        }
        md.append(String.format(Locale.ROOT, "%n## AdaLoRA's schedule defaults%n%nAt AdaLoRA's chosen lr %s, the"
                + " default schedule (tinit steps/10, tfinal steps/5, deltaT 10) against PEFT's defaults (prune from"
                + " the first step, every step, to the end), a later and longer one, and rarer allocations. Mean ± sd"
                + " over the seeds; chosen on validation like the lr.%n%n| schedule | val loss | test loss | Δ val vs"
                + " default |%n|---|---:|---:|---:|%n", lr(lr)));
        List<RunRecord> def = by.values().iterator().next();
        by.forEach((k, rs) -> md.append(String.format(Locale.ROOT, "| %s | %s | %s | %+.4f |%n", k,
                pm(meanVal(rs), sd(rs, RunRecord::valLoss), rs.size()), pm(mean(rs, RunRecord::testLoss),
                        sd(rs, RunRecord::testLoss), rs.size()), meanVal(rs) - meanVal(def))));
        Map.Entry<String, List<RunRecord>> best = by.entrySet().stream()
                .min(java.util.Comparator.comparingDouble(e -> meanVal(e.getValue()))).orElseThrow();
        double gain = meanVal(def) - meanVal(best.getValue());
        md.append(String.format(Locale.ROOT, "%nBest on validation: %s. %s%n", best.getKey(), gain > tau
                ? String.format(Locale.ROOT, "It beats the default by %.4f nats, more than τ = %.3f.", gain, tau)
                : String.format(Locale.ROOT, "No schedule beats the default by more than τ = %.3f nats, so the CLI"
                        + " keeps it.", tau)));
    }

    private static String defaultSchedule(RunRecord r) {
        int s = r.steps();
        return VariantsTable.scheduleName(new int[]{Method.Settings.defaultTinit(s), Method.Settings.defaultTfinal(s),
            Method.Settings.DEFAULT_DELTA_T});
    }

    private static double nz(Double x) {
        return x == null ? Double.NaN : x;
    }

    private static String pm(double mean, double sd, int n) {
        return n > 1 ? String.format(Locale.ROOT, "%.4f ± %.4f", mean, sd) : String.format(Locale.ROOT, "%.4f", mean);
    }

    private static String lr(double lr) {
        return String.format(Locale.ROOT, "%.0e", lr);
    }

    /** The closing note's class of a verdict: the claim holds, ties (no gain visible), holds partly, or differs. */
    static String closing(String verdict) {
        if (verdict.startsWith("ties")) {
            return "the claimed gain over LoRA is not visible (a tie)";
        }
        if (verdict.startsWith("partly") || verdict.contains("hold") && verdict.contains("differ")) {
            return "the claim holds in part";
        }
        return verdict.startsWith("differ") ? "the claim does not hold" : "the claim holds";
    }

    /** {measured, verdict} for one method against LoRA (and full fine-tuning for its own row). */
    static String[] verdict(Row r, Row lora, Row full, Map<String, Row> rows, double tau) {
        double d = r.loss() - lora.loss();                 // > 0: worse than LoRA
        String vsLora = cmp(d, tau, "LoRA");
        String params = String.format(Locale.ROOT, "%,d trainable (%.2fx LoRA's %,d)", r.trainable(),
                (double) r.trainable() / lora.trainable(), lora.trainable());
        return switch (r.method()) {
            case "full" -> {
                double dl = lora.loss() - r.loss();        // > 0: LoRA worse than full
                String m = String.format(Locale.ROOT, "LoRA %.4f vs full %.4f (%+.4f) with %.1f%% of full's trainable"
                        + " parameters", lora.loss(), r.loss(), dl, 100.0 * lora.trainable() / r.trainable());
                yield new String[]{m, dl <= tau ? (dl < -tau ? "holds: LoRA beats full fine-tuning here"
                        : "holds: LoRA within the tie band of full fine-tuning")
                        : "differs: full fine-tuning is better by " + fmt(dl) + " at this scale"};
            }
            case "lora-plus" -> {
                double last = lora.curve().getLast()[0];
                int reach = stepsToReach(r.curve(), lora.curve().getLast()[1]);
                int behind = lastStepBehind(r.curve(), lora.curve());
                String m = String.format(Locale.ROOT, "%s; reaches LoRA's final curve loss %.4f %s; %s", vsLora,
                        lora.curve().getLast()[1], reach < 0 ? "never within the run"
                                : String.format(Locale.ROOT, "at step %d of %d (%.2fx fewer steps)", reach, (int) last,
                                last / reach), behind < 0 ? "never behind LoRA's curve"
                                : "behind LoRA's curve up to step " + behind);
                boolean faster = reach >= 0 && reach < last;
                yield new String[]{m, !faster ? "differs: no faster convergence at this scale"
                        : behind < 0 ? "holds: converges faster" + (d < -tau ? " and ends better" : "")
                        : String.format(Locale.ROOT, "partly: slower than LoRA up to step %d, faster after it (fewer"
                                + " steps to LoRA's final loss)%s", behind, d > tau ? ", but ends worse" : "")};
            }
            case "vera", "lora-fa", "lora-drop" -> {
                double ratio = (double) lora.trainable() / r.trainable();
                String m = params + "; " + vsLora;
                String want = switch (r.method()) {
                    case "vera" -> String.format(Locale.ROOT, "parameters %s (%.0fx fewer)", ratio >= 5 ? "hold"
                            : "differ", ratio);
                    case "lora-fa" -> String.format(Locale.ROOT, "parameters %s (%.0f%% of LoRA's)",
                            Math.abs(1 / ratio - 0.5) < 0.15 ? "hold" : "differ", 100 / ratio);
                    default -> String.format(Locale.ROOT, "parameters %s (%.0f%% of LoRA's)",
                            1 / ratio <= 0.7 ? "hold" : "differ: the selection kept most modules", 100 / ratio);
                };
                String quality = r.method().equals("vera")
                        ? (d > tau ? "; quality holds: slightly worse than LoRA (" + fmt(d) + "), as the paper reports"
                        : "; quality: as good as LoRA (the paper: slightly worse)")
                        : (d > tau ? "; quality differs: worse than LoRA by " + fmt(d)
                        : "; quality holds: at LoRA's loss" + (d < -tau ? " or better" : ""));
                yield new String[]{m, want + quality};
            }
            default -> {                                  // dora, adalora, delta-lora: >= LoRA
                String m = vsLora + (r.method().equals("dora") ? String.format(Locale.ROOT, "; %.2fx LoRA's step time",
                        lora.stepsPerS() / r.stepsPerS()) : "");
                yield new String[]{m, d < -tau ? "holds: better than LoRA by " + fmt(-d)
                        : d <= tau ? "ties: within the band of LoRA (no gain visible at this scale)"
                        : "differs: worse than LoRA by " + fmt(d) + " at this scale"};
            }
        };
    }

    private static String cmp(double d, double tau, String what) {
        return Math.abs(d) <= tau ? String.format(Locale.ROOT, "ties %s (%+.4f)", what, d)
                : d < 0 ? String.format(Locale.ROOT, "%s better than %s", fmt(-d), what)
                : String.format(Locale.ROOT, "%s worse than %s", fmt(d), what);
    }

    private static String fmt(double nats) {
        return String.format(Locale.ROOT, "%.4f nats", nats);
    }

    /** The last evaluated step (> 0) where {@code curve} is above {@code ref} at the same step, or -1. */
    static int lastStepBehind(List<double[]> curve, List<double[]> ref) {
        int last = -1;
        for (int i = 0; i < Math.min(curve.size(), ref.size()); i++) {
            if (curve.get(i)[0] > 0 && curve.get(i)[1] > ref.get(i)[1]) {
                last = (int) curve.get(i)[0];
            }
        }
        return last;
    }

    /** First evaluated step whose loss is <= target, or -1. */
    static int stepsToReach(List<double[]> curve, double target) {
        for (double[] p : curve) {
            if (p[0] > 0 && p[1] <= target) {
                return (int) p[0];
            }
        }
        return -1;
    }
}
