package ai.lorakit.models.decoder;

import ai.lorakit.models.gpt2.Gpt2Family;
import ai.lorakit.models.llama.LlamaFamily;
import com.fasterxml.jackson.databind.JsonNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The registry of model families, by config.json's model_type: one line per family. A config.json without
 * model_type is GPT-2's (old GPT-2 checkpoints lack the key).
 */
public final class Families {

    private static final Map<String, Family<?>> BY_TYPE = new TreeMap<>();

    static {
        register(Gpt2Family.INSTANCE);
        register(LlamaFamily.LLAMA);
        register(LlamaFamily.MISTRAL);
        register(LlamaFamily.QWEN2);
        register(LlamaFamily.QWEN3);
    }

    private static final String DEFAULT_TYPE = "gpt2";

    private Families() {
    }

    private static void register(Family<?> f) {
        BY_TYPE.put(f.modelType(), f);
    }

    /** The model_types lorakit implements, sorted. */
    public static List<String> modelTypes() {
        return List.copyOf(BY_TYPE.keySet());
    }

    /** The family of this model_type; IllegalArgumentException listing the supported ones. */
    public static Family<?> forModelType(String modelType) {
        Family<?> f = BY_TYPE.get(modelType);
        if (f == null) {
            throw new IllegalArgumentException("model_type \"" + modelType + "\" is not supported (supported: "
                    + String.join(", ", BY_TYPE.keySet()) + ")");
        }
        return f;
    }

    /**
     * The config of {@code dir/config.json} (or of {@code file} itself when it is not a directory), parsed by the
     * family its model_type names.
     *
     * @throws CheckpointFormatException a missing or invalid file, an unknown model_type, a refused key (named)
     */
    public static ModelConfig readConfig(Path dirOrFile) throws IOException {
        Path file = ConfigJson.file(dirOrFile);
        JsonNode root = ConfigJson.read(file);
        try {
            JsonNode t = root.get("model_type");
            if (t != null && !t.isNull() && !t.isTextual()) {
                throw new IllegalArgumentException("model_type must be a string, got " + t);
            }
            return forModelType(t == null || t.isNull() ? DEFAULT_TYPE : t.textValue()).parseConfig(root);
        } catch (IllegalArgumentException e) {
            throw new CheckpointFormatException(file + ": " + e.getMessage(), e);
        }
    }
}
