package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Bad inputs are refused before any work, with messages that name the layer, the tensor and the sizes: wrong
 * x / dy / W / bias shapes, null arguments, VeRA projections on a non-VeRA adapter, backward without a
 * training-mode forward (never, after an eval forward, twice), a closed layer; and LoRA-FA's frozen A needs
 * neither dA nor the layer input.
 */
class BadInputTest {
    private static final String NAME = "transformer.h.3.attn.c_attn";
    private Backend be;
    private Tensor w;
    private Tensor bias;
    private AdaptedLinear layer;

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        w = be.upload(VariantCase.uniform(new java.util.Random(1), 6 * 4, 1), 6, 4);   // [out=6, in=4]
        bias = be.zeros(DType.F32, 6);
        layer = AdaptedLinear.create(NAME, w, bias, false, lora(0f), null, 5);
    }

    @AfterEach
    void tearDown() {
        layer.close();
        w.close();
        bias.close();
        be.close();
    }

    private static LoraConfig lora(float dropout) {
        return new LoraConfig(2, 4f, dropout, false, LoraConfig.Init.NONE, false, List.of("c_attn"), Map.of(), Map.of());
    }

    private static void mentions(RuntimeException e, String... parts) {
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), "message must mention '" + p + "': " + e.getMessage());
        }
    }

    @Test
    void inputWithTheWrongFeatureCountIsRefused() {
        try (Tensor x = be.zeros(DType.F32, 3, 5)) {
            mentions(assertThrows(ShapeException.class, () -> Fresh.forward(layer, x)), NAME, "[3, 5]", "in=4");
        }
    }

    @Test
    void gradientWithTheWrongShapeIsRefused() {
        layer.setTraining(true);
        try (Tensor x = be.zeros(DType.F32, 3, 4); Tensor y = Fresh.forward(layer, x);
             Tensor dyCols = be.zeros(DType.F32, 3, 5); Tensor dyRows = be.zeros(DType.F32, 2, 6)) {
            mentions(assertThrows(ShapeException.class, () -> Fresh.backward(layer, dyCols)), NAME, "[3, 5]", "out=6");
            mentions(assertThrows(ShapeException.class, () -> Fresh.backward(layer, dyRows)), NAME, "[2, 6]", "N=3");
            try (Tensor dy = be.zeros(DType.F32, 3, 6); Tensor dx = Fresh.backward(layer, dy)) {   // the cache survived
                assertArrayEquals(new int[] {3, 4}, dx.shape());
            }
        }
    }

    @Test
    void badWeightOrBiasShapesAreRefused() {
        try (Tensor w1 = be.zeros(DType.F32, 24); Tensor b5 = be.zeros(DType.F32, 5)) {
            mentions(assertThrows(ShapeException.class,
                    () -> AdaptedLinear.create(NAME, w1, null, false, lora(0f), null, 0)), NAME, "weight", "[24]");
            mentions(assertThrows(ShapeException.class,
                    () -> AdaptedLinear.create(NAME, w, b5, false, lora(0f), null, 0)), NAME, "bias", "[5]", "out=6");
            // with fan_in_fan_out the same W [6,4] has out=4: a bias [6] no longer fits
            mentions(assertThrows(ShapeException.class,
                    () -> AdaptedLinear.create(NAME, w, bias, true, lora(0f), null, 0)), NAME, "bias", "out=4");
        }
        mentions(assertThrows(IllegalArgumentException.class,
                () -> AdaptedLinear.create(NAME, w, bias, false, null, null, 0)), NAME, "config");
        mentions(assertThrows(IllegalArgumentException.class,
                () -> AdaptedLinear.create(NAME, null, bias, false, lora(0f), null, 0)), NAME, "weight");
        VeraConfig vc = VeraConfig.of(2, "c_attn");
        try (VeraProjections p = VeraProjections.create(be, vc, 4, 6)) {
            mentions(assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create(NAME, w, bias, false, lora(0f), p, 0)), NAME, "VeRA", "LORA");
        }
    }

    @Test
    void backwardNeedsATrainingForward() {
        try (Tensor x = be.zeros(DType.F32, 3, 4); Tensor dy = be.zeros(DType.F32, 3, 6)) {
            mentions(assertThrows(IllegalStateException.class, () -> Fresh.backward(layer, dy)), NAME,
                    "training-mode forward");
            try (Tensor y = Fresh.forward(layer, x)) {                      // eval mode: nothing kept
                mentions(assertThrows(IllegalStateException.class, () -> Fresh.backward(layer, dy)), NAME);
            }
            layer.setTraining(true);
            try (Tensor y = Fresh.forward(layer, x); Tensor dx = Fresh.backward(layer, dy)) {
                // consumed
                mentions(assertThrows(IllegalStateException.class, () -> Fresh.backward(layer, dy)), NAME);
            }
            try (Tensor y = Fresh.forward(layer, x)) {
                layer.merge();                                        // W changed: the cache is void
                mentions(assertThrows(IllegalStateException.class, () -> Fresh.backward(layer, dy)), NAME);
            }
        }
    }

    @Test
    void aClosedLayerRefusesWork() {
        layer.close();
        try (Tensor x = be.zeros(DType.F32, 3, 4)) {
            mentions(assertThrows(IllegalStateException.class, () -> Fresh.forward(layer, x)), NAME, "closed");
        }
        assertThrows(IllegalStateException.class, layer::merge);
        assertDoesNotThrow(layer::close, "close is idempotent");
        assertTrue(layer.parameter(Parameter.Role.LORA_A).value().isClosed(), "close releases A");
        assertTrue(!w.isClosed() && !bias.isClosed(), "close leaves the caller's W and bias open");
    }

    /** LoRA-FA: with A frozen, backward skips dA and does not need x (x may be closed before backward). */
    @Test
    void frozenAIsSkippedAndTheInputIsNotKept() {
        try (AdaptedLinear fa = AdaptedLinear.create(NAME + "_fa", w, bias, false, lora(0f), null, 6);
             Tensor dy = be.upload(VariantCase.uniform(new java.util.Random(2), 18, 1), 3, 6)) {
            Parameter a = fa.parameter(Parameter.Role.LORA_A);
            a.setTrainable(false);
            fa.setTraining(true);
            Tensor x = be.upload(VariantCase.uniform(new java.util.Random(3), 12, 1), 3, 4);
            Tensor y = Fresh.forward(fa, x);
            x.close();
            y.close();
            try (Tensor dx = Fresh.backward(fa, dy)) {
                assertNull(a.grad(), "frozen A gets no gradient");
                assertTrue(fa.parameter(Parameter.Role.LORA_B).grad() != null, "B still gets one");
            }
            // unfreezing between forward and backward is reported, not silently wrong
            try (Tensor x2 = be.zeros(DType.F32, 3, 4); Tensor y2 = Fresh.forward(fa, x2)) {
                a.setTrainable(true);
                mentions(assertThrows(IllegalStateException.class, () -> Fresh.backward(fa, dy)), "lora_A");
            }
        }
    }
}
