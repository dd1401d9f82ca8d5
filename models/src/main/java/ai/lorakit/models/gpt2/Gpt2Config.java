package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.io.AtomicFiles;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.CharConversionException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

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
public record Gpt2Config(int vocabSize, int nPositions, int nEmbd, int nLayer, int nHead, float layerNormEpsilon) {

    public static final String CONFIG_FILE = "config.json";

    /** The activation functions accepted on read: both are 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))). */
    private static final Set<String> TANH_GELU = Set.of("gelu_new", "gelu_pytorch_tanh");

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

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

    private static void positive(String field, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(field + " must be > 0, got " + v);
        }
    }

    // ---------------------------------------------------------------- config.json

    /** Reads {@code dir/config.json} (or {@code file} itself when it is not a directory). */
    public static Gpt2Config read(Path dirOrFile) throws IOException {
        Path file = Files.isDirectory(dirOrFile) ? dirOrFile.resolve(CONFIG_FILE) : dirOrFile;
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException(file + ": missing (a GPT-2 checkpoint directory has " + CONFIG_FILE
                    + " and " + Gpt2Checkpoint.WEIGHTS_FILE + ")", e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new CheckpointFormatException(file + ": invalid JSON: " + e.getOriginalMessage(), e);
        } catch (CharConversionException e) {   // Jackson guessed UTF-16/32 from the first bytes (fuzz finding)
            throw new CheckpointFormatException(file + ": invalid JSON: not UTF-8 text (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointFormatException(file + ": must contain a JSON object");
        }
        try {
            return fromJson(root);
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(file + ": " + e.getMessage(), e);
        }
    }

    /** The config in a parsed config.json object; IllegalArgumentException names the key and value. */
    static Gpt2Config fromJson(JsonNode root) {
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
        float eps = 1e-5f;
        JsonNode e = root.get("layer_norm_epsilon");
        if (e != null && !e.isNull()) {
            if (!e.isNumber()) {
                throw new IllegalArgumentException("layer_norm_epsilon must be a number, got " + e);
            }
            eps = e.floatValue();
        }
        return new Gpt2Config(vocab, positions, embd, layers, heads, eps);
    }

    /** HF's config.json for GPT2LMHeadModel (keys sorted); {@code torchDtype} e.g. "float32", "bfloat16". */
    String toJson(String torchDtype) {
        Map<String, Object> m = new TreeMap<>();
        m.put("activation_function", "gelu_new");
        m.put("architectures", List.of("GPT2LMHeadModel"));
        // HF's defaults; lorakit's model has no dropout (Gpt2Model), HF applies these in train mode only.
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
        try {
            return JSON.writeValueAsString(m) + "\n";
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException("config.json serialisation failed", ex);
        }
    }

    /** Writes {@code dir/config.json} atomically (dir is created if missing), declaring float32 weights. */
    public void write(Path dir) throws IOException {
        write(dir, "float32");
    }

    void write(Path dir, String torchDtype) throws IOException {
        Files.createDirectories(dir);
        AtomicFiles.write(dir.resolve(CONFIG_FILE), toJson(torchDtype).getBytes(StandardCharsets.UTF_8));
    }

    // ---------------------------------------------------------------- JSON helpers

    private static String text(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException(key + " must be a string, got " + n);
        }
        return n.textValue();
    }

    private static int requiredInt(JsonNode root, String key) {
        int v = optionalInt(root, key);
        if (v == Integer.MIN_VALUE) {
            throw new IllegalArgumentException("missing required key \"" + key + "\"");
        }
        return v;
    }

    /** The integer value of key, or Integer.MIN_VALUE when absent/null. */
    private static int optionalInt(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return Integer.MIN_VALUE;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw new IllegalArgumentException(key + " must be an integer, got " + n);
        }
        return n.intValue();
    }

    /** Throws when the boolean key is present with the value {@code bad}. */
    private static void refuse(JsonNode root, String key, boolean bad, String why) {
        JsonNode n = root.get(key);
        if (n != null && n.isBoolean() && n.booleanValue() == bad) {
            throw new IllegalArgumentException(key + "=" + bad + " is not supported (" + why + ")");
        }
    }
}
