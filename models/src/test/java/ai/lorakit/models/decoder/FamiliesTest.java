package ai.lorakit.models.decoder;

import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.gpt2.Gpt2Family;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the family registry: config.json's model_type picks the family (a missing model_type is GPT-2, as in old
 * GPT-2 checkpoints), an unknown or non-string model_type is refused naming the supported ones, every registered
 * family is found under its own model_type, and a config written by {@link ModelConfig#toJson} reads back equal.
 */
class FamiliesTest {

    @TempDir
    Path dir;

    @Test
    void modelTypeChoosesTheFamily() throws IOException {
        for (String type : Families.modelTypes()) {
            assertEquals(type, Families.forModelType(type).modelType());
        }
        assertSame(Gpt2Family.INSTANCE, Families.forModelType("gpt2"));
        Gpt2Config cfg = Gpt2Config.of(19, 16, 16, 2, 2);
        Files.writeString(dir.resolve("config.json"), cfg.toJson("float32"));
        assertEquals(cfg, Families.readConfig(dir), "toJson -> readConfig round trip");
        Files.writeString(dir.resolve("config.json"), "{\"vocab_size\": 19, \"n_positions\": 16, \"n_embd\": 16,"
                + " \"n_layer\": 2, \"n_head\": 2}");
        assertEquals(cfg, Families.readConfig(dir), "no model_type: GPT-2");
    }

    @Test
    void unknownModelTypesAreRefusedNamingTheSupportedOnes() throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"mamba\", \"vocab_size\": 19}");
        var e = assertThrows(CheckpointFormatException.class, () -> Families.readConfig(dir));
        assertTrue(e.getMessage().contains("model_type \"mamba\" is not supported (supported: gpt2"), e.getMessage());
        assertTrue(e.getMessage().contains("config.json"), "names the file: " + e.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": 7}");
        var e2 = assertThrows(CheckpointFormatException.class, () -> Families.readConfig(dir));
        assertTrue(e2.getMessage().contains("model_type must be a string, got 7"), e2.getMessage());
        var e3 = assertThrows(CheckpointFormatException.class, () -> Families.readConfig(dir.resolve("none")));
        assertTrue(e3.getMessage().contains("missing"), e3.getMessage());
    }
}
