package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * VeRA's model-level invariants (VARIANTS.md section 4 and section 11 item 11): one pair of projections
 * A [r,in_max], B [out_max,r] shared (the same Tensor objects) by layers of different sizes, λ vectors per layer,
 * λb = 0 and λd = d_initial at init, the projections reproducible from the key (and documented as
 * SplittableRandom's stream, Kaiming-uniform bounds), and refusal of a mismatched r or a too-large layer.
 */
class VeraInvariantsTest {
    private Backend be;
    private final List<Tensor> owned = new ArrayList<>();

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
    }

    @AfterEach
    void tearDown() {
        owned.forEach(Tensor::close);
        be.close();
    }

    private Tensor weight(int out, int in) {
        Tensor t = be.upload(VariantCase.uniform(new java.util.Random(out * 31L + in), out * in, 0.5), out, in);
        owned.add(t);
        return t;
    }

    @Test
    void layersOfDifferentSizesShareOneProjectionPairButNotTheirLambdas() {
        VeraConfig cfg = new VeraConfig(4, 3L, true, 0.25f, 0f, List.of("q", "fc"));
        try (VeraProjections shared = VeraProjections.create(be, cfg, 12, 10);
             AdaptedLinear q = AdaptedLinear.create("h.0.q", weight(6, 8), null, false, cfg, shared, 1);
             AdaptedLinear fc = AdaptedLinear.create("h.0.fc", weight(10, 12), null, false, cfg, shared, 2)) {
            assertArrayEquals(new int[] {4, 12}, shared.a().shape(), "A must be [r, in_max]");
            assertArrayEquals(new int[] {10, 4}, shared.b().shape(), "B must be [out_max, r]");
            assertSame(shared, q.veraProjections());
            assertSame(shared.a(), q.veraProjections().a());
            assertSame(shared.b(), fc.veraProjections().b());
            for (AdaptedLinear l : List.of(q, fc)) {
                assertEquals(2, l.parameters().size(), "VeRA layers list only λb and λd");
                assertEquals(1f, l.scaling());
                assertEquals(4, l.rank());
                assertArrayEquals(new float[l.outFeatures()],
                        be.download(l.parameter(Parameter.Role.VERA_LAMBDA_B).value()), "λb starts at 0");
                float[] ld = be.download(l.parameter(Parameter.Role.VERA_LAMBDA_D).value());
                assertArrayEquals(new float[] {0.25f, 0.25f, 0.25f, 0.25f}, ld, "λd starts at d_initial");
            }
            Parameter qb = q.parameter(Parameter.Role.VERA_LAMBDA_B);
            Parameter fb = fc.parameter(Parameter.Role.VERA_LAMBDA_B);
            assertNotSame(qb.value(), fb.value());
            assertEquals("h.0.q.vera_lambda_b", qb.name());
            assertEquals("h.0.fc.vera_lambda_d", fc.parameter(Parameter.Role.VERA_LAMBDA_D).name());
            be.fill(qb.value(), 2f);
            assertArrayEquals(new float[10], be.download(fb.value()), "λb of one layer must not alias another's");
            // closing a layer leaves the shared projections usable
            q.close();
            assertFalse(shared.a().isClosed());
            assertFalse(shared.b().isClosed());
        }
    }

    @Test
    void theKeyDeterminesTheProjections() {
        VeraConfig k0 = new VeraConfig(4, 0L, true, 0.1f, 0f, List.of("q"));
        VeraConfig k0b = new VeraConfig(4, 0L, true, 0.5f, 0.2f, List.of("v"));
        VeraConfig k1 = new VeraConfig(4, 1L, true, 0.1f, 0f, List.of("q"));
        try (VeraProjections a = VeraProjections.create(be, k0, 9, 7);
             VeraProjections b = VeraProjections.create(be, k0b, 9, 7);
             VeraProjections c = VeraProjections.create(be, k1, 9, 7)) {
            assertArrayEquals(be.download(a.a()), be.download(b.a()), "same key -> identical A");
            assertArrayEquals(be.download(a.b()), be.download(b.b()), "same key -> identical B");
            assertFalse(java.util.Arrays.equals(be.download(a.a()), be.download(c.a())), "another key -> another A");
            assertFalse(java.util.Arrays.equals(be.download(a.b()), be.download(c.b())), "another key -> another B");
        }
    }

    /** The documented stream: SplittableRandom(key), A first (row-major), then B, uniform ±sqrt(6/fan_in). */
    @Test
    void projectionsAreTheDocumentedKaimingUniformStream() {
        int r = 16;
        int inMax = 300;
        int outMax = 200;
        VeraConfig cfg = new VeraConfig(r, 12345L, true, 0.1f, 0f, List.of("q"));
        try (VeraProjections p = VeraProjections.create(be, cfg, inMax, outMax)) {
            float[] a = be.download(p.a());
            float[] b = be.download(p.b());
            SplittableRandom rnd = new SplittableRandom(12345L);
            double boundA = Math.sqrt(6.0 / inMax);
            double boundB = Math.sqrt(6.0 / r);
            for (float v : a) {
                assertEquals((float) ((2 * rnd.nextDouble() - 1) * boundA), v);
            }
            for (float v : b) {
                assertEquals((float) ((2 * rnd.nextDouble() - 1) * boundB), v);
            }
            checkUniform("A", a, boundA);
            checkUniform("B", b, boundB);
        }
    }

    private static void checkUniform(String what, float[] v, double bound) {
        double sum = 0;
        double sq = 0;
        for (float x : v) {
            assertTrue(Math.abs(x) <= bound, what + " value " + x + " outside ±" + bound);
            sum += x;
            sq += (double) x * x;
        }
        double mean = sum / v.length;
        double var = sq / v.length - mean * mean;
        double expVar = bound * bound / 3;
        assertTrue(Math.abs(mean) < 4 * Math.sqrt(expVar / v.length), what + " mean " + mean);
        assertEquals(expVar, var, 0.05 * expVar, what + " variance of U(±bound) is bound^2/3");
    }

    @Test
    void mismatchedRankOrTooLargeLayerIsRefused() {
        VeraConfig r4 = new VeraConfig(4, 0L, true, 0.1f, 0f, List.of("q"));
        VeraConfig r8 = new VeraConfig(8, 0L, true, 0.1f, 0f, List.of("q"));
        try (VeraProjections shared = VeraProjections.create(be, r4, 8, 6)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create("h.1.q", weight(6, 8), null, false, r8, shared, 0));
            assertTrue(e.getMessage().contains("h.1.q") && e.getMessage().contains("r=4")
                    && e.getMessage().contains("r=8"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create("h.2.q", weight(6, 9), null, false, r4, shared, 0));
            assertTrue(e.getMessage().contains("h.2.q") && e.getMessage().contains("in=9")
                    && e.getMessage().contains("in_max=8"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create("h.3.q", weight(7, 8), null, false, r4, shared, 0));
            assertTrue(e.getMessage().contains("out=7") && e.getMessage().contains("out_max=6"), e.getMessage());
            // fifo: W [in,out] = [9,6] is in=9
            e = assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create("h.4.q", weight(9, 6), null, true, r4, shared, 0));
            assertTrue(e.getMessage().contains("in=9"), e.getMessage());
            e = assertThrows(IllegalArgumentException.class,
                    () -> AdaptedLinear.create("h.5.q", weight(6, 8), null, false, r4, null, 0));
            assertTrue(e.getMessage().contains("h.5.q") && e.getMessage().contains("VeraProjections"), e.getMessage());
        }
        assertThrows(IllegalArgumentException.class, () -> VeraProjections.create(be, r4, 0, 6));
        Tensor a = be.zeros(DType.F32, 4, 8);
        Tensor b = be.zeros(DType.F32, 6, 3);
        owned.add(a);
        owned.add(b);
        assertThrows(ai.lorakit.gpu.ShapeException.class, () -> new VeraProjections(a, b),
                "A [4,8] and B [6,3] disagree on r");
    }
}
