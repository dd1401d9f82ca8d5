package ai.lorakit.fuzz;

import ai.lorakit.adapters.io.SafetensorsException;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorInfo;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Fuzzes the safetensors header and offsets parser ({@link SafetensorsFile#open}) and the element decoders: any
 * byte string either opens, and then every tensor decodes, or fails with {@link SafetensorsException} naming the
 * problem; integer tensors may refuse a U64 value above 2^63-1 with the documented ArithmeticException. Seeds:
 * src/test/resources/ai/lorakit/fuzz/SafetensorsFuzzTestInputs/parse (valid files of every dtype, regressions).
 */
class SafetensorsFuzzTest {

    static Path dir;

    @BeforeAll
    static void dir() throws IOException {
        dir = Files.createTempDirectory("lorakit-fuzz-safetensors");
    }

    @AfterAll
    static void clean() throws IOException {
        Files.deleteIfExists(dir.resolve("f.safetensors"));
        Files.deleteIfExists(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @Timeout(10)
    void parse(byte[] input) throws IOException {
        Path file = dir.resolve("f.safetensors");
        Files.write(file, input);
        FuzzGuard.check(input.length, () -> {
            try (SafetensorsFile sf = SafetensorsFile.open(file)) {
                sf.metadata();
                for (String name : sf.names()) {
                    TensorInfo t = sf.info(name);
                    float[] v = sf.floats(name);
                    if (v.length != t.numel()) {
                        throw new AssertionError(name + ": " + v.length + " values for numel " + t.numel());
                    }
                    if (t.dtype().isInteger()) {
                        try {
                            sf.longs(name);
                        } catch (ArithmeticException e) {
                            if (e.getMessage() == null || !e.getMessage().contains(name)) {
                                throw new AssertionError("ArithmeticException not naming the tensor", e);
                            }
                        }
                    }
                }
            }
        }, SafetensorsException.class);
    }
}
