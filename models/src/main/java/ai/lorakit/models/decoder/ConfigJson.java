package ai.lorakit.models.decoder;

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
import java.util.Map;

/**
 * Reading and writing HF config.json files, shared by the families' config records: the file (strict JSON, no
 * duplicate keys), typed key access whose IllegalArgumentExceptions name the key and the value, and the writer.
 */
public final class ConfigJson {

    public static final String CONFIG_FILE = "config.json";

    private static final JsonMapper JSON = JsonMapper.builder()
            .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .build();

    private ConfigJson() {
    }

    /** {@code dir/config.json}, or the path itself when it is not a directory. */
    public static Path file(Path dirOrFile) {
        return Files.isDirectory(dirOrFile) ? dirOrFile.resolve(CONFIG_FILE) : dirOrFile;
    }

    /** The JSON object in a config.json; CheckpointFormatException for a missing file, bad JSON or a non-object. */
    public static JsonNode read(Path file) throws IOException {
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
        } catch (CharConversionException e) {   // Jackson guessed UTF-16/32 from the first bytes (fuzz finding)
            throw new CheckpointFormatException(file + ": invalid JSON: not UTF-8 text (" + e.getMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new CheckpointFormatException(file + ": must contain a JSON object");
        }
        return root;
    }

    /** Writes {@code dir/config.json} atomically (dir created if missing) with {@link ModelConfig#toJson}. */
    public static void write(Path dir, ModelConfig cfg, String torchDtype) throws IOException {
        Files.createDirectories(dir);
        AtomicFiles.write(dir.resolve(CONFIG_FILE), cfg.toJson(torchDtype).getBytes(StandardCharsets.UTF_8));
    }

    /** The keys as indented JSON (pass a sorted map for sorted keys) with a final newline. */
    public static String dumps(Map<String, Object> keys) {
        try {
            return JSON.writeValueAsString(keys) + "\n";
        } catch (JsonProcessingException ex) {
            throw new IllegalStateException("config.json serialisation failed", ex);
        }
    }

    /** The string value of key, or null when absent/null. */
    public static String text(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return null;
        }
        if (!n.isTextual()) {
            throw new IllegalArgumentException(key + " must be a string, got " + n);
        }
        return n.textValue();
    }

    /** The integer value of key; missing or null is an error. */
    public static int requiredInt(JsonNode root, String key) {
        int v = optionalInt(root, key);
        if (v == Integer.MIN_VALUE) {
            throw new IllegalArgumentException("missing required key \"" + key + "\"");
        }
        return v;
    }

    /** The integer value of key, or Integer.MIN_VALUE when absent/null. */
    public static int optionalInt(JsonNode root, String key) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return Integer.MIN_VALUE;
        }
        if (!n.isIntegralNumber() || !n.canConvertToInt()) {
            throw new IllegalArgumentException(key + " must be an integer, got " + n);
        }
        return n.intValue();
    }

    /** The number value of key as a float, or {@code dflt} when absent/null. */
    public static float floatOr(JsonNode root, String key, float dflt) {
        JsonNode n = root.get(key);
        if (n == null || n.isNull()) {
            return dflt;
        }
        if (!n.isNumber()) {
            throw new IllegalArgumentException(key + " must be a number, got " + n);
        }
        return n.floatValue();
    }

    /** Throws when the boolean key is present with the value {@code bad}, naming the key and {@code why}. */
    public static void refuse(JsonNode root, String key, boolean bad, String why) {
        JsonNode n = root.get(key);
        if (n != null && n.isBoolean() && n.booleanValue() == bad) {
            throw new IllegalArgumentException(key + "=" + bad + " is not supported (" + why + ")");
        }
    }

    /** Throws unless v > 0, naming the field. */
    public static void positive(String field, int v) {
        if (v <= 0) {
            throw new IllegalArgumentException(field + " must be > 0, got " + v);
        }
    }
}
