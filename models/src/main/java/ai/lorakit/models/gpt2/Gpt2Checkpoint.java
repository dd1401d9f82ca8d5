package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.io.NonFinite;
import ai.lorakit.adapters.io.SafeDType;
import ai.lorakit.adapters.io.Safetensors;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.adapters.io.TensorInfo;
import ai.lorakit.gpu.DType;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * Hugging Face GPT-2 checkpoints: {@code config.json} + {@code model.safetensors}. Tensor names and shapes are
 * HF's GPT2LMHeadModel state dict ({@link #shapes}); Conv1D weights are stored [in,out].
 *
 * <p>Reading accepts keys with the {@code transformer.} prefix (GPT2LMHeadModel.save_pretrained) or without it
 * (GPT2Model, as the hub's gpt2 file), F32, BF16 or F16 data (converted to fp32), and ignores {@code lm_head.weight}
 * (tied to wte) and the attention buffers {@code h.N.attn.bias} / {@code h.N.attn.masked_bias}. Every other
 * problem (a missing tensor, a wrong shape, another dtype, a key present both with and without the prefix, a key
 * that belongs to no parameter, e.g. a layer beyond n_layer, a NaN or Inf value) is collected, and one {@link CheckpointFormatException}
 * lists them all with key, expected and found shape.
 *
 * <p>Writing: keys with the {@code transformer.} prefix and no lm_head.weight (what HF writes for tied weights),
 * metadata {@code {"format": "pt"}}, model.safetensors then config.json, each replaced atomically.
 */
final class Gpt2Checkpoint {
    static final String WEIGHTS_FILE = "model.safetensors";
    static final String PREFIX = "transformer.";

    private Gpt2Checkpoint() {
    }

    /** Every base tensor of the model: HF name (with the transformer. prefix) -> shape, in HF's order. */
    static Map<String, int[]> shapes(Gpt2Config cfg) {
        int v = cfg.vocabSize();
        int p = cfg.nPositions();
        int c = cfg.nEmbd();
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put(PREFIX + "wte.weight", new int[] {v, c});
        m.put(PREFIX + "wpe.weight", new int[] {p, c});
        for (int l = 0; l < cfg.nLayer(); l++) {
            String h = PREFIX + "h." + l + ".";
            m.put(h + "ln_1.weight", new int[] {c});
            m.put(h + "ln_1.bias", new int[] {c});
            m.put(h + "attn.c_attn.weight", new int[] {c, 3 * c});
            m.put(h + "attn.c_attn.bias", new int[] {3 * c});
            m.put(h + "attn.c_proj.weight", new int[] {c, c});
            m.put(h + "attn.c_proj.bias", new int[] {c});
            m.put(h + "ln_2.weight", new int[] {c});
            m.put(h + "ln_2.bias", new int[] {c});
            m.put(h + "mlp.c_fc.weight", new int[] {c, 4 * c});
            m.put(h + "mlp.c_fc.bias", new int[] {4 * c});
            m.put(h + "mlp.c_proj.weight", new int[] {4 * c, c});
            m.put(h + "mlp.c_proj.bias", new int[] {c});
        }
        m.put(PREFIX + "ln_f.weight", new int[] {c});
        m.put(PREFIX + "ln_f.bias", new int[] {c});
        return m;
    }

    /** Whether a file key is one lorakit ignores: the tied lm_head and the causal-mask buffers. */
    static boolean ignored(String key) {
        String k = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
        return key.equals("lm_head.weight") || (k.startsWith("h.") && (k.endsWith(".attn.bias")
                || k.endsWith(".attn.masked_bias")));
    }

    /** The checkpoint's config and every base tensor as fp32 (HF name with prefix -> values), validated. */
    static Map<String, float[]> read(Path dir, Gpt2Config cfg) throws IOException {
        Path file = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(file)) {
            String hint = Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                    ? " (found pytorch_model.bin, a torch pickle lorakit does not read: convert it, e.g."
                    + " GPT2LMHeadModel.from_pretrained(dir).save_pretrained(dir, safe_serialization=True))" : "";
            throw new CheckpointFormatException(file + ": missing" + hint);
        }
        Map<String, int[]> want = shapes(cfg);
        Map<String, float[]> out = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        try (SafetensorsFile sf = SafetensorsFile.open(file)) {
            Set<String> unused = new LinkedHashSet<>(sf.names());
            for (Map.Entry<String, int[]> e : want.entrySet()) {
                String name = e.getKey();
                String bare = name.substring(PREFIX.length());
                boolean withPrefix = sf.contains(name);
                boolean without = sf.contains(bare);
                unused.remove(name);
                unused.remove(bare);
                if (withPrefix && without) {
                    problems.add("'" + name + "' and '" + bare + "' are both present (ambiguous)");
                    continue;
                }
                if (!withPrefix && !without) {
                    problems.add("missing tensor '" + name + "' (or '" + bare + "'), expected shape "
                            + Arrays.toString(e.getValue()));
                    continue;
                }
                String key = withPrefix ? name : bare;
                TensorInfo info = sf.info(key);
                long[] expected = Arrays.stream(e.getValue()).asLongStream().toArray();
                if (!info.hasShape(expected)) {
                    problems.add("tensor '" + key + "' has shape " + Arrays.toString(info.shape()) + ", expected "
                            + Arrays.toString(e.getValue()) + " for " + describe(cfg));
                    continue;
                }
                SafeDType dt = info.dtype();
                if (dt != SafeDType.F32 && dt != SafeDType.BF16 && dt != SafeDType.F16) {
                    problems.add("tensor '" + key + "' is " + dt + "; only F32, BF16 and F16 are supported");
                    continue;
                }
                float[] v = sf.floats(key);
                String nonFinite = NonFinite.describe(v);
                if (nonFinite != null) {
                    problems.add("tensor '" + key + "' " + nonFinite + ": the base checkpoint is corrupt (NaN/Inf"
                            + " weights cannot be trained or merged); re-download or re-export it");
                    continue;
                }
                out.put(name, v);
            }
            unused.removeIf(Gpt2Checkpoint::ignored);
            if (!unused.isEmpty()) {
                problems.add("unexpected tensors " + abbreviate(new ArrayList<>(unused))
                        + " (not part of a GPT-2 with " + describe(cfg) + ")");
            }
        }
        if (!problems.isEmpty()) {
            throw new CheckpointFormatException(file + ": " + problems.size() + " problem(s):\n  "
                    + String.join("\n  ", problems.subList(0, Math.min(20, problems.size())))
                    + (problems.size() > 20 ? "\n  ... and " + (problems.size() - 20) + " more" : ""));
        }
        return out;
    }

    /** Writes model.safetensors (F32 or BF16 storage) then config.json into dir (created if missing). */
    static void write(Path dir, Gpt2Config cfg, Map<String, float[]> tensors, DType storage) throws IOException {
        if (storage != DType.F32 && storage != DType.BF16) {
            throw new IllegalArgumentException("saveHf storage dtype must be F32 or BF16, got " + storage);
        }
        Map<String, int[]> shapes = shapes(cfg);
        Map<String, TensorData> data = new TreeMap<>();
        for (Map.Entry<String, float[]> e : tensors.entrySet()) {
            long[] shape = Arrays.stream(shapes.get(e.getKey())).asLongStream().toArray();
            data.put(e.getKey(), storage == DType.F32 ? TensorData.f32(e.getValue(), shape)
                    : TensorData.bf16(e.getValue(), shape));
        }
        Files.createDirectories(dir);
        Safetensors.write(dir.resolve(WEIGHTS_FILE), data, Map.of("format", "pt"));
        cfg.write(dir, storage == DType.F32 ? "float32" : "bfloat16");
    }

    private static String describe(Gpt2Config c) {
        return "vocab_size=" + c.vocabSize() + ", n_positions=" + c.nPositions() + ", n_embd=" + c.nEmbd()
                + ", n_layer=" + c.nLayer();
    }

    private static String abbreviate(List<String> names) {
        return names.size() <= 10 ? names.toString() : names.subList(0, 10) + " and " + (names.size() - 10) + " more";
    }
}
