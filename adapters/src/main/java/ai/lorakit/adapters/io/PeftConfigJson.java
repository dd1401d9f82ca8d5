package ai.lorakit.adapters.io;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.VeraConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * adapter_config.json <-> {@link AdapterConfig} (VARIANTS.md section 9). Writing produces PEFT's
 * {@code to_dict()} key set (PEFT 0.19 for LoRA/AdaLoRA, VeraConfig for VeRA) with PEFT's defaults for the
 * options lorakit does not have. Reading maps the keys lorakit supports, ignores unknown keys (PEFT's forward
 * compatibility), and refuses options that would change the adapter's meaning where lorakit cannot follow
 * (naming the key, the value and what lorakit supports).
 *
 * <p>{@code peft_version} is not written: lorakit is not a PEFT release; PEFT accepts files without it.
 */
final class PeftConfigJson {
    private PeftConfigJson() {
    }

    // ---------------------------------------------------------------- writing

    /** PEFT's to_dict() of {@code c} as a sorted map (values: String, Number, Boolean, null, List, Map). */
    static Map<String, Object> toMap(AdapterConfig c, boolean fanInFanOut, String baseModelNameOrPath) {
        Map<String, Object> m = new TreeMap<>();
        m.put("auto_mapping", null);
        m.put("base_model_name_or_path", baseModelNameOrPath);
        m.put("revision", null);
        m.put("inference_mode", true);
        m.put("task_type", "CAUSAL_LM");
        m.put("peft_type", c.peftType());
        m.put("target_modules", new ArrayList<>(c.targetModules()));
        m.put("fan_in_fan_out", fanInFanOut);
        m.put("bias", "none");
        m.put("modules_to_save", null);
        m.put("layers_to_transform", null);
        m.put("layers_pattern", null);
        switch (c) {
            case LoraConfig l -> {
                loraDefaults(m);
                m.put("r", l.r());
                m.put("lora_alpha", number(l.alpha()));
                m.put("lora_dropout", l.dropout());
                m.put("use_rslora", l.useRslora());
                m.put("use_dora", l.useDora());
                m.put("init_lora_weights", switch (l.init()) {
                    case KAIMING -> Boolean.TRUE;
                    case GAUSSIAN -> "gaussian";
                    case NONE -> Boolean.FALSE;
                });
                m.put("rank_pattern", new LinkedHashMap<>(l.rankPattern()));
                Map<String, Object> ap = new LinkedHashMap<>();
                l.alphaPattern().forEach((k, v) -> ap.put(k, number(v)));
                m.put("alpha_pattern", ap);
            }
            case AdaLoraConfig a -> {
                loraDefaults(m);
                m.put("r", 8);   // ignored by AdaLoRA (init_r is the rank); PEFT warns when it is not 8
                m.put("lora_alpha", number(a.alpha()));
                m.put("lora_dropout", a.dropout());
                m.put("use_rslora", false);
                m.put("use_dora", false);
                m.put("init_lora_weights", true);
                m.put("alpha_pattern", Map.of());
                m.put("init_r", a.initR());
                m.put("target_r", a.targetR());
                m.put("tinit", a.tinit());
                m.put("tfinal", a.tfinal());
                m.put("deltaT", a.deltaT());
                m.put("beta1", a.beta1());
                m.put("beta2", a.beta2());
                m.put("orth_reg_weight", a.orthRegWeight());
                m.put("total_step", a.totalStep());
                m.put("rank_pattern", a.rankPattern() == null ? null : new LinkedHashMap<>(a.rankPattern()));
            }
            case VeraConfig v -> {
                m.put("r", v.r());
                m.put("projection_prng_key", v.projectionPrngKey());
                m.put("save_projection", true);   // lorakit always writes vera_A / vera_B (see PeftAdapterIO)
                m.put("vera_dropout", v.dropout());
                m.put("d_initial", v.dInitial());
                m.put("init_weights", true);
            }
        }
        return m;
    }

    /** The LoraConfig keys lorakit has no option for, at PEFT's defaults. */
    private static void loraDefaults(Map<String, Object> m) {
        m.put("alora_invocation_tokens", null);
        m.put("arrow_config", null);
        m.put("corda_config", null);
        m.put("ensure_weight_tying", false);
        m.put("eva_config", null);
        m.put("exclude_modules", null);
        m.put("layer_replication", null);
        m.put("loftq_config", Map.of());
        m.put("lora_bias", false);
        m.put("lora_ga_config", null);
        m.put("megatron_config", null);
        m.put("megatron_core", "megatron.core");
        m.put("qalora_group_size", 16);
        m.put("target_parameters", null);
        m.put("trainable_token_indices", null);
        m.put("use_bdlora", null);
        m.put("use_qalora", false);
    }

    /** An integral float as an int (PEFT files usually say "lora_alpha": 16), else the float. */
    private static Object number(float v) {
        return v == Math.rint(v) && Math.abs(v) < 1e9 ? (Object) (int) v : (Object) v;
    }

    // ---------------------------------------------------------------- reading

    /** The config in {@code root} (the parsed adapter_config.json at {@code file}). */
    static AdapterConfig fromJson(Path file, JsonNode root) throws AdapterFormatException {
        Reader r = new Reader(file, root);
        String type = r.string("peft_type", null);
        if (type == null) {
            throw r.error("peft_type", "missing", "one of LORA (incl. DoRA), VERA, ADALORA");
        }
        r.requireDefault("bias", "none", "bias \"none\" (lorakit does not train or save base biases)");
        r.requireAbsent("modules_to_save", "no modules_to_save (lorakit saves adapter tensors only)");
        r.requireAbsent("layers_to_transform", "no layers_to_transform (pass the layers to adapt explicitly)");
        try {
            return switch (type) {
                case "LORA" -> lora(r);
                case "ADALORA" -> adaLora(r);
                case "VERA" -> vera(r);
                default -> throw r.error("peft_type", "\"" + type + "\"", "LORA (incl. DoRA), VERA or ADALORA");
            };
        } catch (IllegalArgumentException e) {
            throw new AdapterFormatException(file + ": invalid configuration: " + e.getMessage(), e);
        }
    }

    private static void loraOnlyChecks(Reader r) throws AdapterFormatException {
        r.requireFalse("lora_bias", "lora_bias false (no bias on lora_B)");
        r.requireFalse("use_qalora", "use_qalora false");
        r.requireFalse("use_bdlora", "use_bdlora false/null");
        r.requireAbsent("exclude_modules", "no exclude_modules (pass the layers to adapt explicitly)");
        r.requireAbsent("layer_replication", "no layer_replication");
        r.requireAbsent("trainable_token_indices", "no trainable_token_indices");
        r.requireAbsent("target_parameters", "no target_parameters (nn.Linear modules only)");
        r.requireAbsent("alora_invocation_tokens", "no aLoRA invocation tokens");
        r.requireAbsent("megatron_config", "no Megatron layers");
        r.requireAbsent("arrow_config", "no Arrow routing");
    }

    private static LoraConfig lora(Reader r) throws AdapterFormatException {
        loraOnlyChecks(r);
        LoraConfig.Init init = loraInit(r);
        Map<String, Integer> rp = r.patterns("rank_pattern", "rank", (k, n) -> (int) r.integral(k, n));
        Map<String, Float> ap = r.patterns("alpha_pattern", "alpha", r::number);
        return new LoraConfig(r.integer("r", 8), r.floatValue("lora_alpha", 8f), r.floatValue("lora_dropout", 0f),
                r.bool("use_rslora", false), init, r.bool("use_dora", false), r.targets(), rp, ap);
    }

    private static LoraConfig.Init loraInit(Reader r) throws AdapterFormatException {
        JsonNode n = r.root.get("init_lora_weights");
        String supported = "true, false or \"gaussian\" (base-weight-changing inits such as pissa, olora, corda,"
                + " loftq need their base model and are not supported)";
        if (n == null || n.isNull()) {
            return LoraConfig.Init.KAIMING;
        }
        if (n.isBoolean()) {
            return n.booleanValue() ? LoraConfig.Init.KAIMING : LoraConfig.Init.NONE;
        }
        if (n.isTextual() && n.textValue().equals("gaussian")) {
            return LoraConfig.Init.GAUSSIAN;
        }
        throw r.error("init_lora_weights", n.toString(), supported);
    }

    private static AdaLoraConfig adaLora(Reader r) throws AdapterFormatException {
        loraOnlyChecks(r);
        r.requireFalse("use_dora", "use_dora false (AdaLoRA cannot use DoRA)");
        r.requireFalse("use_rslora", "use_rslora false (AdaLoRA scales by alpha / init_r)");
        loraInit(r);
        Map<String, boolean[]> rp = null;
        JsonNode rpn = r.root.get("rank_pattern");
        if (rpn != null && !rpn.isNull() && !(rpn.isObject() && rpn.isEmpty())) {
            if (!rpn.isObject()) {
                throw r.error("rank_pattern", rpn.toString(), "null or an object of lora_E name -> list of booleans");
            }
            rp = new LinkedHashMap<>();
            for (Map.Entry<String, JsonNode> e : rpn.properties()) {
                JsonNode a = e.getValue();
                if (!a.isArray()) {
                    throw r.error("rank_pattern[" + e.getKey() + "]", a.toString(), "a list of booleans");
                }
                boolean[] kept = new boolean[a.size()];
                for (int i = 0; i < kept.length; i++) {
                    JsonNode x = a.get(i);
                    if (!x.isBoolean()) {
                        throw r.error("rank_pattern[" + e.getKey() + "]", a.toString(), "a list of booleans");
                    }
                    kept[i] = x.booleanValue();
                }
                rp.put(e.getKey(), kept);
            }
        }
        JsonNode total = r.root.get("total_step");
        if (total == null || total.isNull()) {
            throw r.error("total_step", String.valueOf(total), "a positive step count (AdaLoRA requires it)");
        }
        return new AdaLoraConfig(r.integer("init_r", 12), r.integer("target_r", 8), r.integer("tinit", 0),
                r.integer("tfinal", 0), r.integer("deltaT", 1), r.floatValue("beta1", 0.85f),
                r.floatValue("beta2", 0.85f), r.floatValue("orth_reg_weight", 0.5f), r.integer("total_step", 0),
                r.floatValue("lora_alpha", 8f), r.floatValue("lora_dropout", 0f), r.targets(), rp);
    }

    private static VeraConfig vera(Reader r) throws AdapterFormatException {
        if (!r.bool("save_projection", true)) {
            throw r.error("save_projection", "false", "save_projection true: lorakit cannot regenerate torch's"
                    + " random vera_A / vera_B, the file must contain them");
        }
        JsonNode key = r.root.get("projection_prng_key");
        long prng = key == null || key.isNull() ? 0L : r.integral("projection_prng_key", key);
        return new VeraConfig(r.integer("r", 256), prng, true, r.floatValue("d_initial", 0.1f),
                r.floatValue("vera_dropout", 0f), r.targets());
    }

    /** Reads one value of a JSON object entry; {@code key} names the entry in errors. */
    @FunctionalInterface
    private interface EntryReader<V> {
        V read(String key, JsonNode value) throws AdapterFormatException;
    }

    /** Typed access to the JSON object with errors naming file, key, value and expectation. */
    private record Reader(Path file, JsonNode root) {

        /** An optional object of module pattern -> value (rank_pattern, alpha_pattern), in file order. */
        <V> Map<String, V> patterns(String key, String what, EntryReader<V> read) throws AdapterFormatException {
            Map<String, V> out = new LinkedHashMap<>();
            JsonNode n = get(key);
            if (n == null) {
                return out;
            }
            if (!n.isObject()) {
                throw error(key, n.toString(), "an object of module pattern -> " + what);
            }
            for (Map.Entry<String, JsonNode> e : n.properties()) {
                out.put(e.getKey(), read.read(key + "[" + e.getKey() + "]", e.getValue()));
            }
            return out;
        }

        AdapterFormatException error(String key, String value, String supported) {
            return new AdapterFormatException(file + ": " + key + " = " + value + " is not supported; lorakit"
                    + " supports " + supported);
        }

        private JsonNode get(String key) {
            JsonNode n = root.get(key);
            return n == null || n.isNull() ? null : n;
        }

        String string(String key, String dflt) throws AdapterFormatException {
            JsonNode n = get(key);
            if (n == null) {
                return dflt;
            }
            if (!n.isTextual()) {
                throw error(key, n.toString(), "a string");
            }
            return n.textValue();
        }

        boolean bool(String key, boolean dflt) throws AdapterFormatException {
            JsonNode n = get(key);
            if (n == null) {
                return dflt;
            }
            if (!n.isBoolean()) {
                throw error(key, n.toString(), "true or false");
            }
            return n.booleanValue();
        }

        int integer(String key, int dflt) throws AdapterFormatException {
            JsonNode n = get(key);
            return n == null ? dflt : (int) integral(key, n);
        }

        long integral(String key, JsonNode n) throws AdapterFormatException {
            if (n.isNumber() && n.canConvertToLong() && n.asDouble() == Math.rint(n.asDouble())
                    && (n.isIntegralNumber() || Math.abs(n.asDouble()) < 1e15)) {
                long v = n.asLong();
                if (key.equals("projection_prng_key") || (v >= Integer.MIN_VALUE && v <= Integer.MAX_VALUE)) {
                    return v;
                }
            }
            throw error(key, n.toString(), "an integer");
        }

        float floatValue(String key, float dflt) throws AdapterFormatException {
            JsonNode n = get(key);
            return n == null ? dflt : number(key, n);
        }

        float number(String key, JsonNode n) throws AdapterFormatException {
            if (!n.isNumber()) {
                throw error(key, n.toString(), "a number");
            }
            return (float) n.asDouble();
        }

        List<String> targets() throws AdapterFormatException {
            JsonNode n = get("target_modules");
            if (n == null) {
                throw error("target_modules", "null", "a list of module names");
            }
            if (n.isTextual()) {
                throw error("target_modules", n.toString(), "a list of module names or dotted suffixes (a regex"
                        + " string or \"all-linear\" cannot be matched by lorakit; list the modules)");
            }
            if (!n.isArray() || n.isEmpty()) {
                throw error("target_modules", n.toString(), "a non-empty list of module names");
            }
            List<String> out = new ArrayList<>();
            for (JsonNode x : n) {
                if (!x.isTextual()) {
                    throw error("target_modules", n.toString(), "a list of module names (strings)");
                }
                out.add(x.textValue());
            }
            return out;
        }

        void requireDefault(String key, String dflt, String supported) throws AdapterFormatException {
            String v = string(key, dflt);
            if (!v.equals(dflt)) {
                throw error(key, "\"" + v + "\"", supported);
            }
        }

        void requireFalse(String key, String supported) throws AdapterFormatException {
            JsonNode n = get(key);
            if (n != null && !(n.isBoolean() && !n.booleanValue())) {
                throw error(key, n.toString(), supported);
            }
        }

        /** null, missing, or an empty list/object. */
        void requireAbsent(String key, String supported) throws AdapterFormatException {
            JsonNode n = get(key);
            if (n != null && !((n.isArray() || n.isObject()) && n.isEmpty())) {
                throw error(key, n.toString(), supported);
            }
        }
    }
}
