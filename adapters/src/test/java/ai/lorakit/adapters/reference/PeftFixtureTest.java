package ai.lorakit.adapters.reference;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that lorakit loads what PEFT's save_pretrained writes: for each fixture of ci/reference/peft (LoRA,
 * DoRA, VeRA with saved projections, AdaLoRA before and after rank allocation; two GPT-2 modules, one Conv1D
 * [in,out] and one Linear [out,in]), {@link PeftAdapterIO#readConfig} and {@link PeftAdapterIO#load} put the
 * file's tensors into fresh lorakit layers built on the fixture's base weights, and then the eval-mode outputs
 * and the merged weights equal the PyTorch references in expected.safetensors (Tolerance.F32).
 */
class PeftFixtureTest extends ReferenceTestBase {

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"lora", "dora", "vera", "adalora", "adalora_pruned"})
    void loadsPeftFiles(String fixture) throws IOException {
        Path dir = ReferenceFiles.root().resolve("peft").resolve(fixture);
        assertTrue(Files.isDirectory(dir), "missing PEFT fixture " + dir
                + "; regenerate with: /usr/bin/python3 ci/reference/make_reference.py");
        SafetensorsFile exp = keep(ReferenceFiles.open("peft/" + fixture + "/expected.safetensors"));

        AdapterConfig config = PeftAdapterIO.readConfig(dir);
        assertEquals(ReferenceFiles.meta(exp, "peft_type"), config.peftType(), "peft_type of " + fixture);
        switch (fixture) {
            case "lora" -> assertTrue(!assertInstanceOf(LoraConfig.class, config).useDora(), "lora: use_dora false");
            case "dora" -> assertTrue(assertInstanceOf(LoraConfig.class, config).useDora(), "dora: use_dora true");
            case "vera" -> assertInstanceOf(VeraConfig.class, config);
            default -> assertInstanceOf(AdaLoraConfig.class, config);
        }

        String[] names = ReferenceFiles.meta(exp, "modules").split(",");
        VeraProjections shared = null;
        if (config instanceof VeraConfig v) {
            int inMax = 0;
            int outMax = 0;
            for (String n : names) {
                inMax = Math.max(inMax, ReferenceFiles.metaInt(exp, n + ".in"));
                outMax = Math.max(outMax, ReferenceFiles.metaInt(exp, n + ".out"));
            }
            shared = keep(VeraProjections.create(backend, v, inMax, outMax));   // overwritten by the file's
        }
        List<AdaptedLinear> modules = new ArrayList<>();
        for (String n : names) {
            Tensor w = keep(ReferenceFiles.upload(backend, exp, n + ".weight"));
            Tensor b = keep(ReferenceFiles.upload(backend, exp, n + ".bias"));
            boolean fifo = Boolean.parseBoolean(ReferenceFiles.meta(exp, n + ".fifo"));
            AdaptedLinear m = keep(AdaptedLinear.create(n, w, b, fifo, config, shared, 99L));
            double s = Double.parseDouble(ReferenceFiles.meta(exp, n + ".scaling"));
            assertEquals(s, m.scaling(), 1e-6 * Math.abs(s), fixture + ": scaling of " + n);
            modules.add(m);
        }

        AdapterConfig loaded = PeftAdapterIO.load(dir, modules, shared);
        assertEquals(config.peftType(), loaded.peftType(), "config returned by load");

        try (Tensor x = ReferenceFiles.upload(backend, exp, "x")) {
            for (AdaptedLinear m : modules) {
                m.setTraining(false);
                try (Tensor y = Fresh.forward(m, x)) {
                    ReferenceFiles.assertClose(fixture + " " + m.name() + " y", exp, m.name() + ".y", y);
                }
            }
        }
        for (AdaptedLinear m : modules) {
            m.merge();
            ReferenceFiles.assertClose(fixture + " " + m.name() + " W_merged", exp, m.name() + ".W_merged", m.weight());
        }
    }
}
