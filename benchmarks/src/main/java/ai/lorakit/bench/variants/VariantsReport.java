package ai.lorakit.bench.variants;

import ai.lorakit.models.data.TextDataset;
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
 * Writes the variants table's raw JSON and its Markdown report. The comparison with the papers is computed from
 * the numbers (so a rerun rewrites it consistently): a difference in validation loss smaller than the tie band τ
 * is called a tie; τ = max(0.01 nats, 2 x the standard deviation of LoRA's loss over the seeds).
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
            "lora-plus", "B's learning rate is 16 x the LoRA rate here (1.6e-2): the authors' reference code advises"
                    + " pairing a large ratio with a ~2x smaller base rate than plain LoRA's, which this table does not"
                    + " tune (every method uses the CLI default).",
            "adalora", "ΔW = P Λ Q · alpha/init_r starts from Λ = 0 and Adam moves each λ by at most about the"
                    + " learning rate per step, so ΔW's singular values (alpha/init_r)·|λ| stay small in a short run"
                    + " (the largest |Λ| is in the per-method facts above), while the orthogonality term makes P and"
                    + " Q orthonormal early, in directions the loss did not choose; LoRA's B moves at the same rate"
                    + " against a random A whose rows already have a useful size. At the CLI's LoRA learning rate a"
                    + " few hundred steps favour LoRA; the paper trains for thousands.",
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
            "full", "Full fine-tuning updates every weight, including the embeddings, at 3e-4.");

    private VariantsReport() {
    }

    /** What {@link #readJson} recovers from a variants-brown.json. */
    record Saved(String command, String started, double totalS, Map<String, Object> machine, List<RunRecord> runs) {
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
                JSON.convertValue(root.get("machine"), LinkedHashMap.class), runs);
    }

    static void writeJson(Path file, String command, Map<String, Object> machine, String started,
                          VariantsTable.Options o, TextDataset.Split split, List<RunRecord> runs, double totalS)
            throws IOException {
        Map<String, Object> root = new LinkedHashMap<>();
        root.put("command", command);
        root.put("started", started);
        root.put("total_s", totalS);
        root.put("machine", machine);
        Map<String, Object> cfg = new LinkedHashMap<>();
        cfg.put("data", "brown:fiction");
        cfg.put("train_documents", split.train().documentCount());
        cfg.put("train_tokens", split.train().tokenCount());
        cfg.put("validation_documents", split.validation().documentCount());
        cfg.put("validation_tokens", split.validation().tokenCount());
        cfg.put("steps", o.steps());
        cfg.put("batch", o.batch());
        cfg.put("seq_len", o.seqLen());
        cfg.put("seeds", o.seeds());
        cfg.put("eval_every", o.evalEvery());
        cfg.put("eval_batches", o.evalBatches());
        cfg.put("final_eval_batches", o.finalEvalBatches());
        cfg.put("backend", o.backend());
        root.put("config", cfg);
        root.put("runs", runs);
        Files.writeString(file, JSON.writeValueAsString(root) + "\n", StandardCharsets.UTF_8);
    }

    /** Mean over the seeds of one method. */
    record Row(String method, int n, double lr, long trainable, long saved, double loss, double lossSd, double ppl,
               double stepsPerS, double tokensPerS, double heap, double rss, double wall, String notes,
               List<double[]> curve) {
    }

    static Map<String, Row> rows(List<RunRecord> runs) {
        Map<String, List<RunRecord>> by = new LinkedHashMap<>();
        for (RunRecord r : runs) {
            by.computeIfAbsent(r.method(), k -> new ArrayList<>()).add(r);
        }
        Map<String, double[][]> curves = LossPlot.meanCurves(runs);
        Map<String, Row> out = new LinkedHashMap<>();
        by.forEach((m, rs) -> {
            int n = rs.size();
            double loss = rs.stream().mapToDouble(RunRecord::valLoss).average().orElse(Double.NaN);
            double sd = n < 2 ? 0 : Math.sqrt(rs.stream().mapToDouble(r -> (r.valLoss() - loss) * (r.valLoss() - loss))
                    .sum() / (n - 1));
            double[][] c = curves.get(m);
            List<double[]> curve = new ArrayList<>();
            for (int i = 0; i < c[0].length; i++) {
                curve.add(new double[]{c[0][i], c[1][i]});
            }
            out.put(m, new Row(m, n, rs.getFirst().lr(), rs.getFirst().trainable(), rs.getFirst().savedParams(), loss, sd,
                    Math.exp(loss), mean(rs, RunRecord::stepsPerS), mean(rs, RunRecord::tokensPerS),
                    rs.stream().mapToDouble(RunRecord::peakHeapMiB).max().orElse(0),
                    rs.stream().mapToDouble(RunRecord::peakRssMiB).max().orElse(0), mean(rs, RunRecord::wallS),
                    rs.getFirst().notes(), curve));
        });
        return out;
    }

    private static double mean(List<RunRecord> rs, java.util.function.ToDoubleFunction<RunRecord> f) {
        return rs.stream().mapToDouble(f).average().orElse(Double.NaN);
    }

    static void writeMarkdown(Path file, String command, Map<String, Object> machine, String started,
                              VariantsTable.Options o, List<RunRecord> runs, double totalS, String modelText)
            throws IOException {
        Map<String, Row> rows = rows(runs);
        Row lora = rows.get("lora");
        Row full = rows.get("full");
        double tau = lora == null ? 0.01 : Math.max(0.01, 2 * lora.lossSd());
        StringBuilder md = new StringBuilder();
        md.append("# Variants table: fine-tuning lorakit's default base model on Brown fiction\n\n");
        md.append(String.format(Locale.ROOT, "Every method fine-tunes %s on the fiction genres of the Brown corpus,"
                + " with matched settings: %d optimizer steps of"
                + " batch %d x %d tokens, the same document split, the same training windows and the same evaluation"
                + " sets, %d seed%s (%s), CPU backend. Validation loss is in nats per token (per byte: the tokenizer is"
                + " byte-level)."
                + " Generated by `VariantsTable` (benchmarks/src/main/java/ai/lorakit/bench/variants); raw numbers and"
                + " curves in variants-brown.json, validation-loss curves in variants-brown.png.%n%n",
                modelText, o.steps(), o.batch(), o.seqLen(), o.seeds().size(), o.seeds().size() > 1 ? "s" : "",
                String.join(", ", o.seeds().stream().map(String::valueOf).toList())));
        md.append("## Result\n\n");
        md.append(String.format(Locale.ROOT, "Validation loss: after training, on the first %d validation batches"
                + " (%s tokens)%s. Delta vs LoRA: negative = better than LoRA. Throughput: training steps only"
                + " (evaluations and checkpoints excluded); other processes shared the 2 cores, so steps/s and tokens/s"
                + " move with the machine's load during each run: compare them only roughly (benchmarks/results/"
                + "cpu-peer.md measures speed side by side). Memory: peak heap used (tensors live in float[] on the heap"
                + " with the CPU backend) and peak resident set of the JVM, sampled every 20 ms during the run.%n%n",
                o.finalEvalBatches(), runs.isEmpty() ? "?" : String.format(Locale.ROOT, "%,d", runs.getFirst().valTokens()),
                o.seeds().size() > 1 ? ", mean ± sd over the seeds" : ""));
        md.append("| method | lr | trainable params | % of full | saved adapter params | val loss | perplexity |"
                + " Δ vs LoRA | steps/s | tokens/s | peak heap MiB | peak RSS MiB | wall s |\n");
        md.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for (Row r : rows.values()) {
            md.append(String.format(Locale.ROOT, "| %s | %.0e | %,d | %s | %,d | %s | %.3f | %s | %.2f | %,.0f | %.0f |"
                            + " %.0f | %.0f |%n", r.method(), r.lr(), r.trainable(),
                    full == null ? "?" : String.format(Locale.ROOT, "%.2f%%", 100.0 * r.trainable() / full.trainable()),
                    r.saved(), r.n() > 1 ? String.format(Locale.ROOT, "%.4f ± %.4f", r.loss(), r.lossSd())
                            : String.format(Locale.ROOT, "%.4f", r.loss()), r.ppl(),
                    lora == null || r == lora ? "–" : String.format(Locale.ROOT, "%+.4f", r.loss() - lora.loss()),
                    r.stepsPerS(), r.tokensPerS(), r.heap(), r.rss(), r.wall()));
        }
        md.append("\nPer-method facts:\n\n");
        for (Row r : rows.values()) {
            if (!r.notes().isEmpty()) {
                md.append("- **").append(r.method()).append("**: ").append(r.notes()).append('\n');
            }
        }
        md.append("\n## Against the papers\n\n");
        md.append(String.format(Locale.ROOT, "Tie band τ = %.3f nats (max of 0.01 and twice the standard deviation of"
                + " LoRA's loss over the seeds, which share the data split): smaller differences are not called a win"
                + " or a loss. The papers fine-tune 100 M -"
                + " 7 B parameter models on GLUE, E2E, commonsense or instruction data for thousands of steps and report"
                + " task metrics; this is a %.1f M parameter model, %d steps, one small corpus and one"
                + " metric (validation loss), so where the verdict below says \"differs\" that is the small-scale"
                + " result, not a refutation.%n%n", tau, full == null ? Double.NaN : full.trainable() / 1e6, o.steps()));
        md.append("| method | paper's claim | measured here | verdict |\n|---|---|---|---|\n");
        for (Row r : rows.values()) {
            if (r.method().equals("lora") || lora == null) {
                continue;
            }
            String[] mv = verdict(r, lora, full, rows, tau);
            md.append("| ").append(r.method()).append(" | ").append(CLAIMS.getOrDefault(r.method(), "")).append(" | ")
                    .append(mv[0]).append(" | ").append(mv[1]).append(" |\n");
        }
        md.append("\nWhat bounds each method at this scale (mechanisms, independent of the measured numbers):\n\n");
        for (Row r : rows.values()) {
            String why = MECHANISMS.get(r.method());
            if (why != null) {
                md.append("- **").append(r.method()).append("**: ").append(why).append('\n');
            }
        }
        md.append("\n## Matched settings\n\n");
        md.append(String.format(Locale.ROOT, "- Data: `--data brown:fiction` (Brown categories k-r), split by document"
                + " with the CLI's defaults (10 %% of the documents for validation, split seed %d for every run);"
                + " training windows drawn by the Trainer's sampler from the run seed, so every method of a seed sees"
                + " the same windows; the seed also draws the adapter inits.%n"
                + "- Schedule: %d steps, batch %d x %d tokens, linear warm-up %d steps then cosine to 10 %% of the peak,"
                + " AdamW (β 0.9/0.999, eps 1e-8, no weight decay), gradient-norm clip 1.0, no dropout.%n"
                + "- Adapters as `lorakit train` configures them (Method.Settings.defaults): r 8, alpha 16 on"
                + " c_attn, c_proj (attention and MLP) and c_fc; peak LR = the CLI's --lr default of the method"
                + " (1e-3; VeRA 1e-2 because it trains only scaling vectors; full fine-tuning 3e-4). LoRA+ ratio 16."
                + " VeRA r 256, d_initial 0.1. AdaLoRA init_r 12 -> target_r 8 (the same final average rank as"
                + " LoRA), tinit %d, tfinal %d, deltaT 10, orth_reg 0.5 (PEFT's form). Delta-LoRA λ 2, K = steps/4 ="
                + " %d. LoRA-drop α 0.1 (stage 1 on 10 %% of the training documents for %d steps), T 0.9, ranked PER"
                + " MODULE (the CLI's default is per block, but in a trial run the least important of the 4 blocks"
                + " held 18 %% of the importance, more than 1 − T, so nothing could be dropped; the paper ranks LoRA"
                + " modules individually), stage 2 restarts from fresh adapters; its stage-2 run is the table's row"
                + " and its wall time includes stage 1 and the importance pass.%n"
                + "- Evaluation: every %d steps on the first %d validation batches (the curves), after training on the"
                + " first %d (the table).%n%n", VariantsTable.SPLIT_SEED, o.steps(), o.batch(), o.seqLen(),
                Math.min(100, o.steps() / 10),
                o.steps() / 10, o.steps() / 5, Math.min(500, o.steps() / 4),
                Math.min(o.steps(), Math.max(10, (int) Math.ceil(0.1 * o.steps()))), o.evalEvery(), o.evalBatches(),
                o.finalEvalBatches()));
        md.append("## Command\n\n```\ncd /work/main && . ci/jdk.sh\n"
                + "mvn -B -ntp -q -Dlorakit.buildDir=target -pl benchmarks -am package -DskipTests\n"
                + "java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED \\\n"
                + "     -cp benchmarks/target/benchmarks.jar ai.lorakit.bench.variants.VariantsTable")
                .append(command.substring(command.indexOf("VariantsTable") + "VariantsTable".length()))
                .append("\n```\n\n");
        md.append(String.format(Locale.ROOT, "Total wall time %.0f s (%.1f min).%s%n%n", totalS, totalS / 60,
                o.reportOnly() ? " This report and the PNG were re-rendered from that run's variants-brown.json with"
                        + " the same command plus `--report-only true` (no training)." : ""));
        md.append("## Machine and date\n\n");
        md.append("- Started ").append(started).append('\n');
        machine.forEach((k, v) -> md.append("- ").append(k.replace('_', ' ')).append(": ").append(v).append('\n'));
        md.append("- Other helpers were building and testing on the same 2 cores during the run: absolute speeds are"
                + " noisy; compare rows of one run only.\n");
        Files.writeString(file, md.toString(), StandardCharsets.UTF_8);
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
