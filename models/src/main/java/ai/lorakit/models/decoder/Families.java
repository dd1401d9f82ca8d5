package ai.lorakit.models.decoder;

import ai.lorakit.models.gpt2.Gpt2Family;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * The registry of model families, by config.json's model_type (one line per family), and the reading of
 * config.json. A config.json without model_type is GPT-2's (old GPT-2 checkpoints lack the key).
 */
public final class Families {

    public static final String CONFIG_FILE = "config.json";

    private static final Map<String, Family<?>> BY_TYPE = new TreeMap<>(Map.of(
            Gpt2Family.INSTANCE.modelType(), Gpt2Family.INSTANCE));

    private static final String DEFAULT_TYPE = "gpt2";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .build();

    private Families() {
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
        Path file = configFile(dirOrFile);
        JsonNode root = readJson(file);
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

    /** {@code dir/config.json}, or the path itself when it is not a directory. */
    public static Path configFile(Path dirOrFile) {
        return Files.isDirectory(dirOrFile) ? dirOrFile.resolve(CONFIG_FILE) : dirOrFile;
    }

    /** The JSON object in a config.json; CheckpointFormatException for a missing file, bad JSON or a non-object. */
    public static JsonNode readJson(Path file) throws IOException {
        byte[] bytes;
        try {
            bytes = Files.readAllBytes(file);
        } catch (NoSuchFileException e) {
            throw new CheckpointFormatException(file + ": missing (a model checkpoint directory has " + CONFIG_FILE
                    + " and " + HfCheckpoint.WEIGHTS_FILE + ")", e);
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            throw new CheckpointFormatException(file + ": invalid JSON: " + e.getOriginalMessage(), e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointFormatException(file + ": must contain a JSON object");
        }
        return root;
    }
}
