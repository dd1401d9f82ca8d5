package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.RopeTables;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.d;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.fd;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.pick;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.plus;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.refEmbedding;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.sample;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The Llama-family op contract of {@link Backend} (rmsNorm, rope, swiglu, gqaAttention, embedding without
 * positions), run on every backend of {@link ContractBackends}: through the public API, each forward matches the
 * double references of {@link LlamaRef}, each backward matches central finite differences of them (the gradient
 * check of the new ops), every output is fully written (outputs are poisoned with NaN first), {@code +=}
 * gradients accumulate, in-place RoPE works, GQA covers MHA, GQA and MQA and T beyond one kernel tile (T = 260),
 * attention is causal, BF16 activations with FP32 statistics work, and bad shapes throw {@link ShapeException}
 * naming the problem.
 */
class LlamaOpsContractTest {

    private static final float EPS = 1e-6f;

    static Stream<Arguments> backends() {
        return ContractBackends.all().map(nb -> Arguments.of(Named.of(nb.getName(), nb.getPayload().get())));
    }

    private static Tensor poisoned(Backend be, int... shape) {
        Tensor t = be.zeros(DType.F32, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    private static void checked(String what, float[] actual, double[] ref) {
        for (int i = 0; i < actual.length; i++) {
            assertFalse(Float.isNaN(actual[i]), what + "[" + i + "] not written (still NaN)");
        }
        Tolerance.Result res = Tolerance.F32.compare(what, actual, ref);
        assertTrue(res.ok(), res.describe());
    }

    // ================================================================ RMSNorm

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rmsNormForwardAndBackward(Backend be) {
        int[][] shapes = {{2, 5, 8}, {1, 1, 300}, {3, 7, 12}, {70, 1, 5}};   // C > one group of 256; N > 64 rows
        for (int[] s : shapes) {
            int b = s[0], t = s[1], c = s[2], n = b * t;
            Random r = new Random(1000 + n + c);
            float[] x = rand(r, n * c, 2);
            float[] g = rand(r, c, 1);
            float[] dout = rand(r, n * c, 1);
            float[] dg0 = rand(r, c, 1);
            String tag = " [" + b + "," + t + "," + c + "]";
            try (Tensor xt = be.upload(x, b, t, c); Tensor gt = be.upload(g, c); Tensor out = poisoned(be, b, t, c);
                 Tensor rstd = poisoned(be, b, t); Tensor dot = be.upload(dout, b, t, c);
                 Tensor dx = poisoned(be, b, t, c); Tensor dg = be.upload(dg0, c)) {
                be.rmsNormForward(xt, gt, EPS, out, rstd);
                double[] rr = new double[n];
                checked("rmsNorm out" + tag, be.download(out), LlamaRef.rmsNorm(d(x), d(g), EPS, n, c, rr));
                checked("rmsNorm rstd" + tag, be.download(rstd), rr);
                be.rmsNormBackward(dot, xt, gt, rstd, dx, dg);
                double[] xd = d(x), gd = d(g), G = d(dout);
                int[] coords = n * c > 600 ? sample(r, n * c, 64) : null;
                float[] dxv = be.download(dx);
                checked("rmsNorm dx" + tag, coords == null ? dxv : pick(dxv, coords),
                        fd(xd, G, xx -> LlamaRef.rmsNorm(xx, gd, EPS, n, c, null), coords));
                checked("rmsNorm dgamma (+=)" + tag, be.download(dg),
                        plus(dg0, fd(gd, G, gg -> LlamaRef.rmsNorm(xd, gg, EPS, n, c, null), null)));
            }
        }
    }

    // ================================================================ RoPE

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void ropeForwardBackwardAndInPlace(Backend be) {
        int b = 2, t = 5, nh = 3, hd = 6, w = nh * hd, tmax = 9;
        Random r = new Random(1100);
        RopeTables tables = RopeTables.forWindow(tmax, hd, 10000.0, null);   // more rows than T: first T are read
        float[] x = rand(r, b * t * w, 1);
        float[] dout = rand(r, b * t * w, 1);
        double[] cd = d(tables.cos()), sd = d(tables.sin());
        try (Tensor xt = be.upload(x, b, t, w); Tensor cos = be.upload(tables.cos(), tmax, hd / 2);
             Tensor sin = be.upload(tables.sin(), tmax, hd / 2); Tensor out = poisoned(be, b, t, w);
             Tensor dot = be.upload(dout, b, t, w); Tensor dx = poisoned(be, b, t, w)) {
            be.ropeForward(xt, nh, cos, sin, out);
            double[] ref = LlamaRef.rope(d(x), cd, sd, b * t, t, nh, hd);
            checked("rope out", be.download(out), ref);
            be.ropeBackward(dot, nh, cos, sin, dx);
            checked("rope dx", be.download(dx),
                    fd(d(x), d(dout), xx -> LlamaRef.rope(xx, cd, sd, b * t, t, nh, hd), null));
            // in place: out == x, dx == dout
            be.ropeForward(xt, nh, cos, sin, xt);
            checked("rope out in place", be.download(xt), ref);
            be.ropeBackward(xt, nh, cos, sin, xt);
            checked("rope R^T R x = x (in place)", be.download(xt), d(x));
        }
    }

    // ================================================================ SwiGLU

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void swigluForwardAndBackward(Backend be) {
        int n = 7, f = 11;
        Random r = new Random(1200);
        float[] gate = rand(r, n * f, 3);
        gate[0] = -100f;   // sigmoid underflows to 0: silu = 0, gradient 0, no NaN
        gate[1] = 100f;    // silu = g
        gate[2] = 0f;
        float[] up = rand(r, n * f, 1);
        float[] dout = rand(r, n * f, 1);
        try (Tensor gt = be.upload(gate, n, f); Tensor ut = be.upload(up, n, f); Tensor out = poisoned(be, n, f);
             Tensor dot = be.upload(dout, n, f); Tensor dg = poisoned(be, n, f); Tensor du = poisoned(be, n, f)) {
            be.swigluForward(gt, ut, out);
            checked("swiglu out", be.download(out), LlamaRef.swiglu(d(gate), d(up)));
            be.swigluBackward(dot, gt, ut, dg, du);
            double[] gd = d(gate), ud = d(up), G = d(dout);
            checked("swiglu dgate", be.download(dg), fd(gd, G, gg -> LlamaRef.swiglu(gg, ud), null));
            checked("swiglu dup", be.download(du), fd(ud, G, uu -> LlamaRef.swiglu(gd, uu), null));
        }
    }

    // ================================================================ grouped-query attention

    /** (B, T, nHead, nKvHead, D): MHA, GQA, MQA, T = 1, odd D. */
    private static final int[][] GQA_SHAPES = {{2, 5, 2, 2, 4}, {2, 6, 4, 2, 5}, {1, 7, 3, 1, 4}, {3, 1, 4, 2, 3}};

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void gqaAttentionForwardAndBackward(Backend be) {
        for (int[] s : GQA_SHAPES) {
            checkGqa(be, s[0], s[1], s[2], s[3], s[4], null);
        }
    }

    /** T = 260 runs past one 256-key tile of the kernels; the backward is checked at sampled coordinates. */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void gqaAttentionLongWindow(Backend be) {
        checkGqa(be, 1, 260, 2, 1, 3, new Random(1300));
    }

    private static void checkGqa(Backend be, int b, int t, int nh, int nkv, int hd, Random sampler) {
        Random r = new Random(1400L + t * 31L + nh * 7L + nkv + hd);
        float[] q = rand(r, b * t * nh * hd, 1);
        float[] k = rand(r, b * t * nkv * hd, 1);
        float[] v = rand(r, b * t * nkv * hd, 1);
        float[] dout = rand(r, b * t * nh * hd, 1);
        String tag = " B=" + b + " T=" + t + " nHead=" + nh + " nKvHead=" + nkv + " D=" + hd;
        try (Tensor qt = be.upload(q, b, t, nh * hd); Tensor kt = be.upload(k, b, t, nkv * hd);
             Tensor vt = be.upload(v, b, t, nkv * hd); Tensor out = poisoned(be, b, t, nh * hd);
             Tensor att = poisoned(be, b, nh, t, t); Tensor dot = be.upload(dout, b, t, nh * hd);
             Tensor dq = poisoned(be, b, t, nh * hd); Tensor dk = poisoned(be, b, t, nkv * hd);
             Tensor dv = poisoned(be, b, t, nkv * hd)) {
            be.gqaAttentionForward(qt, kt, vt, nh, nkv, out, att);
            double[] qd = d(q), kd = d(k), vd = d(v), G = d(dout);
            double[] ratt = new double[b * nh * t * t];
            checked("gqa out" + tag, be.download(out), LlamaRef.gqa(qd, kd, vd, b, t, nh, nkv, hd, ratt));
            float[] a = be.download(att);
            checked("gqa att" + tag, a, ratt);
            for (int bh = 0; bh < b * nh; bh++) {
                for (int i = 0; i < t; i++) {
                    for (int j = i + 1; j < t; j++) {
                        assertEquals(0f, a[(bh * t + i) * t + j], 0f, "att above the diagonal" + tag);
                    }
                }
            }
            be.gqaAttentionBackward(dot, qt, kt, vt, att, nh, nkv, dq, dk, dv);
            int[] cq = sampler == null ? null : sample(sampler, q.length, 24);
            int[] ck = sampler == null ? null : sample(sampler, k.length, 24);
            checkedAt("gqa dq" + tag, be.download(dq), cq,
                    fd(qd, G, x -> LlamaRef.gqa(x, kd, vd, b, t, nh, nkv, hd, null), cq));
            checkedAt("gqa dk (sum over the group)" + tag, be.download(dk), ck,
                    fd(kd, G, x -> LlamaRef.gqa(qd, x, vd, b, t, nh, nkv, hd, null), ck));
            checkedAt("gqa dv (sum over the group)" + tag, be.download(dv), ck,
                    fd(vd, G, x -> LlamaRef.gqa(qd, kd, x, b, t, nh, nkv, hd, null), ck));
        }
    }

    /** As {@link #checked}, at the sampled {@code coords} only (all elements still must be written). */
    private static void checkedAt(String what, float[] actual, int[] coords, double[] ref) {
        if (coords == null) {
            checked(what, actual, ref);
            return;
        }
        for (int i = 0; i < actual.length; i++) {
            assertFalse(Float.isNaN(actual[i]), what + "[" + i + "] not written (still NaN)");
        }
        checked(what + " (sampled)", pick(actual, coords), ref);
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void gqaIgnoresFutureTokens(Backend be) {
        int b = 1, t = 7, nh = 4, nkv = 2, hd = 3, cut = 3;
        Random r = new Random(1500);
        float[] q = rand(r, b * t * nh * hd, 1);
        float[] k = rand(r, b * t * nkv * hd, 1);
        float[] v = rand(r, b * t * nkv * hd, 1);
        float[] k2 = k.clone();
        float[] v2 = v.clone();
        for (int i = (cut + 1) * nkv * hd; i < k.length; i++) {
            k2[i] = k2[i] * -3f + 1f;   // keys and values after `cut` changed
            v2[i] = v2[i] * 2f - 1f;
        }
        try (Tensor qt = be.upload(q, b, t, nh * hd); Tensor kt = be.upload(k, b, t, nkv * hd);
             Tensor vt = be.upload(v, b, t, nkv * hd); Tensor kt2 = be.upload(k2, b, t, nkv * hd);
             Tensor vt2 = be.upload(v2, b, t, nkv * hd); Tensor o1 = poisoned(be, b, t, nh * hd);
             Tensor o2 = poisoned(be, b, t, nh * hd); Tensor att = poisoned(be, b, nh, t, t)) {
            be.gqaAttentionForward(qt, kt, vt, nh, nkv, o1, att);
            be.gqaAttentionForward(qt, kt2, vt2, nh, nkv, o2, att);
            float[] y1 = be.download(o1), y2 = be.download(o2);
            int past = (cut + 1) * nh * hd;
            for (int i = 0; i < past; i++) {
                assertEquals(y1[i], y2[i], 1e-6, "gqa out up to token " + cut + " independent of later tokens, i=" + i);
            }
            boolean changed = false;
            for (int i = past; i < y1.length; i++) {
                changed |= y1[i] != y2[i];
            }
            assertTrue(changed, "later tokens' outputs must change");
        }
    }

    // ================================================================ embedding without positions

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void embeddingWithoutPositions(Backend be) {
        int b = 2, t = 5, c = 6, v = 13;
        Random r = new Random(1600);
        float[] wte = rand(r, v * c, 1);
        int[] ids = r.ints(b * t, 0, v).toArray();
        ids[0] = 4;
        ids[7] = 4;   // a repeated id accumulates
        float[] dout = rand(r, b * t * c, 1);
        float[] dwte0 = rand(r, v * c, 1);
        double[] zeroPos = new double[t * c];
        try (Tensor it = be.uploadInts(ids, b, t); Tensor te = be.upload(wte, v, c); Tensor out = poisoned(be, b, t, c);
             Tensor dot = be.upload(dout, b, t, c); Tensor dte = be.upload(dwte0, v, c)) {
            be.embeddingForward(it, te, null, out);
            checked("embedding out (no wpe)", be.download(out), refEmbedding(ids, d(wte), zeroPos, b, t, c));
            be.embeddingBackward(dot, it, dte, null);
            checked("embedding dwte (+=, no wpe)", be.download(dte),
                    plus(dwte0, fd(d(wte), d(dout), w -> refEmbedding(ids, w, zeroPos, b, t, c), null)));
        }
    }

    // ================================================================ bf16 storage

    /** Rounds to bf16 in place and returns the array (the values the backends will hold). */
    private static float[] bf16(float[] a) {
        for (int i = 0; i < a.length; i++) {
            a[i] = DType.BF16.round(a[i]);
        }
        return a;
    }

    private static Tensor upBf16(Backend be, float[] a, int... shape) {
        return be.upload(a, DType.BF16, shape);
    }

    private static Tensor poisonedBf16(Backend be, int... shape) {
        Tensor t = be.zeros(DType.BF16, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    private static void closeBf16(String what, float[] actual, double[] ref) {
        for (int i = 0; i < actual.length; i++) {
            assertFalse(Float.isNaN(actual[i]), what + "[" + i + "] not written (still NaN)");
        }
        Tolerance.Result res = Tolerance.BF16.compare(what + " (bf16)", actual, ref);
        assertTrue(res.ok(), res.describe());
    }

    /**
     * The precision policy's bf16 activations (ARCHITECTURE.md): activations and their gradients stored as BF16,
     * statistics (rstd, att), gamma and dgamma FP32; fp32 math inside, rounded on the store. Each op agrees with
     * the double reference of the bf16-rounded inputs to Tolerance.BF16 (mixed dtypes in one call included).
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void opsOnBf16Activations(Backend be) {
        int b = 2, t = 5, nh = 4, nkv = 2, hd = 6, c = nh * hd, n = b * t;
        Random r = new Random(1700);
        float[] x = bf16(rand(r, n * c, 1)), g = rand(r, c, 1), dout = bf16(rand(r, n * c, 1));
        float[] k = bf16(rand(r, n * nkv * hd, 1)), v = bf16(rand(r, n * nkv * hd, 1));
        RopeTables tab = RopeTables.forWindow(t, hd, 10000.0, null);
        double[] xd = d(x), gd = d(g), G = d(dout), kd = d(k), vd = d(v), cd = d(tab.cos()), sd = d(tab.sin());
        try (Tensor xt = upBf16(be, x, b, t, c); Tensor gt = be.upload(g, c); Tensor dot = upBf16(be, dout, b, t, c);
             Tensor kt = upBf16(be, k, b, t, nkv * hd); Tensor vt = upBf16(be, v, b, t, nkv * hd);
             Tensor cos = be.upload(tab.cos(), t, hd / 2); Tensor sin = be.upload(tab.sin(), t, hd / 2);
             Tensor out = poisonedBf16(be, b, t, c); Tensor dx = poisonedBf16(be, b, t, c);
             Tensor dx2 = poisonedBf16(be, b, t, c); Tensor rstd = poisoned(be, b, t);
             Tensor dg = be.zeros(DType.F32, c); Tensor att = poisoned(be, b, nh, t, t);
             Tensor dk = poisonedBf16(be, b, t, nkv * hd); Tensor dv = poisonedBf16(be, b, t, nkv * hd)) {
            be.rmsNormForward(xt, gt, EPS, out, rstd);
            closeBf16("rmsNorm out", be.download(out), LlamaRef.rmsNorm(xd, gd, EPS, n, c, null));
            be.rmsNormBackward(dot, xt, gt, rstd, dx, dg);
            closeBf16("rmsNorm dx", be.download(dx), fd(xd, G, xx -> LlamaRef.rmsNorm(xx, gd, EPS, n, c, null), null));
            closeBf16("rmsNorm dgamma", be.download(dg), fd(gd, G, gg -> LlamaRef.rmsNorm(xd, gg, EPS, n, c, null), null));

            be.ropeForward(xt, nh, cos, sin, out);
            closeBf16("rope out", be.download(out), LlamaRef.rope(xd, cd, sd, n, t, nh, hd));
            be.ropeBackward(dot, nh, cos, sin, dx);
            closeBf16("rope dx", be.download(dx), fd(xd, G, xx -> LlamaRef.rope(xx, cd, sd, n, t, nh, hd), null));

            be.swigluForward(xt, dot, out);   // gate = x, up = dout (any bf16 pair)
            closeBf16("swiglu out", be.download(out), LlamaRef.swiglu(xd, G));
            be.swigluBackward(dot, xt, dot, dx, dx2);
            closeBf16("swiglu dgate", be.download(dx), fd(xd, G, gg -> LlamaRef.swiglu(gg, G), null));
            closeBf16("swiglu dup", be.download(dx2), fd(G.clone(), G, uu -> LlamaRef.swiglu(xd, uu), null));

            be.gqaAttentionForward(xt, kt, vt, nh, nkv, out, att);
            closeBf16("gqa out", be.download(out), LlamaRef.gqa(xd, kd, vd, b, t, nh, nkv, hd, null));
            be.gqaAttentionBackward(dot, xt, kt, vt, att, nh, nkv, dx, dk, dv);
            closeBf16("gqa dq", be.download(dx), fd(xd, G, qq -> LlamaRef.gqa(qq, kd, vd, b, t, nh, nkv, hd, null), null));
            closeBf16("gqa dk", be.download(dk), fd(kd, G, kk -> LlamaRef.gqa(xd, kk, vd, b, t, nh, nkv, hd, null), null));
            closeBf16("gqa dv", be.download(dv), fd(vd, G, vv -> LlamaRef.gqa(xd, kd, vv, b, t, nh, nkv, hd, null), null));
        }
    }

    // ================================================================ shape errors

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void badShapesThrowNamingTheProblem(Backend be) {
        try (Tensor x = be.zeros(DType.F32, 2, 3, 12); Tensor g = be.zeros(DType.F32, 12);
             Tensor g5 = be.zeros(DType.F32, 5); Tensor rstd = be.zeros(DType.F32, 2, 3);
             Tensor rstd5 = be.zeros(DType.F32, 5); Tensor cos = be.zeros(DType.F32, 3, 3);
             Tensor cosShort = be.zeros(DType.F32, 2, 3); Tensor cosWide = be.zeros(DType.F32, 3, 6);
             Tensor kv = be.zeros(DType.F32, 2, 3, 6); Tensor kvBad = be.zeros(DType.F32, 2, 3, 5);
             Tensor att = be.zeros(DType.F32, 2, 2, 3, 3); Tensor att4 = be.zeros(DType.F32, 2, 4, 3, 3);
             Tensor small = be.zeros(DType.F32, 2, 3, 11)) {
            expect("C of", () -> be.rmsNormForward(x, g5, EPS, x, rstd));
            expect("N of", () -> be.rmsNormForward(x, g, EPS, x, rstd5));
            expect("must be even", () -> be.ropeForward(x, 4, cos, cos, x));           // D = 3
            expect("Tmax>=3", () -> be.ropeForward(x, 2, cosShort, cosShort, x));     // 2 positions < T = 3
            expect("RopeTables", () -> be.ropeForward(x, 2, cosWide, cosWide, x));    // D/2 = 3, not 6
            expect("must have", () -> be.ropeForward(x, 2, cos, cos, small));
            expect("elements", () -> be.swigluForward(x, small, x));
            expect("multiple of nKvHead", () -> be.gqaAttentionForward(x, kv, kv, 4, 3, x, att4));
            expect("[B,T,nKvHead*D]", () -> be.gqaAttentionForward(x, kvBad, kvBad, 2, 1, x, att));
            expect("[B,nHead,T,T]", () -> be.gqaAttentionForward(x, kv, kv, 4, 2, x, att));
            expect("must have", () -> be.gqaAttentionBackward(x, x, kv, kv, att, 2, 1, x, kv, kvBad));
        }
    }

    private static void expect(String fragment, org.junit.jupiter.api.function.Executable call) {
        ShapeException e = assertThrows(ShapeException.class, call);
        assertTrue(e.getMessage().contains(fragment), "message should mention '" + fragment + "': " + e.getMessage());
    }
}
