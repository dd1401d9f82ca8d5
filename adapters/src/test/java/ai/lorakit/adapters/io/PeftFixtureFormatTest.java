package ai.lorakit.adapters.io;

import ai.lorakit.adapters.AdapterConfig;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Cross-checks lorakit's writers against the PEFT-format fixtures of ci/reference/peft (written independently,
 * by ci/reference/make_reference.py, as PEFT's save_pretrained lays them out): re-writing a fixture's tensors
 * gives the fixture's adapter_model.safetensors byte for byte, and writing the config read from a fixture gives
 * its adapter_config.json byte for byte, except {@code peft_version} (lorakit does not claim a PEFT release) and
 * the init flags lorakit's VeRA/AdaLoRA configs do not carry (written as PEFT's default, true).
 */
class PeftFixtureFormatTest {

    @TempDir
    Path tmp;

    private static Path fixture(String name) {
        for (String c : new String[]{"../ci/reference/peft", "ci/reference/peft"}) {
            Path p = Path.of(c).resolve(name).toAbsolutePath().normalize();
            if (Files.isDirectory(p)) {
                return p;
            }
        }
        // the fixtures are committed: a missing one is a failure, not a reason to skip
        return fail("ci/reference/peft/" + name + " not found; regenerate with ci/reference/make_reference.py");
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "dora", "vera", "adalora", "adalora_pruned"})
    void safetensorsWriterReproducesFixtureBytes(String name) throws IOException {
        Path src = fixture(name).resolve(PeftAdapterIO.WEIGHTS_FILE);
        Map<String, TensorData> tensors = new LinkedHashMap<>();
        Map<String, String> meta;
        try (SafetensorsFile sf = SafetensorsFile.open(src)) {
            meta = sf.metadata();
            for (String n : sf.names()) {
                ByteBuffer b = sf.bytes(n);
                byte[] d = new byte[b.remaining()];
                b.get(d);
                tensors.put(n, new TensorData(sf.info(n).dtype(), sf.info(n).shape(), d));
            }
        }
        assertEquals(Map.of("format", "pt"), meta);
        Path out = tmp.resolve("out.safetensors");
        Safetensors.write(out, tensors, meta);
        assertArrayEquals(Files.readAllBytes(src), Files.readAllBytes(out), name);
    }

    @ParameterizedTest
    @ValueSource(strings = {"lora", "dora", "vera", "adalora", "adalora_pruned"})
    void configWriterReproducesFixtureText(String name) throws IOException {
        Path dir = fixture(name);
        String want = Files.readString(dir.resolve(PeftAdapterIO.CONFIG_FILE))
                .replaceAll("\n  \"peft_version\": \"[^\"]*\",", "")
                .replace("\"init_weights\": false", "\"init_weights\": true");
        if (name.startsWith("adalora")) {
            want = want.replace("\"init_lora_weights\": false", "\"init_lora_weights\": true");
        }
        AdapterConfig c = PeftAdapterIO.readConfig(dir);
        String got = PythonJson.dumps(PeftConfigJson.toMap(c, true, null));
        assertEquals(want, got, name);
    }
}
