package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

import static ai.lorakit.gpu.contract.Ref.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * The ops that keep a training step on the device, on every backend in {@link ContractBackends}: {@link
 * Backend#sumTo} and {@link Backend#sumSquaresTo} write a float-float slot equal to the double sum (2^24 + ones
 * is not lost) and leave the other slots alone; {@link Backend#adamwClipped} equals the per-tensor reference
 * (clip every gradient by min(1, maxNorm/(norm+1e-6)) with {@link Backend#scale}, then {@link Backend#adamw} with
 * each tensor's own hyper-parameters: per-group learning rates) with and without clipping, scales the gradients in
 * place, and changes nothing at all when the norm slot or a slot before it is NaN or infinite.
 */
class DeviceStepContractTest {

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void sumsLandInTheirSlot(Supplier<Backend> f) {
        try (Backend be = f.get(); Tensor stats = be.upload(new float[] {7, 7, 7, 7, 7, 7}, 6)) {
            float[] a = new float[3000];
            a[0] = 16777216f;                       // 2^24: fp32 alone would drop the ones after it
            java.util.Arrays.fill(a, 1, a.length, 1f);
            float[] x = Ref.random(5, 100), y = Ref.random(6, 37);
            try (Tensor at = be.upload(a, a.length); Tensor xt = be.upload(x, 10, 10); Tensor yt = be.upload(y, 37)) {
                be.sumTo(at, stats, 1);
                be.sumSquaresTo(List.of(xt, yt), stats, 2);
                float[] r = be.download(stats);
                assertEquals(16777216.0 + 2999, DeviceSums.at(r, 1), 1e-6, "sumTo slot 1");
                double sq = 0;
                for (float v : x) {
                    sq += (double) v * v;
                }
                for (float v : y) {
                    sq += (double) v * v;
                }
                assertEquals(sq, DeviceSums.at(r, 2), 1e-9 * sq, "sumSquaresTo slot 2");
                assertArrayEquals(new float[] {7, 7}, new float[] {r[0], r[1]}, "slot 0 untouched");
                be.sumSquaresTo(List.of(), stats, 0);
                assertEquals(0.0, DeviceSums.at(be.download(stats), 0), "no tensor: 0");
                assertThrows(ShapeException.class, () -> be.sumTo(at, stats, 3), "slot 3 does not fit 6 floats");
            }
        }
    }

    /** Three tensors in two learning-rate groups; returns the per-tensor reference's (params, grads, m, v). */
    private static float[][] reference(Backend be, float[][] p0, float[][] g0, List<AdamW> hps, double coef) {
        float[][] out = new float[4 * p0.length][];
        for (int i = 0; i < p0.length; i++) {
            try (Tensor p = be.upload(p0[i], p0[i].length); Tensor g = be.upload(g0[i], g0[i].length);
                 Tensor m = be.zeros(DType.F32, p0[i].length); Tensor v = be.zeros(DType.F32, p0[i].length)) {
                if (coef < 1) {
                    be.scale(g, (float) coef, g);
                }
                be.adamw(p, g, m, v, hps.get(i));
                out[4 * i] = be.download(p);
                out[4 * i + 1] = be.download(g);
                out[4 * i + 2] = be.download(m);
                out[4 * i + 3] = be.download(v);
            }
        }
        return out;
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void multiTensorAdamWEqualsThePerTensorOp(Supplier<Backend> f) {
        int[] sizes = {130, 7, 64};
        float[][] p0 = new float[3][], g0 = new float[3][];
        double sq = 0;
        for (int i = 0; i < 3; i++) {
            p0[i] = Ref.random(40 + i, sizes[i]);
            g0[i] = Ref.random(50 + i, sizes[i]);
            for (float x : g0[i]) {
                sq += (double) x * x;
            }
        }
        double norm = Math.sqrt(sq);
        List<AdamW> hps = List.of(new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 3),
                new AdamW(16e-2f, 0.9f, 0.999f, 1e-8f, 0f, 3), new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 2));
        for (float maxNorm : new float[] {0f, (float) (norm * 2), (float) (norm / 3)}) {
            double coef = DeviceSums.clipCoefficient(norm, maxNorm);
            try (Backend be = f.get()) {
                float[][] want = reference(be, p0, g0, hps, coef);
                List<Tensor> ps = new ArrayList<>(), gs = new ArrayList<>(), ms = new ArrayList<>(), vs = new ArrayList<>();
                for (int i = 0; i < 3; i++) {
                    ps.add(be.upload(p0[i], sizes[i]));
                    gs.add(be.upload(g0[i], sizes[i]));
                    ms.add(be.zeros(DType.F32, sizes[i]));
                    vs.add(be.zeros(DType.F32, sizes[i]));
                }
                try (Tensor stats = be.zeros(DType.F32, 4)) {
                    be.sumSquaresTo(gs, stats, 1);
                    be.adamwClipped(ps, gs, ms, vs, hps, stats, 1, maxNorm);
                    for (int i = 0; i < 3; i++) {
                        String what = "adamwClipped maxNorm=" + maxNorm + " (coef " + coef + ") tensor " + i;
                        assertClose(Tolerance.F32, what + " param", be.download(ps.get(i)), want[4 * i]);
                        assertClose(Tolerance.F32, what + " grad (clipped in place)", be.download(gs.get(i)),
                                want[4 * i + 1]);
                        assertClose(Tolerance.F32, what + " m", be.download(ms.get(i)), want[4 * i + 2]);
                        assertClose(Tolerance.F32, what + " v", be.download(vs.get(i)), want[4 * i + 3]);
                    }
                    assertThrows(IllegalArgumentException.class, () -> be.adamwClipped(ps, List.of(gs.get(0),
                            gs.get(0), gs.get(2)), ms, vs, hps, stats, 1, 1f), "the same gradient twice");
                } finally {
                    for (List<Tensor> l : List.of(ps, gs, ms, vs)) {
                        l.forEach(Tensor::close);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void aNonFiniteNormOrLossChangesNothing(Supplier<Backend> f) {
        float[] p0 = Ref.random(60, 33), g0 = Ref.random(61, 33), m0 = Ref.random(62, 33), v0 = Ref.ones(33);
        AdamW hp = new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, 2);
        float[][] cases = {{Float.NaN, 0, 1, 0}, {1, 0, Float.POSITIVE_INFINITY, 0}, {Float.POSITIVE_INFINITY, 0, 1, 0}};
        for (float[] c : cases) {
            try (Backend be = f.get(); Tensor p = be.upload(p0, 33); Tensor g = be.upload(g0, 33);
                 Tensor m = be.upload(m0, 33); Tensor v = be.upload(v0, 33); Tensor stats = be.upload(c, 4)) {
                be.adamwClipped(List.of(p), List.of(g), List.of(m), List.of(v), List.of(hp), stats, 1, 0.5f);
                String what = "stats " + java.util.Arrays.toString(c) + ": ";
                assertArrayEquals(p0, be.download(p), what + "param unchanged");
                assertArrayEquals(g0, be.download(g), what + "grad unchanged");
                assertArrayEquals(m0, be.download(m), what + "m unchanged");
                assertArrayEquals(v0, be.download(v), what + "v unchanged");
            }
        }
    }

    /**
     * The id checks and the embedding backward's by-id grouping follow the ids through host writes and device
     * copies (KernelBackend keeps a host copy and an index per ids tensor): each backward matches the reference
     * dwte[ids[n]] += dout[n] for the ids the tensor holds at that moment, and a bad id written later is refused.
     */
    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void embeddingBackwardFollowsRewrittenIds(Supplier<Backend> f) {
        int v = 5, c = 4, n = 6;
        int[][] idSets = {{0, 1, 1, 4, 0, 2}, {3, 3, 3, 1, 0, 4}, {2, 2, 0, 0, 1, 1}};
        float[] dout = Ref.random(70, n * c);
        try (Backend be = f.get(); Tensor ids = be.uploadInts(idSets[0], 2, 3); Tensor other = be.uploadInts(idSets[2], 2, 3);
             Tensor d = be.upload(dout, 2, 3, c); Tensor dwte = be.zeros(DType.F32, v, c)) {
            double[] want = new double[v * c];
            for (int call = 0; call < 3; call++) {
                if (call == 1) {
                    be.write(ids, idSets[1]);
                } else if (call == 2) {
                    be.copy(other, ids);                      // written on the device: the host copy must not be trusted
                }
                be.embeddingBackward(d, ids, dwte, null);
                for (int t = 0; t < n; t++) {
                    for (int j = 0; j < c; j++) {
                        want[idSets[call][t] * c + j] += dout[t * c + j];
                    }
                }
                assertClose(Tolerance.F32, "dwte after backward " + call, be.download(dwte), want);
            }
            be.write(ids, new int[] {0, 1, 2, 3, 4, 5});        // 5 is outside [0, V)
            ShapeException e = assertThrows(ShapeException.class, () -> be.embeddingBackward(d, ids, dwte, null));
            org.junit.jupiter.api.Assertions.assertTrue(e.getMessage().contains("= 5 is outside [0,5)"), e.getMessage());
        }
    }
}
