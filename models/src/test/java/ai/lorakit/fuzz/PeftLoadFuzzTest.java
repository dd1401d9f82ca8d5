package ai.lorakit.fuzz;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.io.AdapterFormatException;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsException;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.train.TinyGpt2;
import com.code_intelligence.jazzer.api.FuzzedDataProvider;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Fuzzes the PEFT adapter loader against a real model ({@link PeftAdapterIO#load} into a tiny GPT-2 with LoRA
 * attached): the input is a list of edits (byte patches, truncations, a replaced config) applied to a valid adapter
 * that the model itself saved. Each edited adapter either loads, or fails with {@link AdapterFormatException} /
 * {@link SafetensorsException} with a message, and then not one adapter value changed (nothing half-loaded). The
 * empty input is the unedited adapter, which must load.
 */
class PeftLoadFuzzTest {

    static CpuBackend be;
    static DecoderModel model;
    static Path dir;
    static byte[] config;
    static byte[] weights;

    @BeforeAll
    static void model() throws IOException {
        be = new CpuBackend();
        model = TinyGpt2.random(be, 7);
        LoraConfig lora = LoraConfig.of(4, 8, "c_attn", "c_proj");
        model.attachAdapters(lora, 7);
        dir = Files.createTempDirectory("lorakit-fuzz-peft");
        Path valid = dir.resolve("valid");
        PeftAdapterIO.save(valid, lora, model.adaptedModules(), model.adapters().veraProjections(), "tiny");
        config = Files.readAllBytes(valid.resolve(PeftAdapterIO.CONFIG_FILE));
        weights = Files.readAllBytes(valid.resolve(PeftAdapterIO.WEIGHTS_FILE));
    }

    @AfterAll
    static void close() {
        model.close();
        be.close();
    }

    private static List<float[]> values() {
        List<float[]> v = new ArrayList<>();
        for (AdaptedLinear m : model.adaptedModules()) {
            for (Parameter p : m.parameters()) {
                v.add(be.download(p.value()));
            }
        }
        return v;
    }

    @FuzzTest(maxDuration = "10s")
    @Timeout(10)
    void load(FuzzedDataProvider data) throws IOException {
        byte[] cfg = config.clone();
        byte[] w = weights.clone();
        int edits = data.consumeInt(0, 8);
        for (int i = 0; i < edits && data.remainingBytes() > 0; i++) {
            int op = data.consumeInt(0, 3);
            if (op == 0 && cfg.length > 0) {
                cfg[data.consumeInt(0, cfg.length - 1)] = data.consumeByte();
            } else if (op == 1 && w.length > 0) {
                // the header (and the first values) is where the parser decides things
                w[data.consumeInt(0, Math.min(w.length, 4096) - 1)] = data.consumeByte();
            } else if (op == 2) {
                w = Arrays.copyOf(w, data.consumeInt(0, w.length));
            } else if (op == 3) {
                cfg = data.consumeBytes(1024);
            }
        }
        Path adapter = dir.resolve("edited");
        Files.createDirectories(adapter);
        Files.write(adapter.resolve(PeftAdapterIO.CONFIG_FILE), cfg);
        Files.write(adapter.resolve(PeftAdapterIO.WEIGHTS_FILE), w);
        List<float[]> before = values();
        boolean[] loaded = {false};
        FuzzGuard.check(cfg.length + w.length, () -> {
            try {
                PeftAdapterIO.load(adapter, model.adaptedModules(), model.adapters().veraProjections());
                loaded[0] = true;
            } catch (IOException | RuntimeException e) {
                List<float[]> after = values();
                for (int i = 0; i < before.size(); i++) {
                    if (!Arrays.equals(before.get(i), after.get(i))) {
                        throw new AssertionError("a refused load changed adapter tensor " + i, e);
                    }
                }
                throw e;
            }
        }, AdapterFormatException.class, SafetensorsException.class);
        if (edits == 0 && !loaded[0]) {
            throw new AssertionError("the unedited adapter did not load");
        }
    }
}
