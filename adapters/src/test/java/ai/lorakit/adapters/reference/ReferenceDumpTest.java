package ai.lorakit.adapters.reference;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that lorakit's {@link AdaptedLinear} on the CPU backend agrees with an independent PyTorch autograd
 * implementation of VARIANTS.md (ci/reference/dumps, made by ci/reference/make_reference.py) for LoRA (Linear
 * and Conv1D layouts), rsLoRA, DoRA (detached norm, both layouts), VeRA (sliced shared projections) and
 * AdaLoRA: the scaling, the training-mode forward y, the input gradient dx, the gradient of every trainable
 * tensor, the merged weight, and that unmerge restores W. Non-identity adapters, so every gradient is
 * non-trivial. Tolerance.F32 throughout.
 */
class ReferenceDumpTest extends ReferenceTestBase {

    private static final String NAME = "transformer.h.0.attn.c_attn";

    /** PEFT tensor name -> lorakit parameter role. */
    private static final Map<String, Parameter.Role> ROLES = Map.of(
            "lora_A", Parameter.Role.LORA_A,
            "lora_B", Parameter.Role.LORA_B,
            "lora_E", Parameter.Role.LORA_E,
            "lora_magnitude_vector", Parameter.Role.MAGNITUDE,
            "vera_lambda_b", Parameter.Role.VERA_LAMBDA_B,
            "vera_lambda_d", Parameter.Role.VERA_LAMBDA_D);

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"lora", "lora_fifo", "lora_rslora", "dora", "dora_fifo", "vera", "adalora"})
    void matchesPyTorch(String dumpCase) {
        SafetensorsFile f = keep(ReferenceFiles.open("dumps/" + dumpCase + ".safetensors"));
        assertEquals(dumpCase, ReferenceFiles.meta(f, "case"), "dump's case");
        String variant = ReferenceFiles.meta(f, "variant");
        boolean fifo = Boolean.parseBoolean(ReferenceFiles.meta(f, "fifo"));
        int r = ReferenceFiles.metaInt(f, "r");
        String[] trainable = ReferenceFiles.meta(f, "trainable").split(",");

        Tensor w = keep(ReferenceFiles.upload(backend, f, "W"));
        Tensor b = keep(ReferenceFiles.upload(backend, f, "b"));
        VeraProjections shared = null;
        AdapterConfig config = switch (variant) {
            case "lora", "dora" -> new LoraConfig(r, ReferenceFiles.metaFloat(f, "alpha"), 0f,
                    Boolean.parseBoolean(ReferenceFiles.meta(f, "use_rslora")), LoraConfig.Init.NONE,
                    Boolean.parseBoolean(ReferenceFiles.meta(f, "use_dora")), List.of(NAME), Map.of(), Map.of());
            case "vera" -> {
                shared = keep(new VeraProjections(ReferenceFiles.upload(backend, f, "vera_A"),
                        ReferenceFiles.upload(backend, f, "vera_B")));
                yield new VeraConfig(r, 0L, true, 0.1f, 0f, List.of(NAME));
            }
            case "adalora" -> new AdaLoraConfig(ReferenceFiles.metaInt(f, "init_r"), 2, 0, 0, 1, 0.85f, 0.85f, 0.5f,
                    100, ReferenceFiles.metaFloat(f, "alpha"), 0f, List.of(NAME), null);
            default -> throw new AssertionError("unknown variant " + variant + " in " + f.path());
        };

        AdaptedLinear layer = keep(AdaptedLinear.create(NAME, w, b, fifo, config, shared, 1234L));
        assertEquals(ReferenceFiles.metaInt(f, "in"), layer.inFeatures(), "in_features");
        assertEquals(ReferenceFiles.metaInt(f, "out"), layer.outFeatures(), "out_features");
        assertEquals(fifo, layer.fanInFanOut(), "fan_in_fan_out");
        double s = Double.parseDouble(ReferenceFiles.meta(f, "scaling"));
        assertEquals(s, layer.scaling(), 1e-6 * Math.abs(s), "scaling s of " + dumpCase);

        // the dump's adapter tensors replace lorakit's initialisation
        for (String t : trainable) {
            Parameter p = layer.parameter(ROLES.get(t));
            assertNotNull(p, dumpCase + ": lorakit layer has no parameter with role " + ROLES.get(t) + " (" + t + ")");
            assertTrue(p.trainable(), dumpCase + ": " + p + " should be trainable");
            ReferenceFiles.copyInto(backend, f, t, p.value());
        }

        layer.setTraining(true);
        try (Tensor x = ReferenceFiles.upload(backend, f, "x");
             Tensor g = ReferenceFiles.upload(backend, f, "g");
             Tensor y = Fresh.forward(layer, x)) {
            ReferenceFiles.assertClose(dumpCase + " y", f, "y", y);
            try (Tensor dx = Fresh.backward(layer, g)) {
                ReferenceFiles.assertClose(dumpCase + " dx", f, "dx", dx);
            }
        }
        for (String t : trainable) {
            Parameter p = layer.parameter(ROLES.get(t));
            assertNotNull(p.grad(), dumpCase + ": no gradient for " + p + " after backward");
            ReferenceFiles.assertClose(dumpCase + " grad." + t, f, "grad." + t, p.grad());
        }

        float[] w0 = backend.download(layer.weight());
        layer.merge();
        assertTrue(layer.merged(), "merged() after merge()");
        ReferenceFiles.assertClose(dumpCase + " W_merged", f, "W_merged", layer.weight());
        layer.unmerge();
        assertFalse(layer.merged(), "merged() after unmerge()");
        ReferenceFiles.assertClose(dumpCase + " W after unmerge", w0, backend.download(layer.weight()));
    }
}
