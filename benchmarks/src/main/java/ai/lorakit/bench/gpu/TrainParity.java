package ai.lorakit.bench.gpu;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.OptimizerPolicy;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.Document;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.Trainer;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Supplier;

/**
 * The correctness pass's model-level check (GPU.md step 4): a few Trainer steps of a tiny random GPT-2 (V 257 bytes,
 * P 16, C 32, L 2, H 2; B 2, T 16; c_attn, c_proj, c_fc adapted) with every method -- LoRA (dropout, weight decay),
 * LoRA+, LoRA-FA, DoRA, VeRA, AdaLoRA, full fine-tuning -- on a CUDA backend and on cpu, from the same seeds and
 * data. Per method it compares the per-step training losses, the gradient norms, the validation losses and every
 * trainable parameter after the run, at {@link Tolerance#BF16} (cuBLAS may use TF32 or bf16 tensor cores, the fast
 * tier bf16 copies of A), and requires that training moved the loss and the weights. The same composition is
 * proven for OpenCL by models' OpenClModelTest; this is its CUDA twin, run from the bundle (no test jar of models
 * travels).
 */
final class TrainParity {
    static final int STEPS = 4;
    static final Gpt2Config CFG = Gpt2Config.of(257, 16, 32, 2, 2);
    static final List<String> TARGETS = List.of("c_attn", "c_proj", "c_fc");
    static final Tolerance TOL = Tolerance.BF16;

    /** One method: name, constant lr, adapter (null = full fine-tuning), optimizer policy. */
    record Method(String name, float lr, Supplier<AdapterConfig> adapter, Supplier<OptimizerPolicy> policy) {
    }

    private TrainParity() {
    }

    static List<Method> methods() {
        LoraConfig lora = new LoraConfig(4, 8f, 0f, false, LoraConfig.Init.KAIMING, false, TARGETS, Map.of(), Map.of());
        return List.of(
                new Method("lora", 1e-3f, () -> lora.withDropout(0.1f), AdamWPolicy::new),
                new Method("lora-plus", 1e-3f, () -> lora, () -> LoraPlusPolicy.ofRatio(16f)),
                new Method("lora-fa", 1e-3f, () -> lora, LoraFaPolicy::new),
                new Method("dora", 1e-3f, () -> lora.withDora(true), AdamWPolicy::new),
                new Method("vera", 1e-2f, () -> new VeraConfig(8, 3L, true, 0.1f, 0f, TARGETS), AdamWPolicy::new),
                new Method("adalora", 1e-3f, () -> new AdaLoraConfig(6, 3, 1, 1, 1, 0.85f, 0.85f, 0.5f, STEPS, 8f, 0f,
                        TARGETS, null), AdamWPolicy::new),
                new Method("full", 3e-4f, () -> null, AdamWPolicy::new));
    }

    /** Runs every method on {@code be} and on cpu; one JSON-ready row per method (ok, detail). */
    static List<Map<String, Object>> run(Backend be, Path work) throws IOException {
        TextDataset.Split data = TextDataset.of("synthetic", documents(), new ByteTokenizer()).split(0.25, 3);
        List<Map<String, Object>> rows = new ArrayList<>();
        try (Backend cpu = new CpuBackend()) {
            for (Method m : methods()) {
                Map<String, Object> row = new LinkedHashMap<>();
                row.put("method", m.name());
                long t0 = System.nanoTime();
                try {
                    Run ref = train(cpu, m, data, work.resolve(m.name() + "-cpu"));
                    Run got = train(be, m, data, work.resolve(m.name() + "-" + be.name()));
                    String why = compare(m.name(), ref, got);
                    row.put("ok", why == null);
                    row.put("losses_cpu", ref.losses());
                    row.put("losses", got.losses());
                    if (why != null) {
                        row.put("detail", why);
                    }
                } catch (RuntimeException e) {
                    row.put("ok", false);
                    row.put("detail", e.toString());
                }
                row.put("seconds", (System.nanoTime() - t0) / 1e9);
                rows.add(row);
            }
        }
        return rows;
    }

    /** What one run produced: metrics lines, and every trainable parameter before and after (model order). */
    record Run(List<JsonNode> metrics, Map<String, float[]> before, Map<String, float[]> after) {
        List<Double> losses() {
            List<Double> l = new ArrayList<>();
            for (JsonNode n : metrics) {
                if (n.has("loss") && !n.get("loss").isNull()) {
                    l.add(n.get("loss").asDouble());
                }
            }
            return l;
        }
    }

    private static Run train(Backend be, Method m, TextDataset.Split data, Path out) throws IOException {
        Files.createDirectories(out);
        TrainConfig cfg = new TrainConfig(STEPS, 2, 16, m.lr(), 0, TrainConfig.Schedule.CONSTANT, 0f, 0.01f, 1f, 1, 2,
                2, 0, 5L, 1);
        try (DecoderModel model = DecoderModel.random(CFG, be, 11)) {
            AdapterConfig adapter = m.adapter().get();
            if (adapter == null) {
                model.setFullFineTune(true);
            } else {
                model.attachAdapters(adapter, 7);
            }
            Map<String, float[]> before = values(be, model);
            try (Trainer t = new Trainer(model, m.policy().get(), cfg, data.train(), data.validation(), out)) {
                t.run();
            }
            return new Run(MetricsLog.read(out), before, values(be, model));
        }
    }

    /** "index:name" -> values of the trainable parameters (the policy decides: LoRA-FA freezes A in the Trainer). */
    private static Map<String, float[]> values(Backend be, DecoderModel m) {
        Map<String, float[]> out = new LinkedHashMap<>();
        List<Parameter> all = Trainer.distinct(m.parameters());
        for (int i = 0; i < all.size(); i++) {
            Parameter p = all.get(i);
            if (p.trainable()) {
                out.put(String.format("%03d:%s", i, p.name()), be.download(p.value()));
            }
        }
        return out;
    }

    /** Null when {@code got} trains as {@code ref} did, else the first difference. */
    static String compare(String name, Run ref, Run got) {
        if (ref.metrics().size() != got.metrics().size() || ref.metrics().size() < 2) {
            return name + ": " + got.metrics().size() + " metrics lines, cpu wrote " + ref.metrics().size();
        }
        for (String key : new String[] {"loss", "grad_norm", "val_loss"}) {
            float[] r = series(ref.metrics(), key);
            float[] g = series(got.metrics(), key);
            if (r.length != g.length) {
                return name + " " + key + ": " + g.length + " values, cpu has " + r.length;
            }
            Tolerance.Result c = TOL.compare(name + " " + key, g, r);
            if (!c.ok()) {
                return c.describe();
            }
        }
        float[] losses = series(ref.metrics(), "loss");
        if (losses.length < 2 || losses[0] == losses[losses.length - 1]) {
            return name + ": training did not move the loss on cpu";
        }
        if (!ref.after().keySet().equals(got.after().keySet())) {
            return name + ": trainable parameters differ: " + got.after().keySet() + " vs cpu " + ref.after().keySet();
        }
        boolean moved = false;
        for (String p : ref.after().keySet()) {
            Tolerance.Result w = TOL.compare(name + " " + p + " after " + STEPS + " steps", got.after().get(p),
                    ref.after().get(p));
            if (!w.ok()) {
                return w.describe();
            }
            float[] a = ref.after().get(p);
            float[] b = ref.before().get(p);
            for (int i = 0; i < a.length && !moved; i++) {
                moved = a[i] != b[i];
            }
        }
        return moved ? null : name + ": training changed no trainable parameter";
    }

    private static float[] series(List<JsonNode> lines, String key) {
        List<Float> v = new ArrayList<>();
        for (JsonNode l : lines) {
            if (l.has(key) && !l.get(key).isNull()) {
                v.add((float) l.get(key).asDouble());
            }
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }

    /** 12 deterministic documents of word-like text (nothing is read from disk). */
    static List<Document> documents() {
        String[] words = {"the", "river", "ran", "past", "a", "mill", "and", "over", "stones", "where", "children",
            "played", "in", "summer", "light", "while", "old", "men", "talked", "of", "rain"};
        SplittableRandom rnd = new SplittableRandom(42);
        List<Document> docs = new ArrayList<>();
        for (int d = 0; d < 12; d++) {
            StringBuilder sb = new StringBuilder();
            for (int w = 0; w < 60; w++) {
                sb.append(words[rnd.nextInt(words.length)]).append(w % 9 == 8 ? ". " : " ");
            }
            docs.add(new Document("doc" + d, sb.toString().trim()));
        }
        return docs;
    }
}
