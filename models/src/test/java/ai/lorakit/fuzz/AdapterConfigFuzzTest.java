package ai.lorakit.fuzz;

import ai.lorakit.adapters.io.AdapterFormatException;
import ai.lorakit.adapters.io.PeftAdapterIO;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fuzzes adapter_config.json ({@link PeftAdapterIO#readConfig}, PeftConfigJson): any bytes either give a validated
 * config or an {@link AdapterFormatException} naming the file and the key. Seeds: PEFT's own files for LoRA, DoRA,
 * VeRA and AdaLoRA (ci/reference/peft).
 */
class AdapterConfigFuzzTest {

    static Path dir;

    @BeforeAll
    static void dir() throws IOException {
        dir = Files.createTempDirectory("lorakit-fuzz-adapter-config");
        Files.write(dir.resolve(PeftAdapterIO.WEIGHTS_FILE), new byte[0]);   // readConfig only checks it exists
    }

    @AfterAll
    static void clean() throws IOException {
        Files.deleteIfExists(dir.resolve(PeftAdapterIO.WEIGHTS_FILE));
        Files.deleteIfExists(dir.resolve(PeftAdapterIO.CONFIG_FILE));
        Files.deleteIfExists(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @Timeout(10)
    void parse(byte[] input) throws IOException {
        Files.write(dir.resolve(PeftAdapterIO.CONFIG_FILE), input);
        FuzzGuard.check(input.length, () -> PeftAdapterIO.readConfig(dir), AdapterFormatException.class);
    }
}
