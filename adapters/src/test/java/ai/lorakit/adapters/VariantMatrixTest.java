package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.adapters.VariantCase.IN;
import static ai.lorakit.adapters.VariantCase.N;
import static ai.lorakit.adapters.VariantCase.OUT;
import static ai.lorakit.adapters.VariantCase.uniform;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * PEFT's generic adapter behaviours (VARIANTS.md section 11, items 1, 3, 4, 5, 6, 8, 10) as one matrix over every
 * variant: identity at default init, non-identity otherwise, merged == unmerged, unmerge restores W (fifo and
 * DoRA with a perturbed magnitude included), idempotent merge, safe merge refusing a broken adapter, disabled ==
 * base exactly, [B,T,in] inputs, and training isolation (3 SGD steps change every trainable tensor and leave W,
 * bias and frozen tensors bit-identical).
 */
class VariantMatrixTest {
    private Backend be;
    private Tensor x;

    static Stream<VariantCase> cases() {
        return VariantCase.all().stream();
    }

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        x = be.upload(uniform(new Random(3), N * IN, 1), N, IN);
    }

    @AfterEach
    void tearDown() {
        x.close();
        be.close();
    }

    /** y = x op(W) + b computed directly with backend ops (the plain base layer). */
    private float[] base(VariantCase.Setup s) {
        try (Tensor y = be.zeros(DType.F32, N, OUT)) {
            be.matmul(x, false, s.w, !s.c.fifo(), y, 1f, 0f);
            be.addRowVector(y, s.bias, y);
            return be.download(y);
        }
    }

    private float[] forward(AdaptedLinear layer) {
        try (Tensor y = Fresh.forward(layer, x)) {
            return be.download(y);
        }
    }

    private static void close(String what, Tolerance tol, float[] actual, float[] ref) {
        Tolerance.Result r = tol.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    private static void close(String what, Tolerance tol, float[] actual, double[] ref) {
        Tolerance.Result r = tol.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void defaultInitIsTheIdentityAndNonDefaultInitIsNot(VariantCase c) {
        try (VariantCase.Setup id = new VariantCase.Setup(be, c, true, 11);
             VariantCase.Setup nonId = new VariantCase.Setup(be, c, false, 11)) {
            close(c + " identity at default init", Tolerance.F32, forward(id.layer), base(id));
            id.layer.setTraining(true);
            close(c + " identity at default init, training", Tolerance.F32, forward(id.layer), base(id));
            Tolerance.Result r = Tolerance.F32.compare(c + " non-identity", forward(nonId.layer), base(nonId));
            assertFalse(r.ok(), c + ": a non-default init must change the output");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void mergeMatchesUnmergedAndUnmergeRestoresW(VariantCase c) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, false, 12)) {
            float[] w0 = be.download(s.w);
            float[] unmerged = forward(s.layer);
            DoubleReference ref = GradientCheckTest.reference(be, s, be.download(x), null);
            s.layer.merge();
            assertTrue(s.layer.merged());
            float[] wMerged = be.download(s.w);
            assertFalse(java.util.Arrays.equals(w0, wMerged), c + ": merge must change W");
            close(c + " merged == unmerged", new Tolerance(1e-4, 1e-4), forward(s.layer), unmerged);
            // the merged W itself against the double formula
            close(c + " merged W", new Tolerance(1e-5, 1e-4), wMerged, ref.mergedWeightInStoredLayout());

            s.layer.merge();                                           // idempotent: nothing happens
            assertArrayEquals(wMerged, be.download(s.w), c + ": a second merge must not change W");
            close(c + " merged twice", new Tolerance(1e-6, 1e-6), forward(s.layer), unmerged);

            s.layer.unmerge();
            assertFalse(s.layer.merged());
            close(c + " unmerge restores W", new Tolerance(1e-5, 0), be.download(s.w), w0);
            close(c + " after unmerge", new Tolerance(1e-4, 1e-4), forward(s.layer), unmerged);
            float[] wAfter = be.download(s.w);
            s.layer.unmerge();                                         // not merged: nothing happens
            assertArrayEquals(wAfter, be.download(s.w), c + ": unmerge of an unmerged layer must not change W");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void safeMergeBlamesTheBaseWhenWAlreadyHoldsNaN(VariantCase c) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, false, 13)) {
            float[] w0 = be.download(s.w);
            w0[3] = Float.POSITIVE_INFINITY;
            try (Tensor broken = be.upload(w0, DType.F32, s.w.shape())) {
                be.copy(broken, s.w);
            }
            NonFiniteMergeException e = assertThrows(NonFiniteMergeException.class, s.layer::merge);
            assertEquals(NonFiniteMergeException.Culprit.BASE, e.culprit(), e.getMessage());
            assertTrue(e.getMessage().contains("base weight W already holds 1 of " + (OUT * IN) + " non-finite")
                    && e.getMessage().contains(VariantCase.NAME), e.getMessage());
            assertArrayEquals(w0, be.download(s.w), c + ": a refused merge must leave W untouched");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void safeMergeRefusesABrokenAdapterAndLeavesWUntouched(VariantCase c) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, false, 13)) {
            Parameter p = s.layer.parameters().getFirst();
            float[] v = be.download(p.value());
            v[0] = Float.NaN;
            s.set(p, v);
            float[] w0 = be.download(s.w);
            NonFiniteMergeException e = assertThrows(NonFiniteMergeException.class, s.layer::merge);
            assertEquals(NonFiniteMergeException.Culprit.ADAPTER, e.culprit());
            assertEquals("NaNs detected in the merged weights. The adapter " + VariantCase.NAME
                    + " seems to be broken", e.getMessage());
            assertArrayEquals(w0, be.download(s.w), c + ": a refused merge must leave W untouched");
            assertFalse(s.layer.merged());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void disabledIsExactlyTheBaseLayer(VariantCase c) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, false, 14)) {
            float[] adapted = forward(s.layer);
            s.layer.setEnabled(false);
            assertArrayEquals(base(s), forward(s.layer), c + ": disabled output must equal the base output exactly");
            s.layer.setTraining(true);
            assertArrayEquals(base(s), forward(s.layer), c + ": disabled (training) must equal the base exactly");
            // ... and its backward is the base layer's: dx = g op(W)^T, no adapter gradient
            try (Tensor y = Fresh.forward(s.layer, x); Tensor g = be.upload(uniform(new Random(8), N * OUT, 1), N, OUT);
                 Tensor dx = Fresh.backward(s.layer, g); Tensor ref = be.zeros(DType.F32, N, IN)) {
                be.matmul(g, false, s.w, c.fifo(), ref, 1f, 0f);
                assertArrayEquals(be.download(ref), be.download(dx), c + ": disabled backward must be the base one");
                for (Parameter p : s.layer.parameters()) {
                    assertTrue(p.grad() == null, c + ": disabled adapter's " + p + " must get no gradient");
                }
            }
            s.layer.setTraining(false);
            s.layer.setEnabled(true);
            assertArrayEquals(adapted, forward(s.layer), c + ": re-enabled output must be the adapter output");
            s.layer.merge();
            s.layer.setEnabled(false);                                // PEFT: disabling unmerges first
            assertFalse(s.layer.merged());
            close(c + " disabled after merge", new Tolerance(1e-5, 1e-5), forward(s.layer), base(s));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void batchedInputMatchesFlatInput(VariantCase c) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, false, 15);
             Tensor x3 = be.upload(be.download(x), DType.F32, 1, N, IN)) {
            float[] flat = forward(s.layer);
            try (Tensor y3 = Fresh.forward(s.layer, x3)) {
                assertArrayEquals(new int[] {1, N, OUT}, y3.shape());
                assertArrayEquals(flat, be.download(y3), c + ": [1,N,in] must give the [N,in] result");
            }
        }
    }

    /**
     * From PEFT's default init (B = 0, λb = 0, E = 0: some gradients are exactly zero at step 1, so a tensor may
     * move only a little, any change counts) and from a non-identity init (every tensor must move by > 1e-4).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("cases")
    void sgdChangesEveryTrainableTensorAndNothingElse(VariantCase c) {
        sgd(c, true, 0.0);
        sgd(c, false, 1e-4);
    }

    private void sgd(VariantCase c, boolean identity, double minChange) {
        try (VariantCase.Setup s = new VariantCase.Setup(be, c, identity, 16);
             Tensor g = be.upload(uniform(new Random(5), N * OUT, 1), N, OUT)) {
            List<float[]> frozenBefore = new ArrayList<>();
            for (Tensor t : s.frozen()) {
                frozenBefore.add(be.download(t));
            }
            List<float[]> before = new ArrayList<>();
            for (Parameter p : s.layer.parameters()) {
                before.add(be.download(p.value()));
            }
            float[] y0 = forward(s.layer);
            s.layer.setTraining(true);
            for (int step = 0; step < 3; step++) {
                try (Tensor y = Fresh.forward(s.layer, x); Tensor dx = Fresh.backward(s.layer, g)) {
                    for (Parameter p : s.layer.parameters()) {
                        if (p.trainable()) {
                            float[] v = be.download(p.value());
                            float[] gr = be.download(p.grad());
                            for (int i = 0; i < v.length; i++) {
                                v[i] -= 0.1f * gr[i];                // plain SGD, lr 0.1
                            }
                            s.set(p, v);
                            p.zeroGrad();
                        }
                    }
                }
            }
            for (int i = 0; i < s.layer.parameters().size(); i++) {
                Parameter p = s.layer.parameters().get(i);
                float[] now = be.download(p.value());
                if (p.trainable()) {
                    double maxChange = 0;
                    for (int j = 0; j < now.length; j++) {
                        maxChange = Math.max(maxChange, Math.abs(now[j] - before.get(i)[j]));
                    }
                    assertTrue(maxChange > minChange, c + (identity ? " (default init)" : "") + ": trainable " + p
                            + " changed by only " + maxChange);
                } else {
                    assertArrayEquals(before.get(i), now, c + ": frozen " + p + " must be bit-identical");
                }
            }
            List<Tensor> frozen = s.frozen();
            for (int i = 0; i < frozen.size(); i++) {
                assertArrayEquals(frozenBefore.get(i), be.download(frozen.get(i)),
                        c + ": frozen " + frozen.get(i) + " must be bit-identical after training");
            }
            s.layer.setTraining(false);
            float[] y3 = forward(s.layer);
            // AdaLoRA from its default init moves by ~0.02^2 only: there any change counts
            Tolerance.Result r = Tolerance.F32.compare(c + " trained", y3, y0);
            assertFalse(identity ? java.util.Arrays.equals(y3, y0) : r.ok(), c + ": 3 SGD steps must change the output");
        }
    }
}
