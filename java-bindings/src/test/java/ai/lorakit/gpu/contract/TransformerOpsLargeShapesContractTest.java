package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The transformer ops on every backend of {@link ContractBackends#all()} match CpuBackend (the reference) on
 * shapes past the device kernels' tiles and groups, where {@link TransformerOpsContractTest}'s small shapes
 * stay inside one: rows longer than a 256-thread group (C = 300, V = 1000), more rows than one 64-row
 * dgamma/dbeta block (N = 131), more keys than one 256-key attention tile (T = 300 and T = 1024), a head wider
 * than one 256-channel chunk (hs = 260), many repeated token ids, in-place calls (out aliasing x, dx aliasing
 * dout) and BF16 storage. Outputs are poisoned with NaN before each call.
 */
class TransformerOpsLargeShapesContractTest {

    private static final float EPS = 1e-5f;

    static Stream<Arguments> backends() {
        return ContractBackends.all().map(nb -> Arguments.of(Named.of(nb.getName(), nb.getPayload().get())));
    }

    private static Tensor poisoned(Backend be, DType dt, int... shape) {
        Tensor t = be.zeros(dt, shape);
        be.fill(t, Float.NaN);
        return t;
    }

    /** be's tensor and the reference's, compared under tol; every element written (no NaN left). */
    private static void same(Tolerance tol, String what, Tensor actual, Tensor ref) {
        float[] a = actual.backend().download(actual);
        for (int i = 0; i < a.length; i++) {
            assertFalse(Float.isNaN(a[i]), what + "[" + i + "] not written (still NaN)");
        }
        Tolerance.Result r = tol.compare(what, a, ref.backend().download(ref));
        assertTrue(r.ok(), r.describe());
    }

    // ================================================================ LayerNorm

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void layerNormPastOneGroupAndOneRowBlock(Backend be) {
        for (DType dt : new DType[] {DType.F32, DType.BF16}) {
            int n = 131, c = 300;
            Random r = new Random(1000 + dt.ordinal());
            float[] x = rand(r, n * c, 3), g = rand(r, c, 1), b = rand(r, c, 1), dout = rand(r, n * c, 1);
            float[] dg0 = rand(r, c, 1), db0 = rand(r, c, 1);
            Tolerance tol = Tolerance.of(dt);
            String tag = " " + dt + " [" + n + "," + c + "]";
            try (CpuBackend cpu = new CpuBackend();
                 Tensor xa = be.upload(x, dt, n, c); Tensor ga = be.upload(g, dt, c); Tensor ba = be.upload(b, dt, c);
                 Tensor oa = poisoned(be, dt, n, c); Tensor ma = poisoned(be, dt, n); Tensor ra = poisoned(be, dt, n);
                 Tensor da = be.upload(dout, dt, n, c); Tensor dxa = poisoned(be, dt, n, c);
                 Tensor dga = be.upload(dg0, dt, c); Tensor dba = be.upload(db0, dt, c);
                 Tensor xc = cpu.upload(x, dt, n, c); Tensor gc = cpu.upload(g, dt, c); Tensor bc = cpu.upload(b, dt, c);
                 Tensor oc = cpu.zeros(dt, n, c); Tensor mc = cpu.zeros(dt, n); Tensor rc = cpu.zeros(dt, n);
                 Tensor dc = cpu.upload(dout, dt, n, c); Tensor dxc = cpu.zeros(dt, n, c);
                 Tensor dgc = cpu.upload(dg0, dt, c); Tensor dbc = cpu.upload(db0, dt, c)) {
                be.layerNormForward(xa, ga, ba, EPS, oa, ma, ra);
                cpu.layerNormForward(xc, gc, bc, EPS, oc, mc, rc);
                same(tol, "layerNorm out" + tag, oa, oc);
                same(tol, "layerNorm mean" + tag, ma, mc);
                same(tol, "layerNorm rstd" + tag, ra, rc);
                be.layerNormBackward(da, xa, ga, ma, ra, dxa, dga, dba);
                cpu.layerNormBackward(dc, xc, gc, mc, rc, dxc, dgc, dbc);
                same(tol, "layerNorm dx" + tag, dxa, dxc);
                same(tol, "layerNorm dgamma (+=)" + tag, dga, dgc);
                same(tol, "layerNorm dbeta (+=)" + tag, dba, dbc);
                // in place: out aliasing x, dx aliasing dout (dgamma/dbeta accumulate a second time)
                try (Tensor xi = be.upload(x, dt, n, c); Tensor di = be.upload(dout, dt, n, c);
                     Tensor dci = cpu.upload(dout, dt, n, c)) {
                    be.layerNormForward(xi, ga, ba, EPS, xi, ma, ra);
                    same(tol, "layerNorm out (in place)" + tag, xi, oc);
                    be.layerNormBackward(di, xa, ga, ma, ra, di, dga, dba);
                    cpu.layerNormBackward(dci, xc, gc, mc, rc, dci, dgc, dbc);
                    same(tol, "layerNorm dx (in place over dout)" + tag, di, dci);
                }
                same(tol, "layerNorm dgamma (in place call)" + tag, dga, dgc);
            }
        }
    }

    // ================================================================ GELU

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void geluInPlaceOnManyElements(Backend be) {
        int n = 100_003;
        Random r = new Random(1100);
        float[] x = rand(r, n, 6), dout = rand(r, n, 1);
        try (CpuBackend cpu = new CpuBackend();
             Tensor xa = be.upload(x, n); Tensor ya = be.upload(x, n); Tensor da = be.upload(dout, n);
             Tensor xc = cpu.upload(x, n); Tensor yc = cpu.zeros(DType.F32, n); Tensor dc = cpu.upload(dout, n)) {
            be.geluForward(ya, ya);
            cpu.geluForward(xc, yc);
            same(Tolerance.F32, "gelu (in place)", ya, yc);
            be.geluBackward(xa, da, da);
            cpu.geluBackward(xc, dc, dc);
            same(Tolerance.F32, "gelu dx (in place over dout)", da, dc);
        }
    }

    // ================================================================ attention

    /** (B, T, C, nHead): keys past one 256-key tile, T = 1024, and a 260-channel head (two channel chunks). */
    private static final int[][] ATTENTION_SHAPES = {{2, 300, 8, 2}, {1, 1024, 16, 2}, {1, 9, 520, 2}};

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void attentionPastOneTileAndOneChunk(Backend be) {
        for (int[] s : ATTENTION_SHAPES) {
            int b = s[0], t = s[1], c = s[2], nh = s[3];
            Random r = new Random(1300 + t);
            float[] qkv = rand(r, b * t * 3 * c, 1), dout = rand(r, b * t * c, 1);
            String tag = " B=" + b + " T=" + t + " C=" + c + " nHead=" + nh;
            try (CpuBackend cpu = new CpuBackend();
                 Tensor qa = be.upload(qkv, b, t, 3 * c); Tensor oa = poisoned(be, DType.F32, b, t, c);
                 Tensor aa = poisoned(be, DType.F32, b, nh, t, t); Tensor da = be.upload(dout, b, t, c);
                 Tensor dqa = poisoned(be, DType.F32, b, t, 3 * c);
                 Tensor qc = cpu.upload(qkv, b, t, 3 * c); Tensor oc = cpu.zeros(DType.F32, b, t, c);
                 Tensor ac = cpu.zeros(DType.F32, b, nh, t, t); Tensor dc = cpu.upload(dout, b, t, c);
                 Tensor dqc = cpu.zeros(DType.F32, b, t, 3 * c)) {
                be.attentionForward(qa, nh, oa, aa);
                cpu.attentionForward(qc, nh, oc, ac);
                same(Tolerance.F32, "attention out" + tag, oa, oc);
                same(Tolerance.F32, "attention att" + tag, aa, ac);
                be.attentionBackward(da, qa, aa, nh, dqa);
                cpu.attentionBackward(dc, qc, ac, nh, dqc);
                same(Tolerance.F32, "attention dqkv" + tag, dqa, dqc);
            }
        }
    }

    // ================================================================ cross-entropy, embeddings

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void crossEntropyOfALargeVocabulary(Backend be) {
        int n = 5, v = 1000;
        Random r = new Random(1400);
        float[] logits = rand(r, n * v, 4);
        int[] targets = {0, 999, 256, 511, 7};
        try (CpuBackend cpu = new CpuBackend();
             Tensor la = be.upload(logits, n, v); Tensor ta = be.uploadInts(targets, n);
             Tensor pa = poisoned(be, DType.F32, n, v); Tensor lossa = poisoned(be, DType.F32, n);
             Tensor dla = poisoned(be, DType.F32, n, v);
             Tensor lc = cpu.upload(logits, n, v); Tensor tc = cpu.uploadInts(targets, n);
             Tensor pc = cpu.zeros(DType.F32, n, v); Tensor lossc = cpu.zeros(DType.F32, n);
             Tensor dlc = cpu.zeros(DType.F32, n, v)) {
            be.crossEntropyForward(la, ta, pa, lossa);
            cpu.crossEntropyForward(lc, tc, pc, lossc);
            same(Tolerance.F32, "ce probs", pa, pc);
            same(Tolerance.F32, "ce losses", lossa, lossc);
            be.crossEntropyBackward(pa, ta, 0.2f, dla);
            cpu.crossEntropyBackward(pc, tc, 0.2f, dlc);
            same(Tolerance.F32, "ce dlogits", dla, dlc);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void embeddingWithManyRepeatedIds(Backend be) {
        int b = 4, t = 64, c = 40, v = 50, tmax = 70;
        Random r = new Random(1500);
        int[] ids = r.ints(b * t, 0, v).toArray();   // 256 tokens over 50 ids: every id repeats
        ids[0] = v - 1;
        float[] wte = rand(r, v * c, 1), wpe = rand(r, tmax * c, 1), dout = rand(r, b * t * c, 1);
        float[] dwte0 = rand(r, v * c, 1), dwpe0 = rand(r, tmax * c, 1);
        try (CpuBackend cpu = new CpuBackend();
             Tensor ia = be.uploadInts(ids, b, t); Tensor tea = be.upload(wte, v, c); Tensor pea = be.upload(wpe, tmax, c);
             Tensor oa = poisoned(be, DType.F32, b, t, c); Tensor da = be.upload(dout, b, t, c);
             Tensor dtea = be.upload(dwte0, v, c); Tensor dpea = be.upload(dwpe0, tmax, c);
             Tensor ic = cpu.uploadInts(ids, b, t); Tensor tec = cpu.upload(wte, v, c); Tensor pec = cpu.upload(wpe, tmax, c);
             Tensor oc = cpu.zeros(DType.F32, b, t, c); Tensor dc = cpu.upload(dout, b, t, c);
             Tensor dtec = cpu.upload(dwte0, v, c); Tensor dpec = cpu.upload(dwpe0, tmax, c)) {
            be.embeddingForward(ia, tea, pea, oa);
            cpu.embeddingForward(ic, tec, pec, oc);
            same(Tolerance.F32, "embedding out", oa, oc);
            be.embeddingBackward(da, ia, dtea, dpea);
            cpu.embeddingBackward(dc, ic, dtec, dpec);
            same(Tolerance.F32, "embedding dwte (+=)", dtea, dtec);
            same(Tolerance.F32, "embedding dwpe (+=)", dpea, dpec);
        }
    }
}
