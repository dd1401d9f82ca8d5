package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Arrays;
import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.d;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.fd;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.plus;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refAttention;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refCrossEntropy;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refEmbedding;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refGelu;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refLayerNorm;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refSoftmax;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GPT-2 transformer-op contract of {@link Backend}, run on every backend in {@link #backends()}: through the
 * public API, each forward matches a double-precision reference, each backward matches finite differences of it,
 * every output is fully written (outputs are poisoned with NaN before each call), {@code +=} gradients accumulate,
 * awkward shapes (T=1, T=7, C=12 with 3 heads, V=97) work, a NaN in one row's input reaches that row's output
 * and no other, ignored targets ({@link CrossEntropy#IGNORE}) have loss 0 and a zero dlogits row, and other
 * out-of-vocabulary targets/ids throw {@link ShapeException}.
 */
class TransformerOpsContractTest {

    private static final float EPS = 1e-5f;

    /**
     * The backends of {@link ContractBackends#all()}, one instance per invocation, opened lazily; JUnit closes
     * each after its invocation (AutoCloseable arguments).
     */
    static Stream<Arguments> backends() {
        return ContractBackends.all().map(nb -> Arguments.of(Named.of(nb.getName(), nb.getPayload().get())));
    }

    /** (B, T, C, nHead) shapes: tiny, T=1, T=7 with C=12 and 3 heads. */
    private static final int[][] SHAPES = {{2, 5, 8, 2}, {3, 1, 8, 2}, {1, 7, 12, 3}};

    // ================================================================ helpers

    /** A zero tensor poisoned with NaN, so an unwritten element shows. */
    private static Tensor poisoned(Backend be, int... shape) {
        Tensor t = be.zeros(DType.F32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    private static void close(String what, float[] actual, double[] ref) {
        Tolerance.Result res = Tolerance.F32.compare(what, actual, ref);
        assertTrue(res.ok(), res.describe());
    }

    private static void fullyWritten(String what, float[] a) {
        for (int i = 0; i < a.length; i++) {
            assertFalse(Float.isNaN(a[i]), what + "[" + i + "] not written (still NaN)");
        }
    }

    private static void checked(String what, float[] actual, double[] ref) {
        fullyWritten(what, actual);
        close(what, actual, ref);
    }

    // ================================================================ LayerNorm

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void layerNormForwardAndBackward(Backend be) {
        for (int[] s : SHAPES) {
            int b = s[0], t = s[1], c = s[2], n = b * t;
            Random r = new Random(100 + n + c);
            float[] x = rand(r, n * c, 2);
            float[] g = rand(r, c, 1);
            float[] bb = rand(r, c, 1);
            float[] dout = rand(r, n * c, 1);
            float[] dg0 = rand(r, c, 1);
            float[] db0 = rand(r, c, 1);
            String tag = " [" + b + "," + t + "," + c + "]";
            try (Tensor xt = be.upload(x, b, t, c); Tensor gt = be.upload(g, c); Tensor bt = be.upload(bb, c);
                 Tensor out = poisoned(be, b, t, c); Tensor mean = poisoned(be, b, t);
                 Tensor rstd = poisoned(be, b, t); Tensor dot = be.upload(dout, b, t, c);
                 Tensor dx = poisoned(be, b, t, c); Tensor dg = be.upload(dg0, c); Tensor db = be.upload(db0, c)) {
                be.layerNormForward(xt, gt, bt, EPS, out, mean, rstd);
                double[] rm = new double[n];
                double[] rr = new double[n];
                checked("layerNorm out" + tag, be.download(out),
                        refLayerNorm(d(x), d(g), d(bb), EPS, n, c, rm, rr));
                checked("layerNorm mean" + tag, be.download(mean), rm);
                checked("layerNorm rstd" + tag, be.download(rstd), rr);

                be.layerNormBackward(dot, xt, gt, mean, rstd, dx, dg, db);
                double[] xd = d(x), gd = d(g), bd = d(bb), G = d(dout);
                checked("layerNorm dx" + tag, be.download(dx),
                        fd(xd, G, xx -> refLayerNorm(xx, gd, bd, EPS, n, c, null, null), null));
                checked("layerNorm dgamma (+=)" + tag, be.download(dg),
                        plus(dg0, fd(gd, G, gg -> refLayerNorm(xd, gg, bd, EPS, n, c, null, null), null)));
                checked("layerNorm dbeta (+=)" + tag, be.download(db),
                        plus(db0, fd(bd, G, q -> refLayerNorm(xd, gd, q, EPS, n, c, null, null), null)));
            }
        }
    }

    // ================================================================ GELU

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void geluForwardAndBackward(Backend be) {
        Random r = new Random(200);
        int n = 7 * 12;
        float[] x = rand(r, n, 3);
        x[0] = 0f;
        x[1] = 1e4f;
        x[2] = -1e4f;
        float[] dout = rand(r, n, 1);
        try (Tensor xt = be.upload(x, 7, 12); Tensor out = poisoned(be, 7, 12); Tensor dot = be.upload(dout, 7, 12);
             Tensor dx = poisoned(be, 7, 12)) {
            be.geluForward(xt, out);
            float[] y = be.download(out);
            checked("gelu", y, refGelu(d(x)));
            assertEquals(0f, y[0], 0f, "gelu(0)");
            assertEquals(1e4f, y[1], 0f, "gelu(1e4)");
            assertEquals(0f, y[2], 0f, "gelu(-1e4)");
            be.geluBackward(xt, dot, dx);
            float[] g = be.download(dx);
            double[] xd = d(x);
            xd[1] = 3;   // finite differences of x^3 at 1e4 lose all digits; check the large values exactly instead
            xd[2] = -3;
            double[] ref = fd(xd, d(dout), q -> refGelu(q), null);
            ref[1] = dout[1];   // gelu'(large) = 1
            ref[2] = 0;         // gelu'(-large) = 0
            checked("gelu dx", g, ref);
        }
    }

    // ================================================================ attention

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void attentionForwardAndBackward(Backend be) {
        for (int[] s : SHAPES) {
            int b = s[0], t = s[1], c = s[2], nh = s[3];
            Random r = new Random(400 + t * c);
            float[] qkv = rand(r, b * t * 3 * c, 1);
            float[] dout = rand(r, b * t * c, 1);
            String tag = " B=" + b + " T=" + t + " C=" + c + " nHead=" + nh;
            try (Tensor q = be.upload(qkv, b, t, 3 * c); Tensor out = poisoned(be, b, t, c);
                 Tensor att = poisoned(be, b, nh, t, t); Tensor dot = be.upload(dout, b, t, c);
                 Tensor dq = poisoned(be, b, t, 3 * c)) {
                be.attentionForward(q, nh, out, att);
                double[] ratt = new double[b * nh * t * t];
                checked("attention out" + tag, be.download(out), refAttention(d(qkv), b, t, c, nh, ratt));
                float[] a = be.download(att);
                checked("attention att" + tag, a, ratt);   // ratt is 0 above the diagonal
                for (int bh = 0; bh < b * nh; bh++) {
                    for (int i = 0; i < t; i++) {
                        for (int j = i + 1; j < t; j++) {
                            assertEquals(0f, a[(bh * t + i) * t + j], 0f, "att above the diagonal" + tag);
                        }
                    }
                }
                be.attentionBackward(dot, q, att, nh, dq);
                checked("attention dqkv" + tag, be.download(dq),
                        fd(d(qkv), d(dout), z -> refAttention(z, b, t, c, nh, null), null));
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void attentionIgnoresFutureTokens(Backend be) {
        int b = 1, t = 7, c = 12, nh = 3, cut = 3;
        Random r = new Random(450);
        float[] qkv = rand(r, b * t * 3 * c, 1);
        float[] later = qkv.clone();
        for (int i = (cut + 1) * 3 * c; i < later.length; i++) {
            later[i] = later[i] * -3f + 1f;   // tokens after `cut` changed (q, k and v)
        }
        try (Tensor q1 = be.upload(qkv, b, t, 3 * c); Tensor q2 = be.upload(later, b, t, 3 * c);
             Tensor o1 = poisoned(be, b, t, c); Tensor o2 = poisoned(be, b, t, c);
             Tensor att = poisoned(be, b, nh, t, t)) {
            be.attentionForward(q1, nh, o1, att);
            be.attentionForward(q2, nh, o2, att);
            float[] y1 = be.download(o1);
            float[] y2 = be.download(o2);
            float[] past1 = Arrays.copyOf(y1, (cut + 1) * c);
            float[] past2 = Arrays.copyOf(y2, (cut + 1) * c);
            close("attention out up to token " + cut + " independent of later tokens", past2, d(past1));
            assertFalse(Arrays.equals(y1, y2), "later tokens' outputs must change");
        }
    }

    // ================================================================ cross-entropy

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void crossEntropyForwardAndBackward(Backend be) {
        int b = 2, t = 7, v = 97, n = b * t;
        Random r = new Random(500);
        float[] logits = rand(r, n * v, 2);
        int[] targets = r.ints(n, 0, v).toArray();
        targets[0] = 0;
        targets[1] = v - 1;
        float scale = 1f / n;
        try (Tensor lt = be.upload(logits, b, t, v); Tensor tt = be.uploadInts(targets, b, t);
             Tensor probs = poisoned(be, b, t, v); Tensor losses = poisoned(be, b, t);
             Tensor dl = poisoned(be, b, t, v)) {
            be.crossEntropyForward(lt, tt, probs, losses);
            checked("ce probs", be.download(probs), refSoftmax(d(logits), n, v));
            checked("ce losses", be.download(losses), refCrossEntropy(d(logits), targets, n, v));
            be.crossEntropyBackward(probs, tt, scale, dl);
            double[] G = new double[n];
            Arrays.fill(G, scale);
            checked("ce dlogits", be.download(dl), fd(d(logits), G, l -> refCrossEntropy(l, targets, n, v), null));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void crossEntropyOfUniformLogitsIsLogVAndBadTargetsThrow(Backend be) {
        int n = 3, v = 97;
        float[] logits = new float[n * v];
        Arrays.fill(logits, -2.5f);
        try (Tensor lt = be.upload(logits, n, v); Tensor tt = be.uploadInts(new int[] {0, 50, 96}, n);
             Tensor bad = be.uploadInts(new int[] {0, 97, 1}, n); Tensor neg = be.uploadInts(new int[] {-1, 0, 1}, n);
             Tensor probs = poisoned(be, n, v); Tensor losses = poisoned(be, n); Tensor dl = poisoned(be, n, v)) {
            be.crossEntropyForward(lt, tt, probs, losses);
            float[] l = be.download(losses);
            for (int i = 0; i < n; i++) {
                assertEquals(Math.log(v), l[i], 1e-5, "uniform logits: loss = log V");
            }
            assertThrows(ShapeException.class, () -> be.crossEntropyForward(lt, bad, probs, losses));
            assertThrows(ShapeException.class, () -> be.crossEntropyForward(lt, neg, probs, losses));
            assertThrows(ShapeException.class, () -> be.crossEntropyBackward(probs, bad, 1f, dl));
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void crossEntropyIgnoredTargetsHaveNoLossAndNoGradient(Backend be) {
        int b = 2, t = 5, v = 97, n = b * t;
        Random r = new Random(510);
        float[] logits = rand(r, n * v, 2);
        int[] targets = r.ints(n, 0, v).toArray();
        for (int i : new int[] {0, 1, 4, 9}) {
            targets[i] = CrossEntropy.IGNORE;   // a masked prompt start, a middle row, trailing padding
        }
        assertEquals(6, CrossEntropy.counted(targets));
        float scale = 1f / CrossEntropy.counted(targets);
        try (Tensor lt = be.upload(logits, b, t, v); Tensor tt = be.uploadInts(targets, b, t);
             Tensor probs = poisoned(be, b, t, v); Tensor losses = poisoned(be, b, t);
             Tensor dl = poisoned(be, b, t, v)) {
            be.crossEntropyForward(lt, tt, probs, losses);
            checked("ce probs (ignored rows too)", be.download(probs), refSoftmax(d(logits), n, v));
            float[] l = be.download(losses);
            checked("ce losses", l, refCrossEntropy(d(logits), targets, n, v));
            for (int i = 0; i < n; i++) {
                if (targets[i] == CrossEntropy.IGNORE) {
                    assertEquals(0f, l[i], "ignored row " + i + " has loss exactly 0");
                } else {
                    assertTrue(l[i] > 0f, "counted row " + i + " has a positive loss");
                }
            }
            be.crossEntropyBackward(probs, tt, scale, dl);
            double[] G = new double[n];
            Arrays.fill(G, scale);
            float[] g = be.download(dl);
            checked("ce dlogits", g, fd(d(logits), G, x -> refCrossEntropy(x, targets, n, v), null));
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < v; j++) {
                    if (targets[i] == CrossEntropy.IGNORE) {
                        assertEquals(0f, g[i * v + j], "ignored row " + i + " has dlogits exactly 0");
                    }
                }
            }
        }
        for (int bad : new int[] {-1, -99, -101, v}) {
            int[] tg = targets.clone();
            tg[3] = bad;
            try (Tensor lt = be.upload(logits, n, v); Tensor tt = be.uploadInts(tg, n);
                 Tensor probs = poisoned(be, n, v); Tensor losses = poisoned(be, n); Tensor dl = poisoned(be, n, v)) {
                ShapeException e = assertThrows(ShapeException.class,
                        () -> be.crossEntropyForward(lt, tt, probs, losses));
                assertTrue(e.getMessage().contains("= " + bad + " is outside [0," + v + ")"), e.getMessage());
                assertThrows(ShapeException.class, () -> be.crossEntropyBackward(probs, tt, 1f, dl));
            }
        }
    }

    // ================================================================ embeddings

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void embeddingForwardAndBackward(Backend be) {
        int b = 2, t = 7, c = 12, v = 97, tmax = 9;
        Random r = new Random(600);
        float[] wte = rand(r, v * c, 1);
        float[] wpe = rand(r, tmax * c, 1);
        int[] ids = r.ints(b * t, 0, v).toArray();
        ids[3] = 42;
        ids[9] = 42;
        ids[12] = 42;   // a repeated id accumulates
        ids[13] = v - 1;
        float[] dout = rand(r, b * t * c, 1);
        float[] dwte0 = rand(r, v * c, 1);
        float[] dwpe0 = rand(r, tmax * c, 1);
        try (Tensor it = be.uploadInts(ids, b, t); Tensor te = be.upload(wte, v, c); Tensor pe = be.upload(wpe, tmax, c);
             Tensor out = poisoned(be, b, t, c); Tensor dot = be.upload(dout, b, t, c);
             Tensor dte = be.upload(dwte0, v, c); Tensor dpe = be.upload(dwpe0, tmax, c)) {
            be.embeddingForward(it, te, pe, out);
            double[] wted = d(wte), wped = d(wpe);
            checked("embedding out", be.download(out), refEmbedding(ids, wted, wped, b, t, c));
            be.embeddingBackward(dot, it, dte, dpe);
            checked("embedding dwte (+=)", be.download(dte),
                    plus(dwte0, fd(wted, d(dout), w -> refEmbedding(ids, w, wped, b, t, c), null)));
            checked("embedding dwpe (+=)", be.download(dpe),
                    plus(dwpe0, fd(wped, d(dout), p -> refEmbedding(ids, wted, p, b, t, c), null)));
            float[] g = be.download(dte);
            for (int j = 0; j < c; j++) {
                double want = dwte0[42 * c + j] + dout[3 * c + j] + dout[9 * c + j] + dout[12 * c + j];
                assertEquals(want, g[42 * c + j], 1e-5, "id 42 accumulates its three tokens");
            }
            int[] badIds = ids.clone();
            badIds[5] = v;
            try (Tensor bad = be.uploadInts(badIds, b, t)) {
                assertThrows(ShapeException.class, () -> be.embeddingForward(bad, te, pe, out));
                assertThrows(ShapeException.class, () -> be.embeddingBackward(dot, bad, dte, dpe));
            }
        }
    }

    // ================================================================ NaN propagation

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void nanInOneRowReachesThatRowOnly(Backend be) {
        int n = 4, c = 12, bad = 2;
        Random r = new Random(700);
        float[] x = rand(r, n * c, 1);
        x[bad * c + 5] = Float.NaN;
        try (Tensor xt = be.upload(x, n, c); Tensor g = be.upload(rand(r, c, 1), c); Tensor bb = be.upload(rand(r, c, 1), c);
             Tensor out = poisoned(be, n, c); Tensor mean = poisoned(be, n); Tensor rstd = poisoned(be, n);
             Tensor tt = be.uploadInts(new int[] {1, 2, 3, 4}, n)) {
            be.layerNormForward(xt, g, bb, EPS, out, mean, rstd);
            rowsNaN("layerNorm", be.download(out), n, c, bad);
            be.fill(out, 0f);
            be.geluForward(xt, out);
            float[] y = be.download(out);
            for (int i = 0; i < y.length; i++) {
                assertEquals(i == bad * c + 5, Float.isNaN(y[i]), "gelu NaN exactly at the NaN input, i=" + i);
            }
            be.crossEntropyForward(xt, tt, out, mean);
            float[] l = be.download(mean);
            for (int i = 0; i < n; i++) {
                assertEquals(i == bad, Float.isNaN(l[i]), "cross-entropy loss NaN only in row " + bad + ", row " + i);
            }
        }
        // attention: a NaN in token 3's q of head 1 reaches token 3's head-1 output, nothing before token 3
        int b = 1, t = 7, nh = 3, hs = c / nh, tok = 3, head = 1;
        float[] qkv = rand(r, b * t * 3 * c, 1);
        qkv[tok * 3 * c + head * hs] = Float.NaN;
        try (Tensor q = be.upload(qkv, b, t, 3 * c); Tensor out = poisoned(be, b, t, c);
             Tensor att = poisoned(be, b, nh, t, t)) {
            be.attentionForward(q, nh, out, att);
            float[] y = be.download(out);
            for (int i = 0; i < t; i++) {
                for (int j = 0; j < c; j++) {
                    boolean affected = i == tok && j / hs == head;
                    assertEquals(affected, Float.isNaN(y[i * c + j]), "attention out NaN at t=" + i + " c=" + j);
                }
            }
        }
    }

    /** Every element of row {@code bad} is NaN, every other element finite. */
    private static void rowsNaN(String op, float[] y, int n, int c, int bad) {
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < c; j++) {
                float v = y[i * c + j];
                if (i == bad) {
                    assertTrue(Float.isNaN(v), op + " row " + bad + " col " + j + " must be NaN, got " + v);
                } else {
                    assertTrue(Float.isFinite(v), op + " row " + i + " col " + j + " must stay finite, got " + v);
                }
            }
        }
    }
}
