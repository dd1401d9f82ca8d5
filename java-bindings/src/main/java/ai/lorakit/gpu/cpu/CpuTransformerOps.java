package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.ShapeException;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

import java.util.Arrays;
import java.util.function.IntConsumer;

/**
 * The GPT-2 transformer ops of the pure-Java reference backend, on plain row-major float arrays
 * (CpuBackend validates shapes and delegates here). Conventions as {@link ai.lorakit.gpu.Backend}: outputs are
 * written, parameter gradients marked {@code +=} are accumulated.
 *
 * <p>Precision: per-row reductions (LayerNorm mean/variance, softmax sums, log-sum-exp) accumulate in double
 * (the vector path sums blocks of 512 exponentials in float lanes first); dot products over a head (hs values)
 * use several float accumulators (four scalars, or one fma chain per element in {@link CpuAttention}). Parallel
 * work is split over rows or (b, h) pairs once an op touches more than {@link #PARALLEL_WORK} elements;
 * reductions across rows (dgamma, dbeta) sum fixed-size row blocks in a fixed order, so results do not depend on
 * the number of threads.
 *
 * <p>Two paths (STYLE.md 12.1): the scalar reference (plain loops, double where it matters) and a Vector API
 * path ({@link CpuAttention}'s register-blocked products for attention; {@link Simd}: vector exp in softmax,
 * cross-entropy and GELU). The scalar path runs when {@code -Dlorakit.cpu.naive=true} (the property of
 * {@link CpuBackend#NAIVE_PROPERTY}) or when the jdk.incubator.vector module is absent; both are tested against
 * the same double references.
 *
 * <p>Determinism: both paths give the same bits on every call at every JIT tier. The vector path uses
 * {@link CpuMath}'s exp and fixed-order lane sums instead of the Vector API's EXP and reduceLanes(ADD), whose
 * interpreted and C2-intrinsified results differ (see CpuMath); parallel splits depend only on the shape.
 */
public final class CpuTransformerOps {

    /** Work (elements touched) above which an op runs on CpuParallel's pool. */
    static final long PARALLEL_WORK = 1L << 16;
    /** Rows per partial-gradient block in reductions across rows (thread-count independent). */
    private static final int ROW_BLOCK = 64;
    /** sqrt(2/pi), GELU's tanh approximation. */
    private static final double GELU_K = Math.sqrt(2.0 / Math.PI);
    private static final double GELU_C = 0.044715;

    /** True selects the scalar reference path; tests flip it to cover both paths. */
    static volatile boolean naive = Boolean.getBoolean(CpuBackend.NAIVE_PROPERTY)
            || ModuleLayer.boot().findModule("jdk.incubator.vector").isEmpty();

    private CpuTransformerOps() {
    }

    // ---------------------------------------------------------------- LayerNorm

    /**
     * out = (x - mean) * rstd * gamma + beta per row. x, out [N,C]; gamma, beta [C]; mean, rstd [N] written.
     */
    static void layerNormForward(float[] x, float[] gamma, float[] beta, float eps,
                                 float[] out, float[] mean, float[] rstd, int N, int C) {
        forEach(N, (long) N * C, n -> {
            int off = n * C;
            double s = 0;
            for (int c = 0; c < C; c++) {
                s += x[off + c];
            }
            double m = s / C;
            double v = 0;
            for (int c = 0; c < C; c++) {
                double d = x[off + c] - m;
                v += d * d;
            }
            double r = 1.0 / Math.sqrt(v / C + eps);
            float mf = (float) m;
            float rf = (float) r;
            for (int c = 0; c < C; c++) {
                out[off + c] = (float) ((x[off + c] - m) * r) * gamma[c] + beta[c];
            }
            mean[n] = mf;
            rstd[n] = rf;
        });
    }

    /**
     * LayerNorm backward with xhat = (x - mean) * rstd, dnorm = dout * gamma:
     * dx = rstd * (dnorm - mean(dnorm) - xhat * mean(dnorm * xhat)) (written); dgamma += sum_n dout * xhat,
     * dbeta += sum_n dout. dout, x, dx [N,C]; gamma, dgamma, dbeta [C]; mean, rstd [N].
     */
    static void layerNormBackward(float[] dout, float[] x, float[] gamma, float[] mean, float[] rstd,
                                  float[] dx, float[] dgamma, float[] dbeta, int N, int C) {
        int blocks = (N + ROW_BLOCK - 1) / ROW_BLOCK;
        float[] pg = new float[blocks * C];   // [blocks,C] partial dgamma
        float[] pb = new float[blocks * C];   // [blocks,C] partial dbeta
        forEach(blocks, (long) N * C, blk -> {
            int po = blk * C;
            int end = Math.min(N, (blk + 1) * ROW_BLOCK);
            for (int n = blk * ROW_BLOCK; n < end; n++) {
                int off = n * C;
                float m = mean[n];
                float r = rstd[n];
                double sd = 0;    // sum dnorm
                double sdx = 0;   // sum dnorm * xhat
                for (int c = 0; c < C; c++) {
                    float xhat = (x[off + c] - m) * r;
                    float dn = dout[off + c] * gamma[c];
                    sd += dn;
                    sdx += (double) dn * xhat;
                    pg[po + c] += dout[off + c] * xhat;
                    pb[po + c] += dout[off + c];
                }
                float md = (float) (sd / C);
                float mdx = (float) (sdx / C);
                for (int c = 0; c < C; c++) {
                    float xhat = (x[off + c] - m) * r;
                    float dn = dout[off + c] * gamma[c];
                    dx[off + c] = r * (dn - md - xhat * mdx);
                }
            }
        });
        for (int blk = 0; blk < blocks; blk++) {
            int po = blk * C;
            for (int c = 0; c < C; c++) {
                dgamma[c] += pg[po + c];
                dbeta[c] += pb[po + c];
            }
        }
    }

    // ---------------------------------------------------------------- GELU

    /** out = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's tanh approximation); x, out [n]. */
    static void geluForward(float[] x, float[] out, int n) {
        forChunks(n, (lo, hi) -> geluForward(x, out, lo, hi));
    }

    /** {@link #geluForward(float[], float[], int)} on [lo, hi), on the calling thread. */
    static void geluForward(float[] x, float[] out, int lo, int hi) {
        if (!naive) {
            Simd.geluForward(x, out, lo, hi);
            return;
        }
        for (int i = lo; i < hi; i++) {
            double v = x[i];
            out[i] = (float) (0.5 * v * (1 + tanh(GELU_K * (v + GELU_C * v * v * v))));
        }
    }

    /** dx = dout * GELU'(x) (written); x, dout, dx [n]. */
    static void geluBackward(float[] x, float[] dout, float[] dx, int n) {
        forChunks(n, (lo, hi) -> geluBackward(x, dout, dx, lo, hi));
    }

    /** {@link #geluBackward(float[], float[], float[], int)} on [lo, hi), on the calling thread. */
    static void geluBackward(float[] x, float[] dout, float[] dx, int lo, int hi) {
        if (!naive) {
            Simd.geluBackward(x, dout, dx, lo, hi);
            return;
        }
        for (int i = lo; i < hi; i++) {
            double v = x[i];
            double th = tanh(GELU_K * (v + GELU_C * v * v * v));
            double sech2 = 1 - th * th;
            double g = 0.5 * (1 + th) + 0.5 * v * sech2 * GELU_K * (1 + 3 * GELU_C * v * v);
            dx[i] = (float) (g * dout[i]);
        }
    }

    /** tanh through exp (an intrinsic): 1 - 2 / (e^{2u} + 1); exact limits +-1 for large |u|. */
    private static double tanh(double u) {
        return 1.0 - 2.0 / (Math.exp(2 * u) + 1.0);
    }

    // ---------------------------------------------------------------- softmax

    /**
     * Softmax of x[off, off+len) into out[off, ...) (x == out allowed: each element is read before it is
     * written); returns log(sum exp(x - max)) + max (log-sum-exp).
     */
    static double softmaxRow(float[] x, float[] out, int off, int len) {
        if (!naive) {
            return Simd.softmaxRow(x, out, off, len);
        }
        float max = Float.NEGATIVE_INFINITY;
        for (int c = 0; c < len; c++) {
            max = Math.max(max, x[off + c]);   // Math.max propagates NaN
        }
        double sum = 0;
        for (int c = 0; c < len; c++) {
            float e = (float) Math.exp(x[off + c] - max);
            out[off + c] = e;
            sum += e;
        }
        float inv = (float) (1.0 / sum);
        for (int c = 0; c < len; c++) {
            out[off + c] *= inv;
        }
        return Math.log(sum) + max;
    }

    // ---------------------------------------------------------------- causal self-attention

    /**
     * Causal multi-head attention forward, per (b, h) with hs = C / nHead and scale = 1/sqrt(hs):
     * att[b,h,t,t2] = softmax_{t2 <= t}(q_t . k_t2 * scale), 0 for t2 > t; out[b,t,h*hs + i] = sum_t2 att v_t2[i].
     * qkv [B,T,3C] (q | k | v), out [B,T,C], att [B,nHead,T,T].
     */
    static void attentionForward(float[] qkv, float[] out, float[] att, int B, int T, int C, int nHead) {
        if (!naive) {
            CpuAttention.forward(qkv, out, att, B, T, C, nHead);
            return;
        }
        int hs = C / nHead;
        float scale = (float) (1.0 / Math.sqrt(hs));
        long work = (long) B * nHead * T * T * hs;
        forEach(B * nHead, work, bh -> {
            int b = bh / nHead;
            int h = bh % nHead;
            float[] q = new float[T * hs];   // [T,hs]
            float[] k = new float[T * hs];   // [T,hs]
            float[] v = new float[T * hs];   // [T,hs]
            gatherHead(qkv, b, h, T, C, hs, q, k, v);
            float[] o = new float[hs];       // [hs] one output row
            for (int t = 0; t < T; t++) {
                int row = (bh * T + t) * T;
                for (int t2 = 0; t2 <= t; t2++) {
                    att[row + t2] = dot(q, t * hs, k, t2 * hs, hs) * scale;
                }
                softmaxRow(att, att, row, t + 1);   // in place over the causal prefix [0, t]
                Arrays.fill(o, 0f);
                for (int t2 = 0; t2 <= t; t2++) {
                    axpy(att[row + t2], v, t2 * hs, o, 0, hs);
                }
                for (int t2 = t + 1; t2 < T; t2++) {
                    att[row + t2] = 0f;
                }
                System.arraycopy(o, 0, out, (b * T + t) * C + h * hs, hs);
            }
        });
    }

    /**
     * Attention backward per (b, h): with datt = dout_t . v_t2 and dpre = att * (datt - sum_t2 att * datt)
     * (softmax backward), dq_t = scale sum_t2 dpre k_t2, dk_t2 = scale sum_t dpre q_t, dv_t2 = sum_t att dout_t.
     * dout [B,T,C], qkv and dqkv [B,T,3C] (dqkv written in full), att [B,nHead,T,T] from the forward.
     */
    static void attentionBackward(float[] dout, float[] qkv, float[] att, float[] dqkv,
                                  int B, int T, int C, int nHead) {
        if (!naive) {
            CpuAttention.backward(dout, qkv, att, dqkv, B, T, C, nHead);
            return;
        }
        int hs = C / nHead;
        float scale = (float) (1.0 / Math.sqrt(hs));
        long work = (long) B * nHead * T * T * hs;
        forEach(B * nHead, work, bh -> {
            int b = bh / nHead;
            int h = bh % nHead;
            float[] q = new float[T * hs];    // [T,hs]
            float[] k = new float[T * hs];    // [T,hs]
            float[] v = new float[T * hs];    // [T,hs]
            float[] dO = new float[T * hs];   // [T,hs]
            float[] dq = new float[T * hs];   // [T,hs]
            float[] dk = new float[T * hs];   // [T,hs]
            float[] dv = new float[T * hs];   // [T,hs]
            float[] dpre = new float[T];      // [T] one row of d(pre-softmax scores)
            gatherHead(qkv, b, h, T, C, hs, q, k, v);
            for (int t = 0; t < T; t++) {
                System.arraycopy(dout, (b * T + t) * C + h * hs, dO, t * hs, hs);
            }
            for (int t = 0; t < T; t++) {
                int row = (bh * T + t) * T;
                double s = 0;
                for (int t2 = 0; t2 <= t; t2++) {
                    float a = att[row + t2];
                    float da = dot(dO, t * hs, v, t2 * hs, hs);
                    dpre[t2] = da;
                    s += (double) a * da;
                    axpy(a, dO, t * hs, dv, t2 * hs, hs);
                }
                float sf = (float) s;
                for (int t2 = 0; t2 <= t; t2++) {
                    float g = att[row + t2] * (dpre[t2] - sf) * scale;
                    axpy(g, k, t2 * hs, dq, t * hs, hs);
                    axpy(g, q, t * hs, dk, t2 * hs, hs);
                }
            }
            for (int t = 0; t < T; t++) {
                int base = (b * T + t) * 3 * C + h * hs;
                System.arraycopy(dq, t * hs, dqkv, base, hs);
                System.arraycopy(dk, t * hs, dqkv, base + C, hs);
                System.arraycopy(dv, t * hs, dqkv, base + 2 * C, hs);
            }
        });
    }

    /** Copies head h of batch b out of qkv [B,T,3C] into q, k, v [T,hs]. */
    private static void gatherHead(float[] qkv, int b, int h, int T, int C, int hs, float[] q, float[] k, float[] v) {
        for (int t = 0; t < T; t++) {
            int base = (b * T + t) * 3 * C + h * hs;
            System.arraycopy(qkv, base, q, t * hs, hs);
            System.arraycopy(qkv, base + C, k, t * hs, hs);
            System.arraycopy(qkv, base + 2 * C, v, t * hs, hs);
        }
    }

    /** sum_i a[ao+i] * b[bo+i], four independent accumulators. */
    static float dot(float[] a, int ao, float[] b, int bo, int len) {
        float s0 = 0;
        float s1 = 0;
        float s2 = 0;
        float s3 = 0;
        int i = 0;
        for (; i + 3 < len; i += 4) {
            s0 += a[ao + i] * b[bo + i];
            s1 += a[ao + i + 1] * b[bo + i + 1];
            s2 += a[ao + i + 2] * b[bo + i + 2];
            s3 += a[ao + i + 3] * b[bo + i + 3];
        }
        for (; i < len; i++) {
            s0 += a[ao + i] * b[bo + i];
        }
        return (s0 + s1) + (s2 + s3);
    }

    /** y[yo+i] += alpha * x[xo+i]. */
    static void axpy(float alpha, float[] x, int xo, float[] y, int yo, int len) {
        for (int i = 0; i < len; i++) {
            y[yo + i] += alpha * x[xo + i];
        }
    }

    // ---------------------------------------------------------------- cross-entropy

    /**
     * probs[n,:] = softmax(logits[n,:]); losses[n] = logsumexp(logits[n,:]) - logits[n, targets[n]]
     * (= -log probs[n, target], without underflow). logits, probs [N,V]; targets, losses [N]. A target of
     * {@link CrossEntropy#IGNORE} gives losses[n] = 0; its probs row is written all the same.
     *
     * @throws ShapeException if a target is outside [0,V) and not IGNORE (checked before any output is written)
     */
    static void crossEntropyForward(float[] logits, int[] targets, float[] probs, float[] losses, int N, int V) {
        checkTargets("crossEntropyForward", targets, N, V);
        forEach(N, (long) N * V, n -> {
            double lse = softmaxRow(logits, probs, n * V, V);
            losses[n] = targets[n] == CrossEntropy.IGNORE ? 0f : (float) (lse - logits[n * V + targets[n]]);
        });
    }

    /**
     * dlogits[n,:] = scale * (probs[n,:] - onehot(targets[n])) (written); probs, dlogits [N,V], targets [N]. Rows
     * whose target is {@link CrossEntropy#IGNORE} are written 0.
     *
     * @throws ShapeException if a target is outside [0,V) and not IGNORE
     */
    static void crossEntropyBackward(float[] probs, int[] targets, float scale, float[] dlogits, int N, int V) {
        checkTargets("crossEntropyBackward", targets, N, V);
        forEach(N, (long) N * V, n -> {
            int off = n * V;
            if (targets[n] == CrossEntropy.IGNORE) {
                Arrays.fill(dlogits, off, off + V, 0f);
                return;
            }
            for (int j = 0; j < V; j++) {
                dlogits[off + j] = scale * probs[off + j];
            }
            dlogits[off + targets[n]] = scale * (probs[off + targets[n]] - 1f);
        });
    }

    // ---------------------------------------------------------------- embeddings

    /**
     * out[b,t,:] = wte[ids[b,t],:] + wpe[t,:]. ids [B,T]; wte [V,C] (V = wte.length / C); wpe [Tmax>=T,C] or
     * null (no positions: out[b,t,:] = wte[ids[b,t],:]); out [B,T,C].
     *
     * @throws ShapeException if an id is outside [0,V)
     */
    static void embeddingForward(int[] ids, float[] wte, float[] wpe, float[] out, int B, int T, int C) {
        int N = B * T;
        checkIndices("embeddingForward", "ids", ids, N, wte.length / C);
        forEach(N, (long) N * C, n -> {
            int eo = ids[n] * C;
            int po = (n % T) * C;
            int oo = n * C;
            if (wpe == null) {
                System.arraycopy(wte, eo, out, oo, C);
                return;
            }
            for (int c = 0; c < C; c++) {
                out[oo + c] = wte[eo + c] + wpe[po + c];
            }
        });
    }

    /**
     * dwte[ids[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:] (repeated ids accumulate). dout [B,T,C];
     * dwte [V,C]; dwpe [Tmax>=T,C] or null (no positions). Each element accumulates its tokens in order (deterministic; O(B T C));
     * column ranges run in parallel for large inputs, which leaves every element's order unchanged.
     *
     * @throws ShapeException if an id is outside [0,V)
     */
    static void embeddingBackward(float[] dout, int[] ids, float[] dwte, float[] dwpe, int B, int T, int C) {
        int N = B * T;
        checkIndices("embeddingBackward", "ids", ids, N, dwte.length / C);
        CpuParallel.forRange(C, N, (c0, c1) -> {
            for (int n = 0; n < N; n++) {
                int eo = ids[n] * C;
                int po = (n % T) * C;
                int oo = n * C;
                for (int c = c0; c < c1; c++) {
                    dwte[eo + c] += dout[oo + c];
                }
                if (dwpe != null) {
                    for (int c = c0; c < c1; c++) {
                        dwpe[po + c] += dout[oo + c];
                    }
                }
            }
        });
    }

    // ---------------------------------------------------------------- helpers

    /** Throws ShapeException naming the op and the first index of idx[0,n) outside [0,bound). */
    private static void checkIndices(String op, String what, int[] idx, int n, int bound) {
        for (int i = 0; i < n; i++) {
            if (idx[i] < 0 || idx[i] >= bound) {
                throw new ShapeException(op + ": " + what + "[" + i + "] = " + idx[i] + " is outside [0," + bound + ")");
            }
        }
    }

    /** Cross-entropy targets: each in [0,bound) or {@link CrossEntropy#IGNORE}. */
    private static void checkTargets(String op, int[] targets, int n, int bound) {
        for (int i = 0; i < n; i++) {
            if (targets[i] != CrossEntropy.IGNORE && (targets[i] < 0 || targets[i] >= bound)) {
                throw new ShapeException(op + ": targets[" + i + "] = " + targets[i] + " is outside [0," + bound
                        + ") and is not the ignored target " + CrossEntropy.IGNORE);
            }
        }
    }

    /** body(i) for i in [0,n): in parallel when work > PARALLEL_WORK and more than one worker exists. */
    static void forEach(int n, long work, IntConsumer body) {
        int threads = CpuParallel.threads();
        if (n > 1 && work > PARALLEL_WORK && threads > 1) {
            // contiguous slices on the backend's own pool (the common pool has one worker on 2 cores)
            int slices = Math.min(n, 4 * threads);
            CpuParallel.forEachChunk(slices, c -> {
                int hi = (int) ((long) n * (c + 1) / slices);
                for (int i = (int) ((long) n * c / slices); i < hi; i++) {
                    body.accept(i);
                }
            });
        } else {
            for (int i = 0; i < n; i++) {
                body.accept(i);
            }
        }
    }

    /** A range body over [lo,hi). */
    @FunctionalInterface
    private interface RangeBody {
        void run(int lo, int hi);
    }

    /** body over contiguous chunks of [0,n) of PARALLEL_WORK / 4 elements, in parallel when n is large. */
    private static void forChunks(int n, RangeBody body) {
        int chunk = (int) (PARALLEL_WORK / 4);
        int chunks = (n + chunk - 1) / chunk;
        forEach(chunks, n, i -> body.run(i * chunk, Math.min(n, (i + 1) * chunk)));
    }

    // ---------------------------------------------------------------- Vector API path

    /**
     * Vector API kernels (preferred species: 16 lanes with AVX-512). Exponentials use {@link CpuMath#exp}
     * (within 1 ulp, bit-identical on every JIT tier; scalar tails use its scalar twin, so a value does not
     * depend on its lane position); GELU uses 0.5 x (1 + tanh u) = x sigmoid(2u), which has no cancellation for
     * u << 0.
     */
    static final class Simd {
        private static final VectorSpecies<Float> S = CpuMath.S;
        /** Elements summed in float lanes before the partial sum joins a double. */
        private static final int SUM_BLOCK = 512;
        private static final float K2 = (float) (2 * GELU_K);
        private static final float GC = (float) GELU_C;
        private static final float GC3 = (float) (3 * GELU_C);
        /** |x| beyond which GELU'(x) is 0 or 1 in float; clamping keeps x^2 and e^{-2u} finite. */
        private static final float GELU_CLAMP = 10f;

        private Simd() {
        }

        /** As {@link CpuTransformerOps#softmaxRow}: out = softmax(x) on [off, off+len); returns log-sum-exp. */
        static double softmaxRow(float[] x, float[] out, int off, int len) {
            int up = S.loopBound(len);
            FloatVector mv = FloatVector.broadcast(S, Float.NEGATIVE_INFINITY);
            int i = 0;
            for (; i < up; i += S.length()) {
                mv = mv.max(FloatVector.fromArray(S, x, off + i));   // lanewise max propagates NaN
            }
            float max = CpuMath.maxLanes(mv);
            for (; i < len; i++) {
                max = Math.max(max, x[off + i]);
            }
            double sum = 0;
            i = 0;
            while (i < up) {
                FloatVector acc = FloatVector.zero(S);
                for (int end = Math.min(up, i + SUM_BLOCK); i < end; i += S.length()) {
                    FloatVector e = CpuMath.exp(FloatVector.fromArray(S, x, off + i).sub(max));
                    e.intoArray(out, off + i);
                    acc = acc.add(e);
                }
                sum += CpuMath.sumLanes(acc);
            }
            for (; i < len; i++) {
                float e = CpuMath.exp(x[off + i] - max);
                out[off + i] = e;
                sum += e;
            }
            float inv = (float) (1.0 / sum);
            i = 0;
            for (; i < up; i += S.length()) {
                FloatVector.fromArray(S, out, off + i).mul(inv).intoArray(out, off + i);
            }
            for (; i < len; i++) {
                out[off + i] *= inv;
            }
            return Math.log(sum) + max;
        }

        /** out = x / (1 + e^{-2u}), u = sqrt(2/pi) (x + 0.044715 x^3), on [lo, hi). */
        static void geluForward(float[] x, float[] out, int lo, int hi) {
            int i = lo;
            for (int up = lo + S.loopBound(hi - lo); i < up; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i);
                FloatVector u2 = v.mul(v).fma(GC, 1f).mul(v).mul(K2);
                FloatVector e = CpuMath.exp(u2.neg());
                v.div(e.add(1f)).intoArray(out, i);
            }
            for (; i < hi; i++) {   // the scalar twin of the vector body
                float v = x[i];
                float u2 = Math.fma(v * v, GC, 1f) * v * K2;
                out[i] = v / (CpuMath.exp(-u2) + 1f);
            }
        }

        /**
         * dx = dout * (σ + x e σ^2 2K (1 + 3c x^2)) with u2 = 2u, e = e^{-u2}, σ = 1/(1+e) (so 1-σ = e σ); x is
         * clamped to ±10, where GELU' is already 1 or 0 in float.
         */
        static void geluBackward(float[] x, float[] dout, float[] dx, int lo, int hi) {
            int i = lo;
            for (int up = lo + S.loopBound(hi - lo); i < up; i += S.length()) {
                FloatVector v = FloatVector.fromArray(S, x, i).max(-GELU_CLAMP).min(GELU_CLAMP);
                FloatVector v2 = v.mul(v);
                FloatVector u2 = v2.fma(GC, 1f).mul(v).mul(K2);
                FloatVector e = CpuMath.exp(u2.neg());
                FloatVector sig = FloatVector.broadcast(S, 1f).div(e.add(1f));
                FloatVector du2 = v2.fma(GC3, 1f).mul(K2);
                FloatVector g = e.mul(sig).mul(sig).mul(v).fma(du2, sig);   // (e σ) = 1-σ <= 1 first: no overflow
                g.mul(FloatVector.fromArray(S, dout, i)).intoArray(dx, i);
            }
            for (; i < hi; i++) {   // the scalar twin of the vector body (Math.max/min propagate NaN)
                float v = Math.min(Math.max(x[i], -GELU_CLAMP), GELU_CLAMP);
                float v2 = v * v;
                float u2 = Math.fma(v2, GC, 1f) * v * K2;
                float e = CpuMath.exp(-u2);
                float sig = 1f / (e + 1f);
                float du2 = Math.fma(v2, GC3, 1f) * K2;
                float g = Math.fma(e * sig * sig * v, du2, sig);
                dx[i] = g * dout[i];
            }
        }
    }
}
