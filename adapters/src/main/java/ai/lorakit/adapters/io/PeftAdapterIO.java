package ai.lorakit.adapters.io;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.CharConversionException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;

/**
 * PEFT's on-disk adapter format (VARIANTS.md section 9): {@code adapter_config.json} plus
 * {@code adapter_model.safetensors} (metadata {"format":"pt"}, fp32 tensors), with PEFT's key names:
 * <pre>
 * LoRA     base_model.model.&lt;module&gt;.lora_A.weight [r,in], .lora_B.weight [out,r]
 * DoRA     + base_model.model.&lt;module&gt;.lora_magnitude_vector [out]   (no ".weight", as PEFT saves it)
 * VeRA     base_model.model.&lt;module&gt;.vera_lambda_b [out], .vera_lambda_d [r],
 *          base_model.vera_A [r,in_max], base_model.vera_B [out_max,r]   (always saved, see below)
 * AdaLoRA  base_model.model.&lt;module&gt;.lora_A [r',in], .lora_B [out,r'], .lora_E [r',1]   (no ".weight")
 * </pre>
 * {@code <module>} is {@link AdaptedLinear#name()}, the module's full dotted name in the user model.
 *
 * <p>Choices: VeRA projections are always written and required on load ({@code save_projection} true), since
 * lorakit's projection generator is not torch's. AdaLoRA with a rank_pattern saves the kept triplets only (A, E
 * rows and B columns, as PEFT); loading a pruned file into full-rank (init_r) layers puts the kept triplets at
 * their indices and zeros elsewhere (E = 0 there, so the output is the same). Both files are replaced atomically,
 * safetensors first and config last, so a directory with a config always has its weights.
 *
 * <p>{@link #load} validates everything (keys, shapes, dtypes, finiteness, config agreement) before it changes
 * any parameter; a failure leaves every layer untouched.
 */
public final class PeftAdapterIO {

    public static final String CONFIG_FILE = "adapter_config.json";
    public static final String WEIGHTS_FILE = "adapter_model.safetensors";
    public static final String PICKLE_FILE = "adapter_model.bin";
    /** PeftModel.base_model (the tuner) .model (the user's model). */
    public static final String PREFIX = "base_model.model.";
    public static final String VERA_A_KEY = "base_model.vera_A";
    public static final String VERA_B_KEY = "base_model.vera_B";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION).build();

    private PeftAdapterIO() {
    }

    // ---------------------------------------------------------------- keys

    /** PEFT's file key of a parameter of {@code module}, or null for roles that are not saved per layer. */
    public static String key(String module, Parameter.Role role, AdapterConfig config) {
        boolean raw = config instanceof AdaLoraConfig;   // AdaLoRA's ParameterDicts: no ".weight"
        String suffix = switch (role) {
            case LORA_A -> raw ? ".lora_A" : ".lora_A.weight";
            case LORA_B -> raw ? ".lora_B" : ".lora_B.weight";
            case LORA_E -> ".lora_E";
            case MAGNITUDE -> ".lora_magnitude_vector";
            case VERA_LAMBDA_B -> ".vera_lambda_b";
            case VERA_LAMBDA_D -> ".vera_lambda_d";
            default -> null;
        };
        return suffix == null ? null : PREFIX + module + suffix;
    }

    // ---------------------------------------------------------------- save

    /**
     * Writes {@code dir/adapter_model.safetensors} then {@code dir/adapter_config.json} (each atomically;
     * {@code dir} is created if missing). {@code shared} is the model's VeRA projections (required for VeRA,
     * ignored otherwise); {@code baseModelNameOrPath} may be null.
     *
     * @throws IllegalArgumentException no modules, duplicate names, a module of another adapter type than
     *                                  {@code config}, VeRA without projections, or a non-finite parameter
     */
    public static void save(Path dir, AdapterConfig config, List<AdaptedLinear> modules, VeraProjections shared,
                            String baseModelNameOrPath) throws IOException {
        Map<String, TensorData> tensors = stateDict(config, modules, shared);
        boolean fifo = modules.stream().anyMatch(AdaptedLinear::fanInFanOut);
        String json = PythonJson.dumps(PeftConfigJson.toMap(config, fifo, baseModelNameOrPath));
        Files.createDirectories(dir);
        Safetensors.write(dir.resolve(WEIGHTS_FILE), tensors, Map.of("format", "pt"));
        AtomicFiles.write(dir.resolve(CONFIG_FILE), json.getBytes(StandardCharsets.UTF_8));
    }

    /** The tensors save() writes: PEFT key -> fp32 data. */
    static Map<String, TensorData> stateDict(AdapterConfig config, List<AdaptedLinear> modules,
                                             VeraProjections shared) {
        if (config == null || modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("PEFT save: need a config and at least one module, got config="
                    + config + ", modules=" + modules);
        }
        Map<String, TensorData> out = new TreeMap<>();
        Set<String> names = new HashSet<>();
        for (AdaptedLinear m : modules) {
            if (!names.add(m.name())) {
                throw new IllegalArgumentException("PEFT save: two modules are named " + m.name());
            }
            checkSameKind(config, m);
            for (Parameter p : m.parameters()) {
                String key = key(m.name(), p.role(), config);
                if (key == null) {
                    continue;
                }
                Tensor t = p.value();
                float[] v = t.backend().download(t);
                requireFinite(v, key);
                long[] shape = longs(t.shape());
                if (config instanceof AdaLoraConfig a && a.rankPattern() != null) {
                    boolean[] kept = a.rankPattern().get(m.name() + ".lora_E");
                    if (kept != null) {
                        TensorData pruned = prune(key, p.role(), v, t.shape(), kept);
                        if (pruned != null) {
                            out.put(key, pruned);
                            continue;
                        }
                    }
                }
                out.put(key, TensorData.f32(v, shape));
            }
        }
        if (config instanceof VeraConfig) {
            if (shared == null) {
                throw new IllegalArgumentException("PEFT save: VeRA needs the model's shared VeraProjections, got null");
            }
            float[] a = shared.a().backend().download(shared.a());
            float[] b = shared.b().backend().download(shared.b());
            requireFinite(a, VERA_A_KEY);
            requireFinite(b, VERA_B_KEY);
            out.put(VERA_A_KEY, TensorData.f32(a, longs(shared.a().shape())));
            out.put(VERA_B_KEY, TensorData.f32(b, longs(shared.b().shape())));
        }
        return out;
    }

    private static void checkSameKind(AdapterConfig config, AdaptedLinear m) {
        AdapterConfig mc = m.config();
        boolean same = mc.peftType().equals(config.peftType())
                && (!(config instanceof LoraConfig l) || l.useDora() == ((LoraConfig) mc).useDora());
        if (!same) {
            throw new IllegalArgumentException("PEFT save: module " + m.name() + " is " + describe(mc)
                    + " but the config is " + describe(config));
        }
    }

    private static String describe(AdapterConfig c) {
        return c instanceof LoraConfig l && l.useDora() ? "LORA (DoRA)" : c.peftType();
    }

    /**
     * AdaLoRA with a rank_pattern: a full-rank (init_r) tensor keeps only the rows (A, E) or columns (B) of the
     * kept triplets, as PEFT saves them. Returns null when the tensor is already at the pruned rank.
     */
    private static TensorData prune(String key, Parameter.Role role, float[] v, int[] shape, boolean[] kept) {
        int r = role == Parameter.Role.LORA_B ? shape[1] : shape[0];
        int rKept = count(kept);
        if (r == rKept) {
            return null;
        }
        if (r != kept.length) {
            throw new IllegalArgumentException("PEFT save: " + key + " has rank " + r + " but rank_pattern lists "
                    + kept.length + " triplets (" + rKept + " kept)");
        }
        if (role == Parameter.Role.LORA_B) {   // B [out,r] -> [out,r']
            int out = shape[0];
            float[] p = new float[out * rKept];
            for (int o = 0; o < out; o++) {
                for (int k = 0, j = 0; k < r; k++) {
                    if (kept[k]) {
                        p[o * rKept + j++] = v[o * r + k];
                    }
                }
            }
            return TensorData.f32(p, out, rKept);
        }
        int cols = shape[1];                    // A [r,in] -> [r',in]; E [r,1] -> [r',1]
        float[] p = new float[rKept * cols];
        for (int k = 0, j = 0; k < r; k++) {
            if (kept[k]) {
                System.arraycopy(v, k * cols, p, j++ * cols, cols);
            }
        }
        return TensorData.f32(p, rKept, cols);
    }

    private static void requireFinite(float[] v, String key) {
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                throw new IllegalArgumentException("PEFT save: " + key + " element " + i + " is " + v[i]
                        + "; refusing to write a broken adapter");
            }
        }
    }

    // ---------------------------------------------------------------- read config

    /**
     * The adapter's configuration: LORA -> LoraConfig (use_dora included), VERA -> VeraConfig, ADALORA ->
     * AdaLoraConfig. Checks that both files exist.
     *
     * @throws AdapterFormatException a missing file (adapter_model.bin only: "convert to safetensors"), invalid
     *                                JSON, an unknown peft_type or an option lorakit does not support
     */
    public static AdapterConfig readConfig(Path dir) throws IOException {
        Path cfg = dir.resolve(CONFIG_FILE);
        if (!Files.isDirectory(dir)) {
            throw new AdapterFormatException(dir + ": not a directory; a PEFT adapter is a directory with "
                    + CONFIG_FILE + " and " + WEIGHTS_FILE);
        }
        if (!Files.isRegularFile(cfg)) {
            throw new AdapterFormatException(dir + ": missing " + CONFIG_FILE + " (a PEFT adapter directory has "
                    + CONFIG_FILE + " and " + WEIGHTS_FILE + ")");
        }
        Path weights = dir.resolve(WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            if (Files.isRegularFile(dir.resolve(PICKLE_FILE))) {
                throw new AdapterFormatException(dir + ": missing " + WEIGHTS_FILE + "; found " + PICKLE_FILE
                        + " (a torch pickle), which lorakit does not read: convert it to safetensors, e.g. in Python"
                        + " PeftModel.from_pretrained(...).save_pretrained(dir, safe_serialization=True)");
            }
            throw new AdapterFormatException(dir + ": missing " + WEIGHTS_FILE);
        }
        JsonNode root;
        try {
            root = JSON.readTree(Files.readAllBytes(cfg));
        } catch (NoSuchFileException e) {
            throw new AdapterFormatException(dir + ": missing " + CONFIG_FILE, e);
        } catch (JsonProcessingException e) {
            throw new AdapterFormatException(cfg + ": invalid JSON: " + e.getOriginalMessage(), e);
        } catch (CharConversionException e) {   // Jackson guessed UTF-16/32 from the first bytes (fuzz finding)
            throw new AdapterFormatException(cfg + ": invalid JSON: not UTF-8 text (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new AdapterFormatException(cfg + ": must contain a JSON object");
        }
        return PeftConfigJson.fromJson(cfg, root);
    }

    // ---------------------------------------------------------------- load

    /** One tensor to copy: file key, destination, values (already scattered/converted to fp32). */
    private record Pending(String key, Tensor dst, float[] values) {
    }

    /**
     * Loads the adapter in {@code dir} into {@code modules} (and VeRA's {@code shared} projections), after
     * validating all of it: the file's config must match the layers' (type, DoRA, scaling), every expected key
     * must be present with the layer's shape, no key may be left over, dtypes F32/BF16/F16 only (converted),
     * values finite. Nothing is modified unless everything validates.
     *
     * @return the file's configuration
     * @throws AdapterFormatException naming the key, the expected and the found shape/dtype/value
     */
    public static AdapterConfig load(Path dir, List<AdaptedLinear> modules, VeraProjections shared) throws IOException {
        AdapterConfig fileConfig = readConfig(dir);
        Path file = dir.resolve(WEIGHTS_FILE);
        if (modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("PEFT load: no modules to load " + dir + " into");
        }
        List<String> problems = new ArrayList<>();
        List<Pending> pending = new ArrayList<>();
        try (SafetensorsFile sf = SafetensorsFile.open(file)) {
            Set<String> expected = new HashSet<>();
            Set<String> names = new HashSet<>();
            for (AdaptedLinear m : modules) {
                if (!names.add(m.name())) {
                    throw new IllegalArgumentException("PEFT load: two modules are named " + m.name());
                }
                if (m.merged()) {
                    throw new IllegalStateException("PEFT load: module " + m.name() + " is merged; unmerge it first");
                }
                checkConfigAgrees(file, fileConfig, m, problems);
                for (Parameter p : m.parameters()) {
                    String key = key(m.name(), p.role(), fileConfig);
                    if (key == null) {
                        continue;
                    }
                    expected.add(key);
                    boolean[] kept = fileConfig instanceof AdaLoraConfig a && a.rankPattern() != null
                            ? a.rankPattern().get(m.name() + ".lora_E") : null;
                    collect(sf, key, p.value(), p.role(), kept, problems, pending);
                }
            }
            if (fileConfig instanceof VeraConfig) {
                if (shared == null) {
                    throw new IllegalArgumentException("PEFT load: " + dir + " is a VeRA adapter; pass the model's"
                            + " VeraProjections to receive vera_A / vera_B");
                }
                expected.add(VERA_A_KEY);
                expected.add(VERA_B_KEY);
                collect(sf, VERA_A_KEY, shared.a(), Parameter.Role.VERA_A, null, problems, pending);
                collect(sf, VERA_B_KEY, shared.b(), Parameter.Role.VERA_B, null, problems, pending);
            }
            Set<String> unexpected = new TreeSet<>(sf.names());
            unexpected.removeAll(expected);
            for (String k : unexpected) {
                problems.add("unexpected key " + k + " " + sf.info(k).dtype() + Arrays.toString(sf.info(k).shape())
                        + " (no such parameter among the " + modules.size() + " layers given)");
            }
        }
        if (!problems.isEmpty()) {
            int shown = Math.min(problems.size(), 20);
            throw new AdapterFormatException(file + ": cannot load into the given layers (nothing was changed):\n  "
                    + String.join("\n  ", problems.subList(0, shown))
                    + (problems.size() > shown ? "\n  ... and " + (problems.size() - shown) + " more" : ""));
        }
        apply(pending);
        for (AdaptedLinear m : modules) {
            m.parameters().forEach(Parameter::markChanged);   // the layers' bf16 stages refresh
        }
        return fileConfig;
    }

    /** The layer's config must give the same adapter type and scaling as the file's. */
    private static void checkConfigAgrees(Path file, AdapterConfig fc, AdaptedLinear m, List<String> problems) {
        AdapterConfig mc = m.config();
        if (!mc.peftType().equals(fc.peftType())
                || (fc instanceof LoraConfig fl && fl.useDora() != ((LoraConfig) mc).useDora())) {
            problems.add("module " + m.name() + " is " + describe(mc) + " but the file is " + describe(fc));
            return;
        }
        float want = switch (fc) {
            case LoraConfig l -> l.scalingFor(m.name());
            case AdaLoraConfig a -> a.scaling();
            case VeraConfig v -> 1f;
        };
        if (Math.abs(m.scaling() - want) > 1e-6f * Math.max(1f, Math.abs(want))) {
            problems.add("module " + m.name() + " has scaling s=" + m.scaling() + " but the file's config (r, lora_alpha,"
                    + " use_rslora, rank/alpha_pattern) gives s=" + want);
        }
    }

    /** Validates one tensor against its destination and queues its fp32 values. */
    private static void collect(SafetensorsFile sf, String key, Tensor dst, Parameter.Role role, boolean[] kept,
                                List<String> problems, List<Pending> pending) {
        long[] want = longs(dst.shape());
        if (!sf.contains(key)) {
            problems.add("missing key " + key + ", expected F32" + Arrays.toString(want));
            return;
        }
        TensorInfo info = sf.info(key);
        if (info.dtype() != SafeDType.F32 && info.dtype() != SafeDType.BF16 && info.dtype() != SafeDType.F16) {
            problems.add(key + ": dtype " + info.dtype() + ", expected F32 (or BF16/F16), shape " + Arrays.toString(want));
            return;
        }
        long[] found = info.shape();
        boolean scatter = false;
        if (!Arrays.equals(found, want)) {
            // a pruned AdaLoRA tensor (rank r' = kept count) going into a full-rank (init_r) layer
            scatter = kept != null && want.length == 2 && found.length == 2 && kept.length == rankOf(role, want)
                    && count(kept) == rankOf(role, found) && otherDim(role, want) == otherDim(role, found);
            if (!scatter) {
                problems.add(key + ": expected shape " + Arrays.toString(want) + ", found " + Arrays.toString(found)
                        + (role == Parameter.Role.LORA_A || role == Parameter.Role.LORA_B || role == Parameter.Role.LORA_E
                        ? " (rank " + rankOf(role, want) + " vs " + (found.length == 2 ? rankOf(role, found) : "?") + ")" : ""));
                return;
            }
        }
        float[] v = sf.floats(key);
        int bad = NonFinite.first(v);
        if (bad >= 0) {
            problems.add(key + ": element " + bad + " is " + v[bad] + " (non-finite values are refused)");
            return;
        }
        if (scatter) {
            v = scatter(role, v, want, kept);
        }
        pending.add(new Pending(key, dst, v));
    }

    private static int rankOf(Parameter.Role role, long[] shape) {
        return (int) (role == Parameter.Role.LORA_B ? shape[1] : shape[0]);
    }

    private static long otherDim(Parameter.Role role, long[] shape) {
        return role == Parameter.Role.LORA_B ? shape[0] : shape[1];
    }

    /** Kept triplets to their indices of the full rank, zeros elsewhere. */
    private static float[] scatter(Parameter.Role role, float[] v, long[] full, boolean[] kept) {
        int rows = (int) full[0];
        int cols = (int) full[1];
        float[] out = new float[rows * cols];
        int rk = count(kept);
        if (role == Parameter.Role.LORA_B) {          // [out,r'] -> [out,r]
            for (int o = 0; o < rows; o++) {
                for (int k = 0, j = 0; k < cols; k++) {
                    if (kept[k]) {
                        out[o * cols + k] = v[o * rk + j++];
                    }
                }
            }
        } else {                                       // [r',c] -> [r,c]
            for (int k = 0, j = 0; k < rows; k++) {
                if (kept[k]) {
                    System.arraycopy(v, j++ * cols, out, k * cols, cols);
                }
            }
        }
        return out;
    }

    /** Uploads every tensor first (may fail without changing anything), then copies them in. */
    private static void apply(List<Pending> pending) {
        List<Tensor> staged = new ArrayList<>(pending.size());
        try {
            for (Pending p : pending) {
                Backend be = p.dst().backend();
                staged.add(be.upload(p.values(), DType.F32, p.dst().shape()));
            }
            for (int i = 0; i < pending.size(); i++) {
                Tensor dst = pending.get(i).dst();
                dst.backend().copy(staged.get(i), dst);
            }
        } finally {
            for (Tensor t : staged) {
                t.close();
            }
        }
    }

    // ---------------------------------------------------------------- helpers

    private static long[] longs(int[] s) {
        long[] l = new long[s.length];
        for (int i = 0; i < s.length; i++) {
            l[i] = s[i];
        }
        return l;
    }

    private static int count(boolean[] kept) {
        int n = 0;
        for (boolean k : kept) {
            n += k ? 1 : 0;
        }
        return n;
    }

    /** The keys and shapes a save of these modules would write (for diagnostics and tests). */
    static Map<String, long[]> expectedKeys(AdapterConfig config, List<AdaptedLinear> modules, VeraProjections shared) {
        Map<String, long[]> out = new LinkedHashMap<>();
        for (AdaptedLinear m : modules) {
            for (Parameter p : m.parameters()) {
                String k = key(m.name(), p.role(), config);
                if (k != null) {
                    out.put(k, longs(p.value().shape()));
                }
            }
        }
        if (config instanceof VeraConfig && shared != null) {
            out.put(VERA_A_KEY, longs(shared.a().shape()));
            out.put(VERA_B_KEY, longs(shared.b().shape()));
        }
        return out;
    }
}
