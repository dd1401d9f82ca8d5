package ai.lorakit.models.decoder;

import ai.lorakit.adapters.io.HfWeights;
import ai.lorakit.adapters.io.NonFinite;
import ai.lorakit.adapters.io.SafeDType;
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

/**
 * Hugging Face checkpoints: {@code config.json} + the weights as {@code save_pretrained} writes them (one
 * {@code model.safetensors}, or shards listed by {@code model.safetensors.index.json}; read and written through
 * {@link HfWeights}, memory-mapped), with the tensor names and shapes of a {@link Family}'s {@link Family#shapes}.
 *
 * <p>Reading accepts each key with or without the family's {@link Family#optionalPrefix} (GPT2LMHeadModel writes
 * {@code transformer.}, GPT2Model and the hub's gpt2 file do not), F32, BF16 or F16 data (converted to fp32), and
 * skips the family's {@link Family#ignoredKey}s. Every other problem (a missing tensor, a wrong shape, another dtype,
 * a key present both with and without the prefix, a key that belongs to no parameter, e.g. a layer beyond the
 * config's) is collected, and one {@link CheckpointFormatException} lists them all with file, key, expected and found
 * shape.
 *
 * <p>Writing: the full names, metadata {@code {"format": "pt"}}, one model.safetensors or, above the maximum shard
 * size (transformers' 5 GB by default), shards and their index, then config.json, each replaced atomically.
 */
public final class HfCheckpoint {
    public static final String WEIGHTS_FILE = HfWeights.SINGLE_FILE;

    private HfCheckpoint() {
    }

    /** Every base tensor as fp32 (full HF name -> values, in {@link Family#shapes} order), validated. */
    public static <C extends ModelConfig> Map<String, float[]> read(Path dir, Family<C> family, C cfg)
            throws IOException {
        if (!HfWeights.present(dir)) {
            String hint = Files.isRegularFile(dir.resolve("pytorch_model.bin"))
                    ? " (found pytorch_model.bin, a torch pickle lorakit does not read: convert it, e.g."
                    + " AutoModelForCausalLM.from_pretrained(dir).save_pretrained(dir, safe_serialization=True))" : "";
            throw new CheckpointFormatException(dir.resolve(WEIGHTS_FILE) + ": missing (nor "
                    + HfWeights.INDEX_FILE + " of a sharded checkpoint)" + hint);
        }
        String prefix = family.optionalPrefix();
        Map<String, float[]> out = new LinkedHashMap<>();
        List<String> problems = new ArrayList<>();
        Path where;
        try (HfWeights sf = HfWeights.open(dir)) {
            where = sf.files().size() == 1 ? sf.files().get(0) : dir.resolve(HfWeights.INDEX_FILE);
            String in = sf.files().size() == 1 ? "" : " in ";
            Set<String> unused = new LinkedHashSet<>(sf.names());
            for (Map.Entry<String, int[]> e : family.shapes(cfg).entrySet()) {
                String name = e.getKey();
                String bare = !prefix.isEmpty() && name.startsWith(prefix) ? name.substring(prefix.length()) : name;
                boolean full = sf.contains(name);
                boolean short_ = !bare.equals(name) && sf.contains(bare);
                unused.remove(name);
                unused.remove(bare);
                if (full && short_) {
                    problems.add("'" + name + "' and '" + bare + "' are both present (ambiguous)");
                    continue;
                }
                if (!full && !short_) {
                    problems.add("missing tensor '" + name + "'" + (bare.equals(name) ? "" : " (or '" + bare + "')")
                            + ", expected shape " + Arrays.toString(e.getValue()));
                    continue;
                }
                String key = full ? name : bare;
                String file = in.isEmpty() ? "" : in + sf.fileOf(key).getFileName();
                TensorInfo info = sf.info(key);
                long[] expected = Arrays.stream(e.getValue()).asLongStream().toArray();
                if (!info.hasShape(expected)) {
                    problems.add("tensor '" + key + "'" + file + " has shape " + Arrays.toString(info.shape())
                            + ", expected " + Arrays.toString(e.getValue()) + " for " + cfg.describe());
                    continue;
                }
                SafeDType dt = info.dtype();
                if (dt != SafeDType.F32 && dt != SafeDType.BF16 && dt != SafeDType.F16) {
                    problems.add("tensor '" + key + "'" + file + " is " + dt + "; only F32, BF16 and F16 are"
                            + " supported");
                    continue;
                }
                float[] v = sf.floats(key);
                String nonFinite = NonFinite.describe(v);
                if (nonFinite != null) {
                    problems.add("tensor '" + key + "'" + file + " " + nonFinite + ": the base checkpoint is corrupt"
                            + " (NaN/Inf weights cannot be trained or merged); re-download or re-export it");
                    continue;
                }
                out.put(name, v);
            }
            unused.removeIf(family::ignoredKey);
            if (!unused.isEmpty()) {
                problems.add("unexpected tensors " + abbreviate(new ArrayList<>(unused)) + " (not part of a "
                        + cfg.describe() + ")");
            }
        }
        if (!problems.isEmpty()) {
            throw new CheckpointFormatException(where + ": " + problems.size() + " problem(s):\n  "
                    + String.join("\n  ", problems.subList(0, Math.min(20, problems.size())))
                    + (problems.size() > 20 ? "\n  ... and " + (problems.size() - 20) + " more" : ""));
        }
        return out;
    }

    /**
     * Writes the weights (F32 or BF16 storage; one model.safetensors, or shards of at most {@code maxShardBytes}
     * and their index) then config.json into dir (created if missing).
     *
     * @param tensors full HF name -> values, in the order they are written; shapes from {@code shapes}
     */
    public static void write(Path dir, ModelConfig cfg, Map<String, int[]> shapes, Map<String, float[]> tensors,
                             DType storage, long maxShardBytes) throws IOException {
        if (storage != DType.F32 && storage != DType.BF16) {
            throw new IllegalArgumentException("saveHf storage dtype must be F32 or BF16, got " + storage);
        }
        Map<String, TensorData> data = new LinkedHashMap<>();
        for (Map.Entry<String, float[]> e : tensors.entrySet()) {
            long[] shape = Arrays.stream(shapes.get(e.getKey())).asLongStream().toArray();
            data.put(e.getKey(), storage == DType.F32 ? TensorData.f32(e.getValue(), shape)
                    : TensorData.bf16(e.getValue(), shape));
        }
        Files.createDirectories(dir);
        HfWeights.write(dir, data, Map.of("format", "pt"), maxShardBytes);
        ConfigJson.write(dir, cfg, storage == DType.F32 ? "float32" : "bfloat16");
    }

    private static String abbreviate(List<String> names) {
        return names.size() <= 10 ? names.toString() : names.subList(0, 10) + " and " + (names.size() - 10) + " more";
    }
}
