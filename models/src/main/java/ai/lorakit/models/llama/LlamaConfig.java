package ai.lorakit.models.llama;

import ai.lorakit.gpu.RopeTables;
import ai.lorakit.models.decoder.ConfigJson;
import ai.lorakit.models.decoder.ModelConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import static ai.lorakit.models.decoder.ConfigJson.optionalInt;
import static ai.lorakit.models.decoder.ConfigJson.positive;
import static ai.lorakit.models.decoder.ConfigJson.refuse;
import static ai.lorakit.models.decoder.ConfigJson.requiredInt;
import static ai.lorakit.models.decoder.ConfigJson.text;

/**
 * The shape of a Llama-family model (HF's LlamaConfig, MistralConfig, Qwen2Config, Qwen3Config: the keys lorakit
 * uses). V = vocabSize, C = hiddenSize, F = intermediateSize, L = numLayers, H = numHeads, Hkv = numKvHeads,
 * D = headDim.
 *
 * <p>config.json: {@code vocab_size, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads,
 * max_position_embeddings} are required; {@code num_key_value_heads} defaults to H, {@code head_dim} to C/H (Qwen3:
 * 128, as Qwen3Config), {@code rms_norm_eps} to 1e-6, {@code rope_theta} to 10000, {@code tie_word_embeddings} to
 * false, {@code rope_scaling} to none. Refused, naming the key: {@code hidden_act} other than silu,
 * {@code rope_scaling} of a type other than llama3 (or default), {@code attention_bias} or {@code mlp_bias} true (Qwen2's q/k/v
 * biases are the family's). A {@code sliding_window} (Mistral; Qwen2/3 only with {@code use_sliding_window}) is
 * not implemented: it caps {@link #maxSeqLen}, so a window longer than it is refused naming sliding_window, and
 * within it HF's attention is plain causal attention.
 *
 * @param slidingWindow the sliding window, or 0 for none
 */
public record LlamaConfig(LlamaFamily family, int vocabSize, int hiddenSize, int intermediateSize, int numLayers,
                          int numHeads, int numKvHeads, int headDim, int maxPositionEmbeddings, float rmsNormEps,
                          double ropeTheta, RopeTables.Llama3Scaling ropeScaling, boolean tieWordEmbeddings,
                          int slidingWindow) implements ModelConfig {

    public LlamaConfig {
        positive("vocab_size", vocabSize);
        positive("hidden_size", hiddenSize);
        positive("intermediate_size", intermediateSize);
        positive("num_hidden_layers", numLayers);
        positive("num_attention_heads", numHeads);
        positive("num_key_value_heads", numKvHeads);
        positive("head_dim", headDim);
        positive("max_position_embeddings", maxPositionEmbeddings);
        if (numHeads % numKvHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads=" + numHeads
                    + " must be a multiple of num_key_value_heads=" + numKvHeads);
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim must be even for RoPE, got " + headDim);
        }
        RopeTables.inverseFrequencies(headDim, ropeTheta, ropeScaling);   // validates rope_theta
        if (slidingWindow < 0) {
            throw new IllegalArgumentException("sliding_window must be > 0 or null, got " + slidingWindow);
        }
    }

    @Override
    public int maxSeqLen() {
        return slidingWindow > 0 ? Math.min(slidingWindow, maxPositionEmbeddings) : maxPositionEmbeddings;
    }

    @Override
    public String maxSeqLenKey() {
        return slidingWindow > 0 && slidingWindow < maxPositionEmbeddings
                ? "sliding_window (lorakit implements no sliding-window attention)" : "max_position_embeddings";
    }

    @Override
    public String describe() {
        return family.displayName() + " " + numLayers + " layers, hidden " + hiddenSize + ", " + numHeads
                + " heads (" + numKvHeads + " kv, head_dim " + headDim + "), ffn " + intermediateSize + ", vocab "
                + vocabSize + ", max_position_embeddings " + maxPositionEmbeddings
                + (tieWordEmbeddings ? ", tied lm_head" : "");
    }

    /** The config in a parsed config.json of this family; IllegalArgumentException names the key and value. */
    static LlamaConfig fromJson(LlamaFamily family, JsonNode root) {
        String act = text(root, "hidden_act");
        if (act != null && !act.equals("silu")) {
            throw new IllegalArgumentException("hidden_act \"" + act + "\" is not supported (the MLP is SwiGLU: silu)");
        }
        refuse(root, "attention_bias", true, "only Qwen2's q/k/v biases are implemented");
        refuse(root, "mlp_bias", true, "not implemented");
        int hidden = requiredInt(root, "hidden_size");
        int heads = requiredInt(root, "num_attention_heads");
        int kv = optionalInt(root, "num_key_value_heads");
        int headDim = optionalInt(root, "head_dim");
        if (headDim == Integer.MIN_VALUE) {
            headDim = family.qkNorm() ? 128 : hidden / Math.max(1, heads);
        }
        int window = optionalInt(root, "sliding_window");
        JsonNode use = root.get("use_sliding_window");
        if (window == Integer.MIN_VALUE || (family.qkvBias() || family.qkNorm())
                && !(use != null && use.isBoolean() && use.booleanValue())) {
            window = 0;   // Qwen2/3 carry sliding_window but use it only with use_sliding_window: true
        }
        JsonNode tie = root.get("tie_word_embeddings");
        if (tie != null && !tie.isNull() && !tie.isBoolean()) {
            throw new IllegalArgumentException("tie_word_embeddings must be true or false, got " + tie);
        }
        return new LlamaConfig(family, requiredInt(root, "vocab_size"), hidden, requiredInt(root, "intermediate_size"),
                requiredInt(root, "num_hidden_layers"), heads, kv == Integer.MIN_VALUE ? heads : kv, headDim,
                requiredInt(root, "max_position_embeddings"), ConfigJson.floatOr(root, "rms_norm_eps", 1e-6f),
                doubleOr(root, "rope_theta", 10000.0), ropeScaling(root.get("rope_scaling")),
                tie != null && tie.isBoolean() && tie.booleanValue(), window);
    }

    private static RopeTables.Llama3Scaling ropeScaling(JsonNode n) {
        if (n == null || n.isNull()) {
            return null;
        }
        String type = n.has("rope_type") ? n.get("rope_type").asText() : n.path("type").asText(null);
        if ("default".equals(type)) {
            return null;   // HF's name for plain RoPE
        }
        if (!"llama3".equals(type)) {
            throw new IllegalArgumentException("rope_scaling of type \"" + type + "\" is not supported (only llama3"
                    + " or null)");
        }
        return new RopeTables.Llama3Scaling(ConfigJson.floatOr(n, "factor", Float.NaN),
                ConfigJson.floatOr(n, "low_freq_factor", Float.NaN), ConfigJson.floatOr(n, "high_freq_factor",
                Float.NaN), requiredInt(n, "original_max_position_embeddings"));
    }

    private static double doubleOr(JsonNode root, String key, double dflt) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw new IllegalArgumentException(key + " must be a number, got " + n);
        }
        return n.doubleValue();
    }

    /** HF's config.json of this family (keys sorted). */
    @Override
    public String toJson(String torchDtype) {
        Map<String, Object> m = new TreeMap<>();
        m.put("architectures", List.of(family.architecture()));
        m.put("model_type", family.modelType());
        m.put("vocab_size", vocabSize);
        m.put("hidden_size", hiddenSize);
        m.put("intermediate_size", intermediateSize);
        m.put("num_hidden_layers", numLayers);
        m.put("num_attention_heads", numHeads);
        m.put("num_key_value_heads", numKvHeads);
        m.put("head_dim", headDim);
        m.put("max_position_embeddings", maxPositionEmbeddings);
        m.put("rms_norm_eps", Double.parseDouble(Float.toString(rmsNormEps)));
        m.put("rope_theta", ropeTheta);
        if (ropeScaling != null) {
            Map<String, Object> s = new LinkedHashMap<>();
            s.put("rope_type", "llama3");
            s.put("factor", Double.parseDouble(Float.toString(ropeScaling.factor())));
            s.put("low_freq_factor", Double.parseDouble(Float.toString(ropeScaling.lowFreqFactor())));
            s.put("high_freq_factor", Double.parseDouble(Float.toString(ropeScaling.highFreqFactor())));
            s.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
            m.put("rope_scaling", s);
        } else {
            m.put("rope_scaling", null);
        }
        m.put("hidden_act", "silu");
        m.put("attention_bias", false);
        m.put("tie_word_embeddings", tieWordEmbeddings);
        m.put("sliding_window", slidingWindow > 0 ? slidingWindow : null);
        if (family.qkvBias() || family.qkNorm()) {
            m.put("use_sliding_window", slidingWindow > 0);
        }
        m.put("torch_dtype", torchDtype);
        m.put("use_cache", true);
        return ConfigJson.dumps(m);
    }
}
