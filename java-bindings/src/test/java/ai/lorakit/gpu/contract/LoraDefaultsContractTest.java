package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static ai.lorakit.gpu.contract.Ref.assertClose;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The LoRA-family methods of Backend (the default compositions, or a backend's fused overrides) against
 * explicit double-precision formulas (VARIANTS.md): shrink/expand, the adapted linear forward (W as [out,in]
 * and as GPT-2 Conv1D [in,out], with and without bias), DoRA's weight norm against ||W + s B A|| row by row,
 * VeRA with A/B slices of larger shared matrices, Delta-LoRA's update in both layouts, and LoRA-drop's
 * importance against the naive sum over the N x out output; LoRA ranks 1 and 64.
 */
class LoraDefaultsContractTest {
    static final int[] RANKS = {1, 64};

    /** y[N,out] = x[N,in] W^T (or x W with fanInFanOut) + bias + s (x A^T) B^T, in double. */
    static double[] linearRef(float[] x, float[] w, boolean fanInFanOut, float[] bias, float[] a, float[] b,
                              float s, int n, int in, int out, int r) {
        double[] y = Ref.matmul(x, false, w, !fanInFanOut, n, out, in);
        double[] u = Ref.matmul(x, false, a, true, n, r, in);
        double[] lora = Ref.matmul(u, false, Ref.toDouble(b), true, n, out, r);
        for (int i = 0; i < y.length; i++) {
            y[i] += s * lora[i] + (bias == null ? 0 : bias[i % out]);
        }
        return y;
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void shrinkAndExpand(Supplier<Backend> f) {
        int in = 65, out = 33;
        float s = 0.75f;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                for (int n : new int[] {1, 33}) {
                    long seed = 100L * r + n;
                    float[] x = Ref.random(seed, n * in), a = Ref.random(seed + 1, r * in);
                    float[] b = Ref.random(seed + 2, out * r), y0 = Ref.random(seed + 3, n * out);
                    String what = "r=" + r + " N=" + n + " seed=" + seed;
                    try (Tensor xt = be.upload(x, n, in); Tensor at = be.upload(a, r, in); Tensor bt = be.upload(b, out, r);
                         Tensor ut = be.upload(Ref.nans(n * r), n, r); Tensor yt = be.upload(y0, n, out)) {
                        be.loraShrink(xt, at, ut);
                        double[] u = Ref.matmul(x, false, a, true, n, r, in);
                        assertClose(Tolerance.F32, "loraShrink " + what, be.download(ut), u);
                        be.loraExpand(ut, bt, s, yt);
                        double[] y = Ref.matmul(be.download(ut), false, b, true, n, out, r);
                        for (int i = 0; i < y.length; i++) {
                            y[i] = y0[i] + s * y[i];
                        }
                        assertClose(Tolerance.F32, "loraExpand " + what, be.download(yt), y);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void linearForward(Supplier<Backend> f) {
        int n = 33, in = 65, out = 7;
        float s = 2f;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                for (boolean fan : new boolean[] {false, true}) {
                    for (boolean withBias : new boolean[] {false, true}) {
                        long seed = 7L * r + (fan ? 1 : 0) + (withBias ? 2 : 0);
                        float[] x = Ref.random(seed, n * in), w = Ref.random(seed + 1, out * in);
                        float[] a = Ref.random(seed + 2, r * in), b = Ref.random(seed + 3, out * r);
                        float[] bias = withBias ? Ref.random(seed + 4, out) : null;
                        String what = "loraLinearForward r=" + r + " fanInFanOut=" + fan + " bias=" + withBias
                                + " seed=" + seed;
                        try (Tensor xt = be.upload(x, n, in);
                             Tensor wt = fan ? be.upload(w, in, out) : be.upload(w, out, in);
                             Tensor biasT = withBias ? be.upload(bias, out) : null;
                             Tensor at = be.upload(a, r, in); Tensor bt = be.upload(b, out, r);
                             Tensor ut = be.upload(Ref.nans(n * r), n, r); Tensor yt = be.upload(Ref.nans(n * out), n, out)) {
                            be.loraLinearForward(xt, wt, fan, biasT, at, bt, s, ut, yt);
                            assertClose(Tolerance.F32, what + " u", be.download(ut),
                                    Ref.matmul(x, false, a, true, n, r, in));
                            assertClose(Tolerance.F32, what + " y", be.download(yt),
                                    linearRef(x, w, fan, bias, a, b, s, n, in, out, r));
                        }
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void doraWeightNormMatchesExplicitRows(Supplier<Backend> f) {
        int in = 65, out = 33;
        float s = 0.5f;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                for (boolean fan : new boolean[] {false, true}) {
                    long seed = 11L * r + (fan ? 1 : 0);
                    float[] w = Ref.random(seed, out * in), a = Ref.random(seed + 1, r * in);
                    float[] b = Ref.random(seed + 2, out * r);
                    double[] ba = Ref.matmul(b, false, a, false, out, in, r);   // [out,in]
                    double[] want = new double[out];
                    for (int o = 0; o < out; o++) {
                        double sq = 0;
                        for (int i = 0; i < in; i++) {
                            double wo = fan ? w[i * out + o] : w[o * in + i];
                            double e = wo + s * ba[o * in + i];
                            sq += e * e;
                        }
                        want[o] = Math.sqrt(sq);
                    }
                    try (Tensor wt = fan ? be.upload(w, in, out) : be.upload(w, out, in);
                         Tensor at = be.upload(a, r, in); Tensor bt = be.upload(b, out, r);
                         Tensor nt = be.upload(Ref.nans(out), out)) {
                        be.doraWeightNorm(wt, fan, at, bt, s, nt);
                        assertClose(Tolerance.F32, "doraWeightNorm r=" + r + " fanInFanOut=" + fan + " seed=" + seed,
                                be.download(nt), want);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void veraForwardUsesSlicesOfTheSharedMatrices(Supplier<Backend> f) {
        int n = 7, inMax = 65, outMax = 40, in = 33, out = 17;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                long seed = 5L * r;
                float[] x = Ref.random(seed, n * in), sa = Ref.random(seed + 1, r * inMax);
                float[] sb = Ref.random(seed + 2, outMax * r), ld = Ref.random(seed + 3, r);
                float[] lb = Ref.random(seed + 4, out), y0 = Ref.random(seed + 5, n * out);
                double[] u = new double[n * r];
                for (int i = 0; i < n; i++) {
                    for (int j = 0; j < r; j++) {
                        double acc = 0;
                        for (int p = 0; p < in; p++) {
                            acc += (double) x[i * in + p] * sa[j * inMax + p];   // A_l = first `in` columns
                        }
                        u[i * r + j] = acc;
                    }
                }
                double[] v = new double[n * r];
                for (int i = 0; i < v.length; i++) {
                    v[i] = ld[i % r] * u[i];
                }
                double[] y = new double[n * out];
                for (int i = 0; i < n; i++) {
                    for (int o = 0; o < out; o++) {
                        double acc = 0;
                        for (int j = 0; j < r; j++) {
                            acc += v[i * r + j] * sb[o * r + j];   // B_l = first `out` rows
                        }
                        y[i * out + o] = y0[i * out + o] + lb[o] * acc;
                    }
                }
                String what = "veraForward r=" + r + " seed=" + seed;
                try (Tensor xt = be.upload(x, n, in); Tensor sat = be.upload(sa, r, inMax);
                     Tensor sbt = be.upload(sb, outMax, r); Tensor ldt = be.upload(ld, r); Tensor lbt = be.upload(lb, out);
                     Tensor ut = be.upload(Ref.nans(n * r), n, r); Tensor vt = be.upload(Ref.nans(n * r), n, r);
                     Tensor yt = be.upload(y0, n, out)) {
                    be.veraForward(xt, sat, sbt, ldt, lbt, ut, vt, yt);
                    assertClose(Tolerance.F32, what + " u", be.download(ut), u);
                    assertClose(Tolerance.F32, what + " v", be.download(vt), v);
                    assertClose(Tolerance.F32, what + " y", be.download(yt), y);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void deltaLoraUpdateBothLayouts(Supplier<Backend> f) {
        int in = 33, out = 65;
        float c = 0.25f;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                for (boolean fan : new boolean[] {false, true}) {
                    long seed = 3L * r + (fan ? 1 : 0);
                    float[] w = Ref.random(seed, out * in), bn = Ref.random(seed + 1, out * r);
                    float[] an = Ref.random(seed + 2, r * in), bo = Ref.random(seed + 3, out * r);
                    float[] ao = Ref.random(seed + 4, r * in);
                    double[] dn = Ref.matmul(bn, false, an, false, out, in, r);
                    double[] dold = Ref.matmul(bo, false, ao, false, out, in, r);
                    double[] want = new double[out * in];
                    for (int o = 0; o < out; o++) {
                        for (int i = 0; i < in; i++) {
                            int wi = fan ? i * out + o : o * in + i;
                            want[wi] = w[wi] + c * (dn[o * in + i] - dold[o * in + i]);
                        }
                    }
                    try (Tensor wt = fan ? be.upload(w, in, out) : be.upload(w, out, in);
                         Tensor bnt = be.upload(bn, out, r); Tensor ant = be.upload(an, r, in);
                         Tensor bot = be.upload(bo, out, r); Tensor aot = be.upload(ao, r, in)) {
                        be.deltaLoraUpdate(wt, fan, c, bnt, ant, bot, aot);
                        assertClose(Tolerance.F32, "deltaLoraUpdate r=" + r + " fanInFanOut=" + fan + " seed=" + seed,
                                be.download(wt), want);
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void loraImportanceMatchesTheNaiveSum(Supplier<Backend> f) {
        int out = 33;
        float s = 1.5f;
        try (Backend be = f.get()) {
            for (int r : RANKS) {
                for (int n : new int[] {1, 65}) {
                    long seed = 13L * r + n;
                    float[] u = Ref.random(seed, n * r), b = Ref.random(seed + 1, out * r);
                    double[] y = Ref.matmul(u, false, b, true, n, out, r);   // B u_n for every n: [N,out]
                    double want = 0;
                    for (double e : y) {
                        want += s * s * e * e;
                    }
                    try (Tensor ut = be.upload(u, n, r); Tensor bt = be.upload(b, out, r)) {
                        double got = be.loraImportance(ut, bt, s);
                        assertEquals(want, got, 1e-5 * Math.abs(want) + 1e-6,
                                "loraImportance r=" + r + " N=" + n + " seed=" + seed);
                    }
                }
            }
        }
    }
}
