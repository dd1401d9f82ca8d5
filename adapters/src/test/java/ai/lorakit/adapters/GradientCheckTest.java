package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.adapters.VariantCase.IN;
import static ai.lorakit.adapters.VariantCase.N;
import static ai.lorakit.adapters.VariantCase.OUT;
import static ai.lorakit.adapters.VariantCase.toDouble;
import static ai.lorakit.adapters.VariantCase.uniform;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, for every parametrisation and option (LoRA, fifo, rsLoRA, dropout, LoRA-FA's frozen A, DoRA with and
 * without fifo/dropout, VeRA on a layer smaller than its shared projections, AdaLoRA), that lorakit's forward
 * equals an independent double-precision forward written from VARIANTS.md ({@link DoubleReference}), and that
 * the hand-written backward (dx and every trainable gradient) equals central finite differences of that double
 * forward for loss = sum(G ∘ y) with a random G. Dropout uses the mask the backend draws for the layer's seed.
 * DoRA's reference holds the weight norm n constant (detached, paper section 4.3), as lorakit and PEFT do.
 */
class GradientCheckTest {

    /** Gradients of fp32 code against exact ones: the fp32 rule with a 1e-4 absolute floor. */
    private static final Tolerance GRAD = new Tolerance(1e-4, 1e-4);

    static Stream<VariantCase> cases() {
        return VariantCase.all().stream();
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void forwardAndBackwardMatchTheDoubleReference(VariantCase c) {
        try (Backend be = new CpuBackend(); VariantCase.Setup s = new VariantCase.Setup(be, c, false, 42)) {
            Random rnd = new Random(7);
            float[] xv = uniform(rnd, N * IN, 1);
            float[] gv = uniform(rnd, N * OUT, 1);
            AdaptedLinear layer = s.layer;
            layer.setTraining(true);
            double[] mask = null;
            if (c.dropout() > 0) {
                long seed = layer.dropoutSeed(layer.dropoutStep());
                try (Tensor m = be.zeros(DType.F32, N, IN)) {
                    be.dropoutMask(m, c.dropout(), seed);
                    mask = toDouble(be.download(m));
                }
                int zeros = 0;
                for (double v : mask) {
                    zeros += v == 0 ? 1 : 0;
                }
                assertTrue(zeros > 0 && zeros < mask.length, "the mask must drop some but not all inputs: " + zeros);
            }
            DoubleReference ref = reference(be, s, xv, mask);
            try (Tensor x = be.upload(xv, N, IN); Tensor y = Fresh.forward(layer, x)) {
                Tolerance.Result fwd = Tolerance.F32.compare(c + " forward", be.download(y), ref.forward());
                assertTrue(fwd.ok(), fwd.describe());
                try (Tensor g = be.upload(gv, N, OUT); Tensor dx = Fresh.backward(layer, g)) {
                    if (c.kind() == VariantCase.Kind.DORA) {
                        ref.nFixed = ref.doraNorm();     // detached norm: a constant for the derivative
                    }
                    double[] gd = toDouble(gv);
                    check(c + " dx", be.download(dx), ref.finiteDifference(ref.x, gd));
                    int trainable = 0;
                    for (Parameter p : layer.parameters()) {
                        if (p.trainable()) {
                            trainable++;
                            assertNotNull(p.grad(), p + " has no gradient after backward");
                            check(c + " d" + p.name(), be.download(p.grad()),
                                    ref.finiteDifference(ref.p.get(key(p.role())), gd));
                        } else {
                            assertNull(p.grad(), "frozen " + p + " must not get a gradient");
                        }
                    }
                    assertEquals(expectedTrainable(c), trainable, "trainable parameters of " + c);
                }
            }
        }
    }

    private static void check(String what, float[] actual, double[] ref) {
        Tolerance.Result r = GRAD.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    private static int expectedTrainable(VariantCase c) {
        return switch (c.kind()) {
            case LORA -> c.freezeA() ? 1 : 2;
            case DORA -> 3;
            case VERA -> 2;
            case ADALORA -> 3;
        };
    }

    /** The reference's key for a parameter role. */
    static String key(Parameter.Role role) {
        return switch (role) {
            case LORA_A -> "A";
            case LORA_B -> "B";
            case LORA_E -> "E";
            case MAGNITUDE -> "m";
            case VERA_LAMBDA_B -> "lb";
            case VERA_LAMBDA_D -> "ld";
            default -> throw new AssertionError("unexpected adapter parameter role " + role);
        };
    }

    /** A double reference holding copies of the layer's current tensors. */
    static DoubleReference reference(Backend be, VariantCase.Setup s, float[] xv, double[] mask) {
        VariantCase c = s.c;
        DoubleReference ref = new DoubleReference(c.kind(), c.fifo(), xv.length / IN, IN, OUT, VariantCase.R,
                c.scaling(), toDouble(be.download(s.w)), toDouble(be.download(s.bias)), toDouble(xv), mask);
        for (Parameter p : s.layer.parameters()) {
            ref.p.put(key(p.role()), toDouble(be.download(p.value())));
        }
        if (s.shared != null) {
            ref.sharedA = toDouble(be.download(s.shared.a()));
            ref.sharedB = toDouble(be.download(s.shared.b()));
            ref.inMax = s.shared.a().dim(1);
        }
        return ref;
    }
}
