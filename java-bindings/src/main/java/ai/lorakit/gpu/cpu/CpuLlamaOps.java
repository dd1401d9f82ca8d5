package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;

/**
 * The Llama-family transformer ops of the pure-Java reference backend (RMSNorm, RoPE, SwiGLU, causal
 * grouped-query attention), on plain row-major float arrays; CpuBackend validates shapes ({@code OpChecks}) and
 * delegates here. Conventions as {@link ai.lorakit.gpu.Backend}: outputs are written, {@code +=} gradients
 * accumulate.
 *
 * <p>Precision and determinism as {@link CpuTransformerOps}: per-row sums in double; parallel work is split over
 * rows, (b, h) or (b, kv head) pairs by {@link CpuTransformerOps#forEach}, whose slices depend only on the shape;
 * dgamma sums fixed blocks of rows in a fixed order. Attention's softmax reuses CpuTransformerOps' row softmax
 * (its vector path unless {@code -Dlorakit.cpu.naive=true}).
 *
 * <p>Attention has two paths (STYLE.md 12.1), switched by {@link CpuTransformerOps#naive}: the scalar reference
 * here (per (b, h) loops, GQA addressing) and the Vector API path, which packs q and the group-repeated k, v into
 * GPT-2's fused layout [B,T,3C] (HF's repeat_kv, O(B T C) copies) and runs {@link CpuAttention}'s register-blocked
 * kernels; its backward sums the repeated heads' dk, dv over each group in head order. Both are held to the same
 * double references (LlamaOpsContractTest, CpuLlamaOpsPathsTest).
 */
final class CpuLlamaOps {
    /** Rows per partial-gradient block of dgamma (thread-count independent). */
    private static final int ROW_BLOCK = 64;
    /** SwiGLU's vector species (CpuMath's, whose exp it uses) and the constant 1. */
    private static final VectorSpecies<Float> S = CpuMath.S;
    private static final FloatVector ONE = FloatVector.broadcast(S, 1f);

    private CpuLlamaOps() {
    }

    // ---------------------------------------------------------------- RMSNorm

    /** rstd[n] = 1/sqrt(mean_c x[n,c]^2 + eps), out = x * rstd * gamma. x, out [N,C]; gamma [C]; rstd [N]. */
    static void rmsNormForward(float[] x, float[] gamma, float eps, float[] out, float[] rstd, int N, int C) {
        CpuTransformerOps.forEach(N, (long) N * C, n -> {
            int off = n * C;
            double ss = 0;
            for (int c = 0; c < C; c++) {
                ss += (double) x[off + c] * x[off + c];
            }
            float r = (float) (1.0 / Math.sqrt(ss / C + eps));
            for (int c = 0; c < C; c++) {
                out[off + c] = x[off + c] * r * gamma[c];
            }
            rstd[n] = r;
        });
    }

    /**
     * With xhat = x * rstd and dnorm = dout * gamma: dx = rstd * (dnorm - xhat * mean_c(dnorm * xhat)) (written),
     * dgamma += sum_n dout * xhat. dout, x, dx [N,C]; gamma, dgamma [C]; rstd [N]. dx may alias dout.
     */
    static void rmsNormBackward(float[] dout, float[] x, float[] gamma, float[] rstd, float[] dx, float[] dgamma,
                                int N, int C) {
        int blocks = (N + ROW_BLOCK - 1) / ROW_BLOCK;
        float[] pg = new float[blocks * C];   // [blocks,C] partial dgamma
        CpuTransformerOps.forEach(blocks, (long) N * C, blk -> {
            int po = blk * C;
            int end = Math.min(N, (blk + 1) * ROW_BLOCK);
            for (int n = blk * ROW_BLOCK; n < end; n++) {
                int off = n * C;
                float r = rstd[n];
                double sdx = 0;   // sum dnorm * xhat
                for (int c = 0; c < C; c++) {
                    float xhat = x[off + c] * r;
                    sdx += (double) (dout[off + c] * gamma[c]) * xhat;
                    pg[po + c] += dout[off + c] * xhat;
                }
                float mdx = (float) (sdx / C);
                for (int c = 0; c < C; c++) {
                    float xhat = x[off + c] * r;
                    dx[off + c] = r * (dout[off + c] * gamma[c] - xhat * mdx);
                }
            }
        });
        for (int blk = 0; blk < blocks; blk++) {
            for (int c = 0; c < C; c++) {
                dgamma[c] += pg[blk * C + c];
            }
        }
    }

    // ---------------------------------------------------------------- RoPE

    /**
     * Rotates each pair (i, i + D/2) of every head by the angle of position t = n % T: with c = cos[t,i],
     * s = sign * sin[t,i], out_i = x_i c - x_{i+D/2} s, out_{i+D/2} = x_{i+D/2} c + x_i s. sign = +1 is the
     * forward, -1 the transpose R^T (the backward). x, out [B*T, nHead*D] (out may be x); cos, sin [>=T, D/2].
     */
    static void rope(float[] x, float[] cos, float[] sin, float[] out, float sign, int N, int T, int nHead, int D) {
        int half = D / 2;
        int width = nHead * D;
        CpuTransformerOps.forEach(N, (long) N * width, n -> {
            int to = (n % T) * half;
            for (int h = 0; h < nHead; h++) {
                int o = n * width + h * D;
                for (int i = 0; i < half; i++) {
                    float c = cos[to + i];
                    float s = sign * sin[to + i];
                    float x1 = x[o + i];
                    float x2 = x[o + i + half];
                    out[o + i] = x1 * c - x2 * s;
                    out[o + i + half] = x2 * c + x1 * s;
                }
            }
        });
    }

    // ---------------------------------------------------------------- SwiGLU

    /** out = silu(gate) * up, silu(g) = g * sigmoid(g); flat [n], on [lo, hi). */
    static void swigluForward(float[] gate, float[] up, float[] out, int lo, int hi) {
        int i = lo;
        for (int end = lo + S.loopBound(hi - lo); i < end; i += S.length()) {   // σ(g) = 1 / (1 + e^-g)
            FloatVector g = FloatVector.fromArray(S, gate, i);
            FloatVector sig = ONE.div(CpuMath.exp(g.neg()).add(1f));
            g.mul(sig).mul(FloatVector.fromArray(S, up, i)).intoArray(out, i);
        }
        for (; i < hi; i++) {   // the scalar twin of the vector body
            float g = gate[i];
            float sig = 1f / (CpuMath.exp(-g) + 1f);
            out[i] = g * sig * up[i];
        }
    }

    /**
     * dup = dout * silu(gate), dgate = dout * up * sigmoid(gate) * (1 + gate * (1 - sigmoid(gate))) (both
     * written; each element is read before it is written, so outputs may alias inputs elementwise); on [lo, hi).
     */
    static void swigluBackward(float[] dout, float[] gate, float[] up, float[] dgate, float[] dup, int lo, int hi) {
        int i = lo;
        for (int end = lo + S.loopBound(hi - lo); i < end; i += S.length()) {
            FloatVector g = FloatVector.fromArray(S, gate, i);
            FloatVector u = FloatVector.fromArray(S, up, i);
            FloatVector d = FloatVector.fromArray(S, dout, i);
            FloatVector sig = ONE.div(CpuMath.exp(g.neg()).add(1f));
            d.mul(u).mul(sig.mul(g.mul(ONE.sub(sig)).add(1f))).intoArray(dgate, i);
            d.mul(g.mul(sig)).intoArray(dup, i);
        }
        for (; i < hi; i++) {   // the scalar twin of the vector body
            float g = gate[i];
            float u = up[i];
            float d = dout[i];
            float sig = 1f / (CpuMath.exp(-g) + 1f);
            dgate[i] = d * u * (sig * (g * (1f - sig) + 1f));
            dup[i] = d * (g * sig);
        }
    }

    // ---------------------------------------------------------------- causal grouped-query attention

    /**
     * Per (b, h) with kv head kh = h / (nHead / nKvHead) and scale = 1/sqrt(D): att[b,h,t,t2] =
     * softmax_{t2 <= t}(q_t . k_t2 * scale), 0 for t2 > t; out[b,t,h,:] = sum_t2 att v_t2. q, out [B,T,nHead*D];
     * k, v [B,T,nKvHead*D]; att [B,nHead,T,T].
     */
    static void gqaForward(float[] q, float[] k, float[] v, float[] out, float[] att,
                           int B, int T, int D, int nHead, int nKvHead) {
        if (!CpuTransformerOps.naive) {
            CpuAttention.forward(packQkv(q, k, v, B, T, D, nHead, nKvHead), out, att, B, T, nHead * D, nHead);
            return;
        }
        int group = nHead / nKvHead;
        float scale = (float) (1.0 / Math.sqrt(D));
        CpuTransformerOps.forEach(B * nHead, (long) B * nHead * T * T * D, bh -> {
            int b = bh / nHead;
            int h = bh % nHead;
            float[] qh = gather(q, b, h, T, nHead, D);             // [T,D]
            float[] kh = gather(k, b, h / group, T, nKvHead, D);   // [T,D]
            float[] vh = gather(v, b, h / group, T, nKvHead, D);   // [T,D]
            float[] o = new float[D];                              // [D] one output row
            for (int t = 0; t < T; t++) {
                int row = (bh * T + t) * T;
                for (int t2 = 0; t2 <= t; t2++) {
                    att[row + t2] = CpuTransformerOps.dot(qh, t * D, kh, t2 * D, D) * scale;
                }
                CpuTransformerOps.softmaxRow(att, att, row, t + 1);   // in place over the causal prefix
                Arrays.fill(att, row + t + 1, row + T, 0f);
                Arrays.fill(o, 0f);
                for (int t2 = 0; t2 <= t; t2++) {
                    CpuTransformerOps.axpy(att[row + t2], vh, t2 * D, o, 0, D);
                }
                System.arraycopy(o, 0, out, ((b * T + t) * nHead + h) * D, D);
            }
        });
    }

    /**
     * Backward per (b, kv head): for each query head h of the group in order, with datt = dout_t . v_t2 and
     * dpre = att (datt - sum_t2 att datt) scale: dq_t = sum_t2 dpre k_t2 (written), dk_t2 += sum_t dpre q_t and
     * dv_t2 += sum_t att dout_t into the group's own dk, dv rows (zeroed first: dk, dv are written). One task owns
     * a kv head, so the group's sum needs no synchronisation and has a fixed order.
     */
    static void gqaBackward(float[] dout, float[] q, float[] k, float[] v, float[] att, float[] dq, float[] dk,
                            float[] dv, int B, int T, int D, int nHead, int nKvHead) {
        if (!CpuTransformerOps.naive) {
            int C = nHead * D;
            float[] dqkv = new float[B * T * 3 * C];   // [B,T,3C] with the repeated heads' dk, dv
            CpuAttention.backward(dout, packQkv(q, k, v, B, T, D, nHead, nKvHead), att, dqkv, B, T, C, nHead);
            unpackGrads(dqkv, dq, dk, dv, B, T, D, nHead, nKvHead);
            return;
        }
        int group = nHead / nKvHead;
        float scale = (float) (1.0 / Math.sqrt(D));
        CpuTransformerOps.forEach(B * nKvHead, (long) B * nHead * T * T * D, bkh -> {
            int b = bkh / nKvHead;
            int kh = bkh % nKvHead;
            float[] kk = gather(k, b, kh, T, nKvHead, D);   // [T,D]
            float[] vv = gather(v, b, kh, T, nKvHead, D);   // [T,D]
            float[] dkk = new float[T * D];                 // [T,D]
            float[] dvv = new float[T * D];                 // [T,D]
            float[] dpre = new float[T];                    // [T] one row of d(scores)
            for (int h = kh * group; h < (kh + 1) * group; h++) {
                int bh = b * nHead + h;
                float[] qh = gather(q, b, h, T, nHead, D);      // [T,D]
                float[] dO = gather(dout, b, h, T, nHead, D);   // [T,D]
                float[] dqh = new float[T * D];                 // [T,D]
                for (int t = 0; t < T; t++) {
                    int row = (bh * T + t) * T;
                    double s = 0;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float a = att[row + t2];
                        float da = CpuTransformerOps.dot(dO, t * D, vv, t2 * D, D);
                        dpre[t2] = da;
                        s += (double) a * da;
                        CpuTransformerOps.axpy(a, dO, t * D, dvv, t2 * D, D);
                    }
                    float sf = (float) s;
                    for (int t2 = 0; t2 <= t; t2++) {
                        float g = att[row + t2] * (dpre[t2] - sf) * scale;
                        CpuTransformerOps.axpy(g, kk, t2 * D, dqh, t * D, D);
                        CpuTransformerOps.axpy(g, qh, t * D, dkk, t2 * D, D);
                    }
                }
                scatter(dqh, dq, b, h, T, nHead, D);
            }
            scatter(dkk, dk, b, kh, T, nKvHead, D);
            scatter(dvv, dv, b, kh, T, nKvHead, D);
        });
    }

    /** qkv [B,T,3C], C = nHead*D: q | k | v with kv head h / G repeated for every query head h (HF repeat_kv). */
    private static float[] packQkv(float[] q, float[] k, float[] v, int B, int T, int D, int nHead, int nKvHead) {
        int C = nHead * D;
        int kw = nKvHead * D;
        int group = nHead / nKvHead;
        float[] qkv = new float[B * T * 3 * C];
        for (int n = 0; n < B * T; n++) {
            System.arraycopy(q, n * C, qkv, n * 3 * C, C);
            for (int h = 0; h < nHead; h++) {
                int src = n * kw + (h / group) * D;
                System.arraycopy(k, src, qkv, n * 3 * C + C + h * D, D);
                System.arraycopy(v, src, qkv, n * 3 * C + 2 * C + h * D, D);
            }
        }
        return qkv;
    }

    /** dq = dqkv's q part; dk, dv [B,T,nKvHead*D] = the sums, in head order, of the group's repeated heads. */
    private static void unpackGrads(float[] dqkv, float[] dq, float[] dk, float[] dv, int B, int T, int D, int nHead,
                                    int nKvHead) {
        int C = nHead * D;
        int kw = nKvHead * D;
        int group = nHead / nKvHead;
        for (int n = 0; n < B * T; n++) {
            int base = n * 3 * C;
            System.arraycopy(dqkv, base, dq, n * C, C);
            for (int kh = 0; kh < nKvHead; kh++) {
                int dst = n * kw + kh * D;
                System.arraycopy(dqkv, base + C + kh * group * D, dk, dst, D);
                System.arraycopy(dqkv, base + 2 * C + kh * group * D, dv, dst, D);
                for (int h = kh * group + 1; h < (kh + 1) * group; h++) {
                    for (int i = 0; i < D; i++) {
                        dk[dst + i] += dqkv[base + C + h * D + i];
                        dv[dst + i] += dqkv[base + 2 * C + h * D + i];
                    }
                }
            }
        }
    }

    /** Head h of batch b of x [B,T,nH*D] as a new [T,D] array. */
    private static float[] gather(float[] x, int b, int h, int T, int nH, int D) {
        float[] o = new float[T * D];
        for (int t = 0; t < T; t++) {
            System.arraycopy(x, ((b * T + t) * nH + h) * D, o, t * D, D);
        }
        return o;
    }

    /** The inverse of {@link #gather}: src [T,D] into head h of batch b of x [B,T,nH*D]. */
    private static void scatter(float[] src, float[] x, int b, int h, int T, int nH, int D) {
        for (int t = 0; t < T; t++) {
            System.arraycopy(src, t * D, x, ((b * T + t) * nH + h) * D, D);
        }
    }
}
