package ai.lorakit.fuzz;

import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.gpt2.Gpt2Config;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fuzzes the Hugging Face config.json reader ({@link Gpt2Config#read}): any bytes either give a validated config or
 * a {@link CheckpointFormatException} naming the file and the key. Seeds: the embedded default model's config and a
 * 12-layer x 768 one.
 */
class HfConfigFuzzTest {

    static Path file;

    @BeforeAll
    static void dir() throws IOException {
        file = Files.createTempFile("lorakit-fuzz", "config.json");
    }

    @AfterAll
    static void clean() throws IOException {
        Files.deleteIfExists(file);
    }

    @FuzzTest(maxDuration = "10s")
    @Timeout(10)
    void parse(byte[] input) throws IOException {
        Files.write(file, input);
        FuzzGuard.check(input.length, () -> Gpt2Config.read(file), CheckpointFormatException.class);
    }
}
