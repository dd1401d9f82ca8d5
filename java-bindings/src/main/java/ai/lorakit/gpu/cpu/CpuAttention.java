package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The Vector API path of causal self-attention ({@link CpuTransformerOps#attentionForward} and
 * {@link CpuTransformerOps#attentionBackward} define the maths; the scalar reference lives there). Per
 * (b, h) the head's q, k, v [T,hs] are gathered into padded per-thread scratch panels and every product is a small
 * register-blocked matrix product ({@link #block}: R rows x vectors of columns, one broadcast of A times
 * vector rows of B per step), restricted to the causal triangle by row blocks:
 * <pre>
 *   forward   S = q k^T        (row block t0.. : columns [0, t0+R))   att = softmax(scale S), out = att v
 *   backward  dP = dO v^T      dS = att * (dP - rowsum(att * dP)) * scale
 *             dq = dS k        dk = dS^T q        dv = att^T dO      (the ^T operands read column-wise)
 * </pre>
 * Every element of a product is one fma chain over p in ascending order starting from 0; entries beyond the
 * causal prefix are exact zeros, so blocking and padding never change a result (and nothing depends on the
 * thread that runs a head): the output is bit-reproducible. The padding of the scratch panels (rows past T,
 * columns past hs or past the causal prefix) is never cleared: it holds stale values that, lanes and rows being
 * independent, only reach padded outputs, which are never copied out; score columns past the prefix are
 * overwritten (-inf before the softmax, 0 after it) before anything reads them.
 */
final class CpuAttention {
    private static final VectorSpecies<Float> S = CpuMath.S;
    private static final int L = CpuMath.L;
    /** Rows per register block. */
    static final int R = 6;

    /** Elements summed in float lanes before the partial sum joins a double (long rows). */
    private static final int SUM_BLOCK = 512;
    /** Tile edge of the gather transposes. */
    private static final int TILE = 16;

    /** Per-thread scratch (grown on demand, never shrunk). */
    private static final ThreadLocal<float[][]> SCRATCH = ThreadLocal.withInitial(() -> new float[8][0]);

    private CpuAttention() {
    }

    /** Paddings of one call: Tr = T rounded up to R rows, Tp = Tr rounded up to L (row pitch of [T,T] panels). */
    private record Dims(int T, int hs, int hsp, int Tr, int Tp) {
        static Dims of(int T, int hs) {
            int tr = roundUp(T, R);
            return new Dims(T, hs, roundUp(hs, L), tr, roundUp(tr, L));
        }
    }

    private static int roundUp(int x, int to) {
        return (x + to - 1) / to * to;
    }

    /** Scratch array i of this thread with at least n elements (contents unspecified). */
    private static float[] scratch(float[][] s, int i, int n) {
        if (s[i].length < n) {
            s[i] = new float[n];
        }
        return s[i];
    }

    // ================================================================ forward

    /** As {@link CpuTransformerOps#attentionForward}: qkv [B,T,3C], out [B,T,C], att [B,nHead,T,T] written. */
    static void forward(float[] qkv, float[] out, float[] att, int B, int T, int C, int nHead) {
        int hs = C / nHead;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Dims d = Dims.of(T, hs);
        CpuTransformerOps.forEach(B * nHead, (long) B * nHead * T * T * hs, bh -> forwardHead(qkv, out, att,
                bh / nHead, bh % nHead, C, nHead, scale, d));
    }

    private static void forwardHead(float[] qkv, float[] out, float[] att, int b, int h, int C, int nHead,
                                    float scale, Dims d) {
        int T = d.T(), hs = d.hs(), hsp = d.hsp(), Tp = d.Tp();
        float[][] sc = SCRATCH.get();
        float[] q = scratch(sc, 0, d.Tr() * hsp);   // [Tr,hsp]
        float[] kt = scratch(sc, 1, hs * Tp);       // [hs,Tp] k transposed
        float[] v = scratch(sc, 2, T * hsp);        // [T,hsp]
        float[] s = scratch(sc, 3, d.Tr() * Tp);    // [Tr,Tp] scores, then probabilities
        float[] o = scratch(sc, 4, d.Tr() * hsp);   // [Tr,hsp]
        int head = b * T * 3 * C + h * hs;   // q of (b, t=0, h) in qkv
        for (int t = 0; t < T; t++) {
            System.arraycopy(qkv, head + t * 3 * C, q, t * hsp, hs);
            System.arraycopy(qkv, head + t * 3 * C + C, o, t * hsp, hs);   // k rows, staged in o
            System.arraycopy(qkv, head + t * 3 * C + 2 * C, v, t * hsp, hs);
        }
        transpose(o, 0, hsp, T, hs, kt, Tp);
        int bh = b * nHead + h;
        for (int t0 = 0; t0 < T; t0 += R) {
            int end = Math.min(T, t0 + R);   // causal: this block's rows see columns [0, end)
            block(q, t0 * hsp, hsp, 1, kt, 0, Tp, 0, hs, s, t0 * Tp, Tp, roundUp(end, L));
            for (int t = t0; t < end; t++) {
                softmaxPrefix(s, t * Tp, t + 1, Tp, scale);
                System.arraycopy(s, t * Tp, att, (bh * T + t) * T, T);
            }
            block(s, t0 * Tp, Tp, 1, v, 0, hsp, 0, end, o, t0 * hsp, hsp, hsp);
            for (int t = t0; t < end; t++) {
                System.arraycopy(o, t * hsp, out, (b * T + t) * C + h * hs, hs);
            }
        }
    }

    // ================================================================ backward

    /** As {@link CpuTransformerOps#attentionBackward}: dqkv [B,T,3C] written in full. */
    static void backward(float[] dout, float[] qkv, float[] att, float[] dqkv, int B, int T, int C, int nHead) {
        int hs = C / nHead;
        float scale = (float) (1.0 / Math.sqrt(hs));
        Dims d = Dims.of(T, hs);
        CpuTransformerOps.forEach(B * nHead, (long) B * nHead * T * T * hs, bh -> backwardHead(dout, qkv, att,
                dqkv, bh / nHead, bh % nHead, C, nHead, scale, d));
    }

    private static void backwardHead(float[] dout, float[] qkv, float[] att, float[] dqkv, int b, int h, int C,
                                     int nHead, float scale, Dims d) {
        int T = d.T(), hs = d.hs(), hsp = d.hsp(), Tr = d.Tr(), Tp = d.Tp();   // [T,hs] panels padded to [Tr,hsp]
        float[][] sc = SCRATCH.get();
        float[] q = scratch(sc, 0, T * hsp);      // [T,hsp]
        float[] k = scratch(sc, 1, T * hsp);      // [T,hsp]
        float[] vt = scratch(sc, 2, hs * Tp);     // [hs,Tp] v transposed
        float[] dO = scratch(sc, 3, Tr * hsp);    // [Tr,hsp]
        float[] p = scratch(sc, 4, Tr * Tp);      // [Tr,Tp] att, zero outside the causal prefix
        float[] ds = scratch(sc, 5, Tr * Tp);     // [Tr,Tp] dP, then d(pre-softmax scores)
        float[] o = scratch(sc, 6, Tr * hsp);     // [Tr,hsp] one gradient block at a time
        int bh = b * nHead + h;
        int head = b * T * 3 * C + h * hs;   // q of (b, t=0, h) in qkv and dqkv
        for (int t = 0; t < T; t++) {
            System.arraycopy(qkv, head + t * 3 * C, q, t * hsp, hs);
            System.arraycopy(qkv, head + t * 3 * C + C, k, t * hsp, hs);
            System.arraycopy(dout, (b * T + t) * C + h * hs, dO, t * hsp, hs);
            System.arraycopy(qkv, head + t * 3 * C + 2 * C, o, t * hsp, hs);   // v rows, staged in o
            System.arraycopy(att, (bh * T + t) * T, p, t * Tp, t + 1);
            Arrays.fill(p, t * Tp + t + 1, (t + 1) * Tp, 0f);   // exact zeros past the causal prefix
        }
        transpose(o, 0, hsp, T, hs, vt, Tp);
        // rows of dS, and dq = dS k, one row block at a time
        for (int t0 = 0; t0 < T; t0 += R) {
            int end = Math.min(T, t0 + R);
            block(dO, t0 * hsp, hsp, 1, vt, 0, Tp, 0, hs, ds, t0 * Tp, Tp, roundUp(end, L));
            for (int t = t0; t < end; t++) {
                softmaxBackwardRow(p, ds, t * Tp, t + 1, Tp, scale);
            }
            block(ds, t0 * Tp, Tp, 1, k, 0, hsp, 0, end, o, t0 * hsp, hsp, hsp);
            for (int t = t0; t < end; t++) {
                System.arraycopy(o, t * hsp, dqkv, (b * T + t) * 3 * C + h * hs, hs);
            }
        }
        // dk = dS^T q and dv = att^T dO: output row t2 sums over t in [t2, T) (the block's first row onwards)
        for (int t0 = 0; t0 < T; t0 += R) {
            int end = Math.min(T, t0 + R);
            block(ds, t0, 1, Tp, q, 0, hsp, t0, T, o, t0 * hsp, hsp, hsp);
            for (int t = t0; t < end; t++) {
                System.arraycopy(o, t * hsp, dqkv, (b * T + t) * 3 * C + C + h * hs, hs);
            }
            block(p, t0, 1, Tp, dO, 0, hsp, t0, T, o, t0 * hsp, hsp, hsp);
            for (int t = t0; t < end; t++) {
                System.arraycopy(o, t * hsp, dqkv, (b * T + t) * 3 * C + 2 * C + h * hs, hs);
            }
        }
    }

    /**
     * Softmax of scale * s[off, off+n) in place (n >= 1), as {@link CpuTransformerOps#softmaxRow} on the scaled
     * scores: e = exp(scale s - max), divided by their sum (float lanes per block of SUM_BLOCK, folded by
     * {@link CpuMath#sumLanes}, blocks added in order in double); s[off+n, off+pitch) set to 0. Whole vectors
     * only: the lanes past n are set to -inf first, so they add e = 0.
     */
    static void softmaxPrefix(float[] s, int off, int n, int pitch, float scale) {
        int nv = roundUp(n, L);   // <= pitch
        Arrays.fill(s, off + n, off + nv, Float.NEGATIVE_INFINITY);
        FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
        for (int i = 0; i < nv; i += L) {
            mv = mv.max(FloatVector.fromArray(S, s, off + i).mul(scale));   // lanewise max propagates NaN
        }
        float max = CpuMath.maxLanes(mv);
        double sum = 0;
        for (int i = 0; i < nv; ) {
            FloatVector acc = FloatVector.zero(S);
            for (int end = Math.min(nv, i + SUM_BLOCK); i < end; i += L) {
                FloatVector e = CpuMath.exp(FloatVector.fromArray(S, s, off + i).mul(scale).sub(max));
                e.intoArray(s, off + i);
                acc = acc.add(e);
            }
            sum += CpuMath.sumLanes(acc);
        }
        float inv = (float) (1.0 / sum);
        for (int i = 0; i < nv; i += L) {
            FloatVector.fromArray(S, s, off + i).mul(inv).intoArray(s, off + i);
        }
        Arrays.fill(s, off + n, off + pitch, 0f);
    }

    /**
     * One row of softmax backward in place: with P = p[off, off+n) and dP = ds[off, off+n),
     * ds = P (dP - sum P dP) scale on the prefix, 0 on [off+n, off+pitch). The sum runs in float lanes, the
     * lanes summed in a fixed order; p must be 0 on [off+n, off+roundUp(n, L)).
     */
    private static void softmaxBackwardRow(float[] p, float[] ds, int off, int n, int pitch, float scale) {
        int nv = roundUp(n, L);   // <= pitch
        Arrays.fill(ds, off + n, off + nv, 0f);   // scores of later keys: 0 * dP must not see them
        FloatVector acc = FloatVector.zero(S);
        for (int i = 0; i < nv; i += L) {
            acc = FloatVector.fromArray(S, p, off + i).fma(FloatVector.fromArray(S, ds, off + i), acc);
        }
        float sf = CpuMath.sumLanes(acc);
        for (int i = 0; i < nv; i += L) {
            FloatVector dp = FloatVector.fromArray(S, ds, off + i).sub(sf);
            FloatVector.fromArray(S, p, off + i).mul(dp).mul(scale).intoArray(ds, off + i);
        }
        Arrays.fill(ds, off + nv, off + pitch, 0f);
    }

    /** dst[i*ldd + t] = src[off + t*lds + i] for t < rows, i < cols, in TILE x TILE tiles. */
    private static void transpose(float[] src, int off, int lds, int rows, int cols, float[] dst, int ldd) {
        for (int t0 = 0; t0 < rows; t0 += TILE) {
            int t1 = Math.min(rows, t0 + TILE);
            for (int i0 = 0; i0 < cols; i0 += TILE) {
                int i1 = Math.min(cols, i0 + TILE);
                for (int t = t0; t < t1; t++) {
                    int so = off + t * lds;
                    for (int i = i0; i < i1; i++) {
                        dst[i * ldd + t] = src[so + i];
                    }
                }
            }
        }
    }

    // ================================================================ the product kernel

    /**
     * C[i, j] = sum_{p0 <= p < p1} A(i, p) B[p, j] for the R rows i of a block and columns j < ncols (a multiple
     * of L), with A(i, p) = a[aOff + i*ars + p*aps] (ars = lda, aps = 1 for A; ars = 1, aps = lda for A^T),
     * B[p, j] = b[bOff + p*ldb + j] and C[i, j] = c[cOff + i*ldc + j] (written, not accumulated).
     */
    static void block(float[] a, int aOff, int ars, int aps, float[] b, int bOff, int ldb, int p0, int p1,
                      float[] c, int cOff, int ldc, int ncols) {
        int j = 0;
        for (; j + 2 * L <= ncols; j += 2 * L) {
            kernel2(a, aOff, ars, aps, b, bOff + j, ldb, p0, p1, c, cOff + j, ldc);
        }
        if (j < ncols) {
            kernel1(a, aOff, ars, aps, b, bOff + j, ldb, p0, p1, c, cOff + j, ldc);
        }
    }

    /** R rows x 2 vectors of C (see {@link #block}). */
    private static void kernel2(float[] a, int aOff, int ars, int aps, float[] b, int bOff, int ldb, int p0,
                                int p1, float[] c, int cOff, int ldc) {
        FloatVector c00 = FloatVector.zero(S), c01 = FloatVector.zero(S);
        FloatVector c10 = FloatVector.zero(S), c11 = FloatVector.zero(S);
        FloatVector c20 = FloatVector.zero(S), c21 = FloatVector.zero(S);
        FloatVector c30 = FloatVector.zero(S), c31 = FloatVector.zero(S);
        FloatVector c40 = FloatVector.zero(S), c41 = FloatVector.zero(S);
        FloatVector c50 = FloatVector.zero(S), c51 = FloatVector.zero(S);
        int ai = aOff + p0 * aps;
        int bi = bOff + p0 * ldb;
        for (int p = p0; p < p1; p++, ai += aps, bi += ldb) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            FloatVector b1 = FloatVector.fromArray(S, b, bi + L);
            FloatVector x = FloatVector.broadcast(S, a[ai]);
            c00 = x.fma(b0, c00);
            c01 = x.fma(b1, c01);
            x = FloatVector.broadcast(S, a[ai + ars]);
            c10 = x.fma(b0, c10);
            c11 = x.fma(b1, c11);
            x = FloatVector.broadcast(S, a[ai + 2 * ars]);
            c20 = x.fma(b0, c20);
            c21 = x.fma(b1, c21);
            x = FloatVector.broadcast(S, a[ai + 3 * ars]);
            c30 = x.fma(b0, c30);
            c31 = x.fma(b1, c31);
            x = FloatVector.broadcast(S, a[ai + 4 * ars]);
            c40 = x.fma(b0, c40);
            c41 = x.fma(b1, c41);
            x = FloatVector.broadcast(S, a[ai + 5 * ars]);
            c50 = x.fma(b0, c50);
            c51 = x.fma(b1, c51);
        }
        c00.intoArray(c, cOff);
        c01.intoArray(c, cOff + L);
        c10.intoArray(c, cOff + ldc);
        c11.intoArray(c, cOff + ldc + L);
        c20.intoArray(c, cOff + 2 * ldc);
        c21.intoArray(c, cOff + 2 * ldc + L);
        c30.intoArray(c, cOff + 3 * ldc);
        c31.intoArray(c, cOff + 3 * ldc + L);
        c40.intoArray(c, cOff + 4 * ldc);
        c41.intoArray(c, cOff + 4 * ldc + L);
        c50.intoArray(c, cOff + 5 * ldc);
        c51.intoArray(c, cOff + 5 * ldc + L);
    }

    /** R rows x 1 vector of C (see {@link #block}). */
    private static void kernel1(float[] a, int aOff, int ars, int aps, float[] b, int bOff, int ldb, int p0,
                                int p1, float[] c, int cOff, int ldc) {
        FloatVector c0 = FloatVector.zero(S), c1 = FloatVector.zero(S), c2 = FloatVector.zero(S);
        FloatVector c3 = FloatVector.zero(S), c4 = FloatVector.zero(S), c5 = FloatVector.zero(S);
        int ai = aOff + p0 * aps;
        int bi = bOff + p0 * ldb;
        for (int p = p0; p < p1; p++, ai += aps, bi += ldb) {
            FloatVector b0 = FloatVector.fromArray(S, b, bi);
            c0 = FloatVector.broadcast(S, a[ai]).fma(b0, c0);
            c1 = FloatVector.broadcast(S, a[ai + ars]).fma(b0, c1);
            c2 = FloatVector.broadcast(S, a[ai + 2 * ars]).fma(b0, c2);
            c3 = FloatVector.broadcast(S, a[ai + 3 * ars]).fma(b0, c3);
            c4 = FloatVector.broadcast(S, a[ai + 4 * ars]).fma(b0, c4);
            c5 = FloatVector.broadcast(S, a[ai + 5 * ars]).fma(b0, c5);
        }
        c0.intoArray(c, cOff);
        c1.intoArray(c, cOff + ldc);
        c2.intoArray(c, cOff + 2 * ldc);
        c3.intoArray(c, cOff + 3 * ldc);
        c4.intoArray(c, cOff + 4 * ldc);
        c5.intoArray(c, cOff + 5 * ldc);
    }
}
