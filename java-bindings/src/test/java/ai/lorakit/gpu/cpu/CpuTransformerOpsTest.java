package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.Random;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@link CpuTransformerOps} computes GPT-2's transformer ops: every forward matches an independent naive
 * double-precision reference (this file), every backward matches central finite differences of that reference
 * for loss = sum(G ∘ out) with a random G, and the structural properties hold (causal mask, stable softmax,
 * log V cross-entropy, GELU limits, unit-variance LayerNorm, accumulating embedding gradients). Large shapes run
 * the parallel paths and are checked the same way (finite differences on sampled coordinates).
 */
public class CpuTransformerOpsTest {

    private static final int B = 2;
    private static final int T = 5;
    private static final int C = 8;
    private static final int NH = 2;
    private static final int V = 11;
    private static final float EPS = 1e-5f;
    private static final double H = 1e-6;   // finite-difference step (double)

    // ================================================================ double references (independent, naive;
    // shared with ai.lorakit.gpu.contract.TransformerOpsContractTest)

    public static double[] refLayerNorm(double[] x, double[] g, double[] b, double eps, int n, int c,
                                 double[] meanOut, double[] rstdOut) {
        double[] out = new double[n * c];
        for (int i = 0; i < n; i++) {
            double m = 0;
            for (int j = 0; j < c; j++) {
                m += x[i * c + j];
            }
            m /= c;
            double var = 0;
            for (int j = 0; j < c; j++) {
                var += (x[i * c + j] - m) * (x[i * c + j] - m);
            }
            var /= c;
            double r = 1 / Math.sqrt(var + eps);
            for (int j = 0; j < c; j++) {
                out[i * c + j] = (x[i * c + j] - m) * r * g[j] + b[j];
            }
            if (meanOut != null) {
                meanOut[i] = m;
                rstdOut[i] = r;
            }
        }
        return out;
    }

    public static double refGelu(double x) {
        return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
    }

    public static double[] refGelu(double[] x) {
        double[] y = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            y[i] = refGelu(x[i]);
        }
        return y;
    }

    public static double[] refSoftmax(double[] x, int n, int c) {
        double[] y = new double[n * c];
        for (int i = 0; i < n; i++) {
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < c; j++) {
                m = Math.max(m, x[i * c + j]);
            }
            double s = 0;
            for (int j = 0; j < c; j++) {
                s += Math.exp(x[i * c + j] - m);
            }
            for (int j = 0; j < c; j++) {
                y[i * c + j] = Math.exp(x[i * c + j] - m) / s;
            }
        }
        return y;
    }

    /** out [b,t,c] of causal attention; att [b,h,t,t] filled when non-null. */
    public static double[] refAttention(double[] qkv, int bs, int ts, int cs, int nh, double[] att) {
        int hs = cs / nh;
        double[] out = new double[bs * ts * cs];
        for (int b = 0; b < bs; b++) {
            for (int h = 0; h < nh; h++) {
                for (int t = 0; t < ts; t++) {
                    double[] s = new double[t + 1];
                    double m = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        double d = 0;
                        for (int i = 0; i < hs; i++) {
                            d += qkv[(b * ts + t) * 3 * cs + h * hs + i] * qkv[(b * ts + u) * 3 * cs + cs + h * hs + i];
                        }
                        s[u] = d / Math.sqrt(hs);
                        m = Math.max(m, s[u]);
                    }
                    double z = 0;
                    for (int u = 0; u <= t; u++) {
                        s[u] = Math.exp(s[u] - m);
                        z += s[u];
                    }
                    for (int u = 0; u <= t; u++) {
                        double a = s[u] / z;
                        if (att != null) {
                            att[((b * nh + h) * ts + t) * ts + u] = a;
                        }
                        for (int i = 0; i < hs; i++) {
                            out[(b * ts + t) * cs + h * hs + i] += a * qkv[(b * ts + u) * 3 * cs + 2 * cs + h * hs + i];
                        }
                    }
                }
            }
        }
        return out;
    }

    public static double[] refCrossEntropy(double[] logits, int[] targets, int n, int v) {
        double[] loss = new double[n];
        for (int i = 0; i < n; i++) {
            if (targets[i] == -100) {
                continue;   // HF's ignore_index: no loss
            }
            double m = Double.NEGATIVE_INFINITY;
            for (int j = 0; j < v; j++) {
                m = Math.max(m, logits[i * v + j]);
            }
            double s = 0;
            for (int j = 0; j < v; j++) {
                s += Math.exp(logits[i * v + j] - m);
            }
            loss[i] = Math.log(s) + m - logits[i * v + targets[i]];
        }
        return loss;
    }

    public static double[] refEmbedding(int[] ids, double[] wte, double[] wpe, int bs, int ts, int cs) {
        double[] out = new double[bs * ts * cs];
        for (int b = 0; b < bs; b++) {
            for (int t = 0; t < ts; t++) {
                for (int c = 0; c < cs; c++) {
                    out[(b * ts + t) * cs + c] = wte[ids[b * ts + t] * cs + c] + wpe[t * cs + c];
                }
            }
        }
        return out;
    }

    // ================================================================ helpers

    public static float[] rand(Random r, int n, double scale) {
        float[] a = new float[n];
        for (int i = 0; i < n; i++) {
            a[i] = (float) (r.nextGaussian() * scale);
        }
        return a;
    }

    public static double[] d(float[] a) {
        double[] o = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            o[i] = a[i];
        }
        return o;
    }

    public static float[] nan(int n) {
        float[] a = new float[n];
        Arrays.fill(a, Float.NaN);
        return a;
    }

    public static double dot(double[] a, double[] b) {
        double s = 0;
        for (int i = 0; i < a.length; i++) {
            s += a[i] * b[i];
        }
        return s;
    }

    /** Central differences of sum(G ∘ fn(in)) w.r.t. in at every coordinate (coords == null) or the listed ones. */
    public static double[] fd(double[] in, double[] g, UnaryOperator<double[]> fn, int[] coords) {
        int[] cs = coords;
        if (cs == null) {
            cs = new int[in.length];
            for (int i = 0; i < cs.length; i++) {
                cs[i] = i;
            }
        }
        double[] grad = new double[cs.length];
        for (int j = 0; j < cs.length; j++) {
            int i = cs[j];
            double keep = in[i];
            in[i] = keep + H;
            double lp = dot(g, fn.apply(in));
            in[i] = keep - H;
            double lm = dot(g, fn.apply(in));
            in[i] = keep;
            grad[j] = (lp - lm) / (2 * H);
        }
        return grad;
    }

    public static float[] pick(float[] a, int[] coords) {
        float[] o = new float[coords.length];
        for (int j = 0; j < coords.length; j++) {
            o[j] = a[coords[j]];
        }
        return o;
    }

    public static int[] sample(Random r, int n, int count) {
        int[] c = new int[count];
        for (int i = 0; i < count; i++) {
            c[i] = r.nextInt(n);
        }
        return c;
    }

    static void close(String what, float[] actual, double[] ref) {
        Tolerance.Result res = Tolerance.F32.compare(what, actual, ref);
        assertTrue(res.ok(), res.describe());
    }

    static void close(String what, float[] actual, float[] ref) {
        Tolerance.Result res = Tolerance.F32.compare(what, actual, ref);
        assertTrue(res.ok(), res.describe());
    }

    public static double[] plus(float[] base, double[] add) {
        double[] o = new double[base.length];
        for (int i = 0; i < o.length; i++) {
            o[i] = base[i] + add[i];
        }
        return o;
    }

    // ================================================================ LayerNorm

    @Test
    void layerNormForwardMatchesDoubleReference() {
        long seed = 11;
        Random r = new Random(seed);
        int n = B * T;
        float[] x = rand(r, n * C, 2);
        float[] g = rand(r, C, 1);
        float[] b = rand(r, C, 1);
        float[] out = nan(n * C);
        float[] mean = nan(n);
        float[] rstd = nan(n);
        CpuTransformerOps.layerNormForward(x, g, b, EPS, out, mean, rstd, n, C);
        double[] rm = new double[n];
        double[] rr = new double[n];
        double[] ref = refLayerNorm(d(x), d(g), d(b), EPS, n, C, rm, rr);
        close("layerNorm out (seed " + seed + ")", out, ref);
        close("layerNorm mean", mean, rm);
        close("layerNorm rstd", rstd, rr);
    }

    @Test
    void layerNormOutputHasZeroMeanUnitVarianceBeforeAffine() {
        Random r = new Random(12);
        int n = 6;
        int c = 64;
        float[] x = rand(r, n * c, 3);
        for (int i = 0; i < x.length; i++) {
            x[i] += 5;   // offset: the mean must really be removed
        }
        float[] g = new float[c];
        Arrays.fill(g, 1f);
        float[] out = new float[n * c];
        CpuTransformerOps.layerNormForward(x, g, new float[c], EPS, out, new float[n], new float[n], n, c);
        for (int i = 0; i < n; i++) {
            double m = 0;
            double v = 0;
            for (int j = 0; j < c; j++) {
                m += out[i * c + j];
            }
            m /= c;
            for (int j = 0; j < c; j++) {
                v += (out[i * c + j] - m) * (out[i * c + j] - m);
            }
            v /= c;
            assertEquals(0, m, 1e-5, "row " + i + " mean");
            assertEquals(1, v, 1e-4, "row " + i + " variance");
        }
    }

    @Test
    void layerNormBackwardMatchesFiniteDifferences() {
        checkLayerNormBackward(new Random(13), B * T, C, null);
    }

    @Test
    void layerNormLargeShapeParallelPathMatches() {
        Random r = new Random(14);
        int n = 1100;   // several row blocks, > PARALLEL_WORK elements
        int c = 96;
        float[] x = rand(r, n * c, 1);
        float[] g = rand(r, c, 1);
        float[] b = rand(r, c, 1);
        float[] out = nan(n * c);
        CpuTransformerOps.layerNormForward(x, g, b, EPS, out, new float[n], new float[n], n, c);
        close("layerNorm out (large)", out, refLayerNorm(d(x), d(g), d(b), EPS, n, c, null, null));
        checkLayerNormBackward(r, n, c, sample(r, n * c, 24));
    }

    private static void checkLayerNormBackward(Random r, int n, int c, int[] xCoords) {
        float[] x = rand(r, n * c, 1.5);
        float[] g = rand(r, c, 1);
        float[] b = rand(r, c, 1);
        float[] dout = rand(r, n * c, 1);
        float[] mean = new float[n];
        float[] rstd = new float[n];
        CpuTransformerOps.layerNormForward(x, g, b, EPS, new float[n * c], mean, rstd, n, c);
        float[] dx = nan(n * c);
        float[] dg0 = rand(r, c, 1);   // accumulated into
        float[] db0 = rand(r, c, 1);
        float[] dg = dg0.clone();
        float[] db = db0.clone();
        CpuTransformerOps.layerNormBackward(dout, x, g, mean, rstd, dx, dg, db, n, c);

        double[] G = d(dout);
        double[] xd = d(x);
        double[] gd = d(g);
        double[] bd = d(b);
        double[] fdx = fd(xd, G, xx -> refLayerNorm(xx, gd, bd, EPS, n, c, null, null), xCoords);
        double[] fdg = fd(gd, G, gg -> refLayerNorm(xd, gg, bd, EPS, n, c, null, null), null);
        double[] fdb = fd(bd, G, bb -> refLayerNorm(xd, gd, bb, EPS, n, c, null, null), null);
        close("layerNorm dx", xCoords == null ? dx : pick(dx, xCoords), fdx);
        close("layerNorm dgamma (+=)", dg, plus(dg0, fdg));
        close("layerNorm dbeta (+=)", db, plus(db0, fdb));
    }

    // ================================================================ GELU

    @Test
    void geluForwardMatchesReferenceAndKnownValues() {
        Random r = new Random(21);
        float[] x = rand(r, 100_003, 3);   // large: chunked parallel path
        float[] out = nan(x.length);
        CpuTransformerOps.geluForward(x, out, x.length);
        close("gelu", out, refGelu(d(x)));

        float[] k = {0f, 1f, -1f, 10f, -10f, 1e4f, -1e4f, 3e38f, -3e38f};
        float[] xs = tile(k, 75);   // long enough for vector bodies and a scalar tail
        float[] ys = nan(xs.length);
        CpuTransformerOps.geluForward(xs, ys, xs.length);
        for (int i = 0; i < xs.length; i++) {
            float[] y = Arrays.copyOfRange(ys, i - i % k.length, i - i % k.length + k.length);
            String at = " at index " + i;
            switch (i % k.length) {
                case 0 -> assertEquals(0f, y[0], 0f, "gelu(0)" + at);
                case 1 -> assertEquals(0.8411920, y[1], 1e-6, "gelu(1)" + at);
                case 2 -> assertEquals(-0.1588080, y[2], 1e-6, "gelu(-1)" + at);
                case 3 -> assertEquals(10f, y[3], 1e-5, "gelu(10)" + at);
                case 4 -> assertEquals(0f, y[4], 1e-6, "gelu(-10)" + at);
                case 5 -> assertEquals(1e4f, y[5], 0f, "gelu(1e4)" + at);
                case 6 -> assertEquals(0f, y[6], 0f, "gelu(-1e4)" + at);
                case 7 -> assertEquals(3e38f, y[7], 0f, "gelu(3e38) stays finite" + at);
                default -> assertEquals(0f, y[8], 0f, "gelu(-3e38)" + at);
            }
        }
    }

    /** n elements cycling through k (partial last cycle allowed). */
    static float[] tile(float[] k, int n) {
        float[] o = new float[n];
        for (int i = 0; i < n; i++) {
            o[i] = k[i % k.length];
        }
        return o;
    }

    @Test
    void geluBackwardMatchesFiniteDifferences() {
        Random r = new Random(22);
        int n = 64;
        float[] x = rand(r, n, 2.5);
        float[] dout = rand(r, n, 1);
        float[] dx = nan(n);
        CpuTransformerOps.geluBackward(x, dout, dx, n);
        close("gelu dx", dx, fd(d(x), d(dout), CpuTransformerOpsTest::refGelu, null));

        float[] k = tile(new float[] {1e4f, -1e4f, 3e38f, -3e38f, 0f, 10f, -10f, 12f, -12f}, 75);
        float[] ones = tile(new float[] {1f}, k.length);
        float[] dk = nan(k.length);
        CpuTransformerOps.geluBackward(k, ones, dk, k.length);
        assertArrayEquals(tile(new float[] {1f, 0f, 1f, 0f, 0.5f, 1f, 0f, 1f, 0f}, k.length), dk, 1e-6f,
                "gelu' at large |x| and 0");
    }

    // ================================================================ softmax

    @Test
    void softmaxMatchesReference() {
        Random r = new Random(31);
        int n = 7;
        int c = 13;
        float[] x = rand(r, n * c, 3);
        float[] out = nan(n * c);
        for (int i = 0; i < n; i++) {
            CpuTransformerOps.softmaxRow(x, out, i * c, c);
        }
        close("softmax", out, refSoftmax(d(x), n, c));
    }

    @Test
    void softmaxWithHugeLogitsStaysFinite() {
        int c = 37;   // two vectors and a tail
        float[] x = new float[2 * c];
        x[0] = 1e4f;
        x[2] = -1e4f;
        x[30] = 1e4f - 1f;
        x[c] = 3e38f;
        x[c + 20] = 3e38f;
        x[c + 35] = -3e38f;
        float[] out = nan(x.length);
        CpuTransformerOps.softmaxRow(x, out, 0, c);
        CpuTransformerOps.softmaxRow(x, out, c, c);
        for (int i = 0; i < out.length; i++) {
            assertTrue(Float.isFinite(out[i]), "softmax[" + i + "] = " + out[i]);
        }
        close("softmax huge", out, refSoftmax(d(x), 2, c));
        assertEquals(0.7310586f, out[0], 1e-6f);
        assertEquals(0.5f, out[c], 1e-7f);
        assertEquals(0.5f, out[c + 20], 1e-7f);
    }

    // ================================================================ attention

    @Test
    void attentionForwardMatchesReferenceWithZeroUpperTriangle() {
        checkAttentionForward(new Random(41), B, T, C, NH);
        checkAttentionForward(new Random(42), 1, 7, 12, 3);
    }

    private static void checkAttentionForward(Random r, int bs, int ts, int cs, int nh) {
        float[] qkv = rand(r, bs * ts * 3 * cs, 1);
        float[] out = nan(bs * ts * cs);
        float[] att = nan(bs * nh * ts * ts);
        CpuTransformerOps.attentionForward(qkv, out, att, bs, ts, cs, nh);
        double[] ratt = new double[att.length];
        double[] ref = refAttention(d(qkv), bs, ts, cs, nh, ratt);
        close("attention out", out, ref);
        close("attention att", att, ratt);
        for (int bh = 0; bh < bs * nh; bh++) {
            for (int t = 0; t < ts; t++) {
                for (int u = t + 1; u < ts; u++) {
                    assertEquals(0f, att[(bh * ts + t) * ts + u], 0f, "att above the diagonal, bh=" + bh + " t=" + t);
                }
            }
        }
    }

    @Test
    void attentionIsCausalFutureTokensDoNotChangeThePast() {
        Random r = new Random(43);
        float[] qkv = rand(r, B * T * 3 * C, 1);
        float[] out = new float[B * T * C];
        float[] att = new float[B * NH * T * T];
        CpuTransformerOps.attentionForward(qkv, out, att, B, T, C, NH);
        int t = 2;
        float[] q2 = qkv.clone();
        for (int b = 0; b < B; b++) {
            for (int u = t + 1; u < T; u++) {   // perturb k and v (and q) of every future token
                for (int c = 0; c < 3 * C; c++) {
                    q2[(b * T + u) * 3 * C + c] += 5f;
                }
            }
        }
        float[] out2 = new float[out.length];
        CpuTransformerOps.attentionForward(q2, out2, new float[att.length], B, T, C, NH);
        boolean futureChanged = false;
        for (int b = 0; b < B; b++) {
            for (int u = 0; u < T; u++) {
                for (int c = 0; c < C; c++) {
                    int i = (b * T + u) * C + c;
                    if (u <= t) {
                        assertEquals(out[i], out2[i], 0f, "out at b=" + b + " t=" + u + " c=" + c);
                    } else {
                        futureChanged |= out[i] != out2[i];
                    }
                }
            }
        }
        assertTrue(futureChanged, "the perturbation must reach the future positions");
    }

    @Test
    void attentionBackwardMatchesFiniteDifferences() {
        checkAttentionBackward(new Random(44), B, T, C, NH, null);
        checkAttentionBackward(new Random(45), 1, 7, 12, 3, null);
        checkAttentionBackward(new Random(46), 3, 1, 8, 2, null);
    }

    @Test
    void attentionLargeShapeParallelPathMatches() {
        Random r = new Random(47);
        int bs = 2;
        int ts = 48;
        int cs = 64;
        int nh = 4;
        checkAttentionForward(r, bs, ts, cs, nh);
        checkAttentionBackward(r, bs, ts, cs, nh, sample(r, bs * ts * 3 * cs, 24));
    }

    /** T and hs that are multiples of neither the 6-row blocks nor the 16-lane vectors (and GPT-2's hs = 48). */
    @Test
    void attentionOddShapesMatch() {
        Random r = new Random(48);
        checkAttentionForward(r, 1, 37, 80, 2);    // hs = 40
        checkAttentionForward(r, 2, 20, 99, 3);    // hs = 33
        checkAttentionForward(r, 1, 17, 96, 2);    // hs = 48
        checkAttentionBackward(r, 1, 37, 80, 2, sample(r, 37 * 3 * 80, 30));
        checkAttentionBackward(r, 2, 20, 99, 3, sample(r, 2 * 20 * 3 * 99, 30));
        checkAttentionBackward(r, 1, 17, 96, 2, sample(r, 17 * 3 * 96, 30));
    }

    private static void checkAttentionBackward(Random r, int bs, int ts, int cs, int nh, int[] coords) {
        float[] qkv = rand(r, bs * ts * 3 * cs, 1);
        float[] out = new float[bs * ts * cs];
        float[] att = new float[bs * nh * ts * ts];
        CpuTransformerOps.attentionForward(qkv, out, att, bs, ts, cs, nh);
        float[] dout = rand(r, out.length, 1);
        float[] dqkv = nan(qkv.length);   // must be overwritten in full
        CpuTransformerOps.attentionBackward(dout, qkv, att, dqkv, bs, ts, cs, nh);
        double[] ref = fd(d(qkv), d(dout), q -> refAttention(q, bs, ts, cs, nh, null), coords);
        close("attention dqkv B=" + bs + " T=" + ts + " C=" + cs + " nh=" + nh,
                coords == null ? dqkv : pick(dqkv, coords), ref);
        for (float v : dqkv) {
            assertFalse(Float.isNaN(v), "dqkv fully written");
        }
    }

    // ================================================================ cross-entropy

    @Test
    void crossEntropyForwardMatchesReference() {
        Random r = new Random(51);
        int n = B * T;
        float[] logits = rand(r, n * V, 2);
        int[] targets = r.ints(n, 0, V).toArray();
        float[] probs = nan(n * V);
        float[] losses = nan(n);
        CpuTransformerOps.crossEntropyForward(logits, targets, probs, losses, n, V);
        close("ce probs", probs, refSoftmax(d(logits), n, V));
        close("ce losses", losses, refCrossEntropy(d(logits), targets, n, V));
    }

    @Test
    void crossEntropyOfUniformLogitsIsLogV() {
        int n = 3;
        float[] logits = new float[n * V];
        Arrays.fill(logits, 0.37f);
        float[] losses = nan(n);
        float[] probs = nan(n * V);
        CpuTransformerOps.crossEntropyForward(logits, new int[] {0, 5, V - 1}, probs, losses, n, V);
        for (int i = 0; i < n; i++) {
            assertEquals(Math.log(V), losses[i], 1e-6, "loss of uniform logits");
        }
        for (float p : probs) {
            assertEquals(1.0 / V, p, 1e-7);
        }
    }

    @Test
    void crossEntropyWithHugeLogitsStaysFinite() {
        float[] logits = {1e4f, -1e4f, 0f, 1e4f, -1e4f, 0f};
        float[] probs = new float[6];
        float[] losses = new float[2];
        CpuTransformerOps.crossEntropyForward(logits, new int[] {0, 1}, probs, losses, 2, 3);
        assertEquals(0f, losses[0], 1e-6f);
        assertEquals(2e4f, losses[1], 1f);   // -log p of a vanishing probability: finite, not +inf
        assertTrue(Float.isFinite(losses[1]));
    }

    @Test
    void crossEntropyBackwardMatchesFiniteDifferences() {
        Random r = new Random(52);
        int n = B * T;
        float[] logits = rand(r, n * V, 2);
        int[] targets = r.ints(n, 0, V).toArray();
        float[] probs = new float[n * V];
        CpuTransformerOps.crossEntropyForward(logits, targets, probs, new float[n], n, V);
        float scale = 1f / n;
        float[] dl = nan(n * V);
        CpuTransformerOps.crossEntropyBackward(probs, targets, scale, dl, n, V);
        double[] G = new double[n];
        Arrays.fill(G, scale);   // loss = scale * sum_n losses[n]
        close("ce dlogits", dl, fd(d(logits), G, l -> refCrossEntropy(l, targets, n, V), null));
    }

    @Test
    void crossEntropyLargeShapeParallelPathMatches() {
        Random r = new Random(53);
        int n = 1024;
        int v = 97;
        float[] logits = rand(r, n * v, 2);
        int[] targets = r.ints(n, 0, v).toArray();
        for (int i = 0; i < n; i += 7) {
            targets[i] = -100;   // ignored rows spread over every parallel slice
        }
        float[] probs = nan(n * v);
        float[] losses = nan(n);
        CpuTransformerOps.crossEntropyForward(logits, targets, probs, losses, n, v);
        close("ce probs (large)", probs, refSoftmax(d(logits), n, v));
        close("ce losses (large)", losses, refCrossEntropy(d(logits), targets, n, v));
        float[] dl = nan(n * v);
        CpuTransformerOps.crossEntropyBackward(probs, targets, 0.5f, dl, n, v);
        double[] ref = new double[n * v];
        for (int i = 0; i < n * v; i++) {
            ref[i] = targets[i / v] == -100 ? 0 : 0.5 * probs[i] - (i % v == targets[i / v] ? 0.5 : 0);
        }
        close("ce dlogits (large)", dl, ref);
    }

    @Test
    void crossEntropyRejectsTargetsOutsideVocabulary() {
        float[] logits = new float[2 * V];
        float[] probs = nan(2 * V);
        float[] losses = nan(2);
        assertThrows(ShapeException.class,
                () -> CpuTransformerOps.crossEntropyForward(logits, new int[] {0, V}, probs, losses, 2, V));
        assertThrows(ShapeException.class,
                () -> CpuTransformerOps.crossEntropyForward(logits, new int[] {-1, 0}, probs, losses, 2, V));
        assertTrue(Float.isNaN(losses[0]) && Float.isNaN(probs[0]), "nothing written before the check");
        assertThrows(ShapeException.class,
                () -> CpuTransformerOps.crossEntropyBackward(probs, new int[] {0, V + 3}, 1f, new float[2 * V], 2, V));
    }

    // ================================================================ embeddings

    @Test
    void embeddingForwardMatchesReference() {
        Random r = new Random(61);
        int tmax = T + 3;   // wpe may hold more positions than T
        float[] wte = rand(r, V * C, 1);
        float[] wpe = rand(r, tmax * C, 1);
        int[] ids = r.ints(B * T, 0, V).toArray();
        float[] out = nan(B * T * C);
        CpuTransformerOps.embeddingForward(ids, wte, wpe, out, B, T, C);
        close("embedding", out, refEmbedding(ids, d(wte), d(wpe), B, T, C));
    }

    @Test
    void embeddingBackwardMatchesFiniteDifferencesAndAccumulatesRepeatedIds() {
        Random r = new Random(62);
        int tmax = T + 2;
        double[] wte = d(rand(r, V * C, 1));
        double[] wpe = d(rand(r, tmax * C, 1));
        int[] ids = {3, 3, 7, 3, 0, 3, 10, 10, 3, 1};   // [B=2,T=5], id 3 five times
        float[] dout = rand(r, B * T * C, 1);
        float[] dwte0 = rand(r, V * C, 1);
        float[] dwpe0 = rand(r, tmax * C, 1);
        float[] dwte = dwte0.clone();
        float[] dwpe = dwpe0.clone();
        CpuTransformerOps.embeddingBackward(dout, ids, dwte, dwpe, B, T, C);
        close("embedding dwte (+=)", dwte,
                plus(dwte0, fd(wte, d(dout), w -> refEmbedding(ids, w, wpe, B, T, C), null)));
        close("embedding dwpe (+=)", dwpe,
                plus(dwpe0, fd(wpe, d(dout), p -> refEmbedding(ids, wte, p, B, T, C), null)));
        for (int c = 0; c < C; c++) {
            double sum = dwte0[3 * C + c];
            for (int n : new int[] {0, 1, 3, 5, 8}) {
                sum += dout[n * C + c];
            }
            assertEquals(sum, dwte[3 * C + c], 1e-5, "id 3 accumulated over its five tokens, c=" + c);
            assertEquals(dwte0[2 * C + c], dwte[2 * C + c], 0f, "an unused id keeps its gradient");
        }
    }

    @Test
    void embeddingRejectsIdsOutsideVocabulary() {
        float[] wte = new float[V * C];
        float[] wpe = new float[T * C];
        int[] bad = new int[B * T];
        bad[7] = V;
        assertThrows(ShapeException.class,
                () -> CpuTransformerOps.embeddingForward(bad, wte, wpe, new float[B * T * C], B, T, C));
        bad[7] = -2;
        assertThrows(ShapeException.class,
                () -> CpuTransformerOps.embeddingBackward(new float[B * T * C], bad, wte, wpe, B, T, C));
        for (float w : wte) {
            assertEquals(0f, w, 0f, "nothing accumulated before the check");
        }
    }
}
