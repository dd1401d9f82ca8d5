package ai.lorakit.models.gpt2;

import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.decoder.ConfigJson;
import ai.lorakit.models.decoder.Family;
import ai.lorakit.models.decoder.ModelConfig;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import static ai.lorakit.models.decoder.ConfigJson.floatOr;
import static ai.lorakit.models.decoder.ConfigJson.optionalInt;
import static ai.lorakit.models.decoder.ConfigJson.positive;
import static ai.lorakit.models.decoder.ConfigJson.refuse;
import static ai.lorakit.models.decoder.ConfigJson.requiredInt;
import static ai.lorakit.models.decoder.ConfigJson.text;

/**
 * The shape of a GPT-2 model (Hugging Face's GPT2Config, the fields lorakit uses). V = vocabSize, P = nPositions,
 * C = nEmbd, L = nLayer, H = nHead; the MLP is 4C wide and the activation is GELU's tanh approximation.
 *
 * <p>config.json ({@link #read}, {@link #write}): HF's keys {@code vocab_size, n_positions, n_embd, n_layer,
 * n_head} are required ({@code n_ctx} stands in for a missing {@code n_positions}, as in old checkpoints);
 * {@code layer_norm_epsilon} defaults to 1e-5. Other keys are ignored, except those that would change the
 * architecture into one lorakit does not implement: {@code activation_function} other than {@code gelu_new} /
 * {@code gelu_pytorch_tanh} (the same tanh formula), {@code n_inner} other than null or 4C,
 * {@code model_type} other than gpt2, {@code tie_word_embeddings: false}, {@code scale_attn_weights: false},
 * {@code scale_attn_by_inverse_layer_idx}, {@code reorder_and_upcast_attn} (numerically different attention)
 * and {@code add_cross_attention}. Each is refused with the key and value named.
 *
 * @param vocabSize        V, rows of the token embedding (= the tied lm_head)
 * @param nPositions       P, rows of the position embedding: the longest sequence
 * @param nEmbd            C, the residual width
 * @param nLayer           L, transformer blocks
 * @param nHead            H, attention heads (C % H == 0)
 * @param layerNormEpsilon eps of every LayerNorm
 */
public record Gpt2Config(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, float layerNormEpsilon)
        implements ModelConfig {

    public static final String CONFIG_FILE = ConfigJson.CONFIG_FILE;

    /** The activation functions accepted on read: both are 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    private static final Set<String> TANH_GELU = Set.of("gelu_new", "gelu_pytorch_tanh");

    public Gpt2Config {
        positive("vocab_size", vocabSize);
        positive("n_positions", nPositions);
        positive("n_embd", nEmbd);
        positive("n_layer", nLayer);
        positive("n_head", nHead);
        if (nEmbd % nHead != 0) {
            throw new IllegalArgumentException("n_embd must be divisible by n_head, got n_embd=" + nEmbd
                    + ", n_head=" + nHead);
        }
        if (!(layerNormEpsilon > 0f) || !Float.isFinite(layerNormEpsilon)) {
            throw new IllegalArgumentException("layer_norm_epsilon must be finite and > 0, got " + layerNormEpsilon);
        }
        // The largest tensors (wte [V,C], c_fc [C,4C]) must fit the Java-array-backed backends.
        long big = Math.max((long) vocabSize * nEmbd, 4L * nEmbd * nEmbd);
        if (big > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("model too large: vocab_size*n_embd=" + (long) vocabSize * nEmbd
                    + ", 4*n_embd^2=" + 4L * nEmbd * nEmbd + " exceed 2^31-9 elements per tensor");
        }
    }

    /** A config with HF's default layer_norm_epsilon 1e-5. */
    public static Gpt2Config of(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead) {
        return new Gpt2Config(vocabSize, nPositions, nEmbd, nLayer, nHead, 1e-5f);
    }

    /** GPT-2 small (124M): V=50257, P=1024, C=768, L=12, H=12. */
    public static Gpt2Config gpt2Small() {
        return of(50257, 1024, 768, 12, 12);
    }

    @Override
    public Family<Gpt2Config> family() {
        return Gpt2Family.INSTANCE;
    }

    @Override
    public int maxSeqLen() {
        return nPositions;
    }

    @Override
    public String maxSeqLenKey() {
        return "n_positions";
    }

    @Override
    public int hiddenSize() {
        return nEmbd;
    }

    @Override
    public int numLayers() {
        return nLayer;
    }

    @Override
    public String describe() {
        return "GPT-2 " + nLayer + " layers, n_embd " + nEmbd + ", " + nHead + " heads, vocab " + vocabSize
                + ", n_positions " + nPositions;
    }

    /** Head size C / H. */
    public int headSize() {
        return nEmbd / nHead;
    }

    /** Number of parameters (the tied lm_head counted once). */
    public long parameterCount() {
        long c = nEmbd;
        long perLayer = 2 * c + (c * 3 * c + 3 * c) + (c * c + c) + 2 * c + (c * 4 * c + 4 * c) + (4 * c * c + c);
        return (long) vocabSize * c + (long) nPositions * c + nLayer * perLayer + 2 * c;
    }

    // ---------------------------------------------------------------- config.json

    /** Reads {@code dir/config.json} (or {@code file} itself when it is not a directory). */
    public static Gpt2Config read(Path dirOrFile) throws IOException {
        Path file = ConfigJson.file(dirOrFile);
        JsonNode root = ConfigJson.read(file);
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(file + ": " + e.getMessage(), e);
        }
    }

    /** The config in a parsed config.json object; IllegalArgumentException names the key and value. */
    public static Gpt2Config fromJson(JsonNode root) {
        String type = text(root, "model_type");
        if (type != null && !type.equals("gpt2")) {
            throw new IllegalArgumentException("model_type \"" + type + "\" is not supported (only \"gpt2\")");
        }
        String act = text(root, "activation_function");
        if (act != null && !TANH_GELU.contains(act)) {
            throw new IllegalArgumentException("activation_function \"" + act + "\" is not supported: lorakit's GPT-2"
                    + " uses the tanh approximation of GELU (\"gelu_new\" or \"gelu_pytorch_tanh\")");
        }
        refuse(root, "tie_word_embeddings", false, "lorakit's lm_head is tied to wte");
        refuse(root, "scale_attn_weights", false, "lorakit scales attention scores by 1/sqrt(head size)");
        refuse(root, "scale_attn_by_inverse_layer_idx", true, "not implemented");
        refuse(root, "reorder_and_upcast_attn", true, "not implemented");
        refuse(root, "add_cross_attention", true, "GPT-2 as a decoder-only language model only");
        int vocab = requiredInt(root, "vocab_size");
        int embd = requiredInt(root, "n_embd");
        int layers = requiredInt(root, "n_layer");
        int heads = requiredInt(root, "n_head");
        int positions = root.has("n_positions") ? requiredInt(root, "n_positions") : optionalInt(root, "n_ctx");
        if (positions == Integer.MIN_VALUE) {
            throw new IllegalArgumentException("missing required key \"n_positions\" (nor \"n_ctx\")");
        }
        JsonNode inner = root.get("n_inner");
        if (inner != null && !inner.isNull() && !(inner.canConvertToInt() && inner.isIntegralNumber()
                && inner.intValue() == 4 * embd)) {
            throw new IllegalArgumentException("n_inner " + inner + " is not supported (only null or 4*n_embd = "
                    + 4 * embd + ")");
        }
        return new Gpt2Config(vocab, positions, embd, layers, heads, floatOr(root, "layer_norm_epsilon", 1e-5f));
    }

    /** HF's config.json for GPT2LMHeadModel (keys sorted); {@code torchDtype} e.g. "float32", "bfloat16". */
    @Override
    public String toJson(String torchDtype) {
        Map<String, Object> m = new TreeMap<>();
        m.put("activation_function", "gelu_new");
        m.put("architectures", List.of("GPT2LMHeadModel"));
        // HF's defaults; lorakit's model has no dropout (DecoderModel), HF applies these in train mode only.
        m.put("attn_pdrop", 0.1);
        m.put("embd_pdrop", 0.1);
        m.put("resid_pdrop", 0.1);
        m.put("initializer_range", 0.02);
        m.put("layer_norm_epsilon", Double.parseDouble(Float.toString(layerNormEpsilon)));   // 1e-5, not 9.99e-6
        m.put("model_type", "gpt2");
        m.put("n_ctx", nPositions);
        m.put("n_embd", nEmbd);
        m.put("n_head", nHead);
        m.put("n_inner", null);
        m.put("n_layer", nLayer);
        m.put("n_positions", nPositions);
        m.put("reorder_and_upcast_attn", false);
        m.put("scale_attn_by_inverse_layer_idx", false);
        m.put("scale_attn_weights", true);
        m.put("tie_word_embeddings", true);
        m.put("torch_dtype", torchDtype);
        m.put("use_cache", true);
        m.put("vocab_size", vocabSize);
        return ConfigJson.dumps(m);
    }

    /** Writes {@code dir/config.json} atomically (dir is created if missing), declaring float32 weights. */
    public void write(Path dir) throws IOException {
        ConfigJson.write(dir, this, "float32");
    }
}
