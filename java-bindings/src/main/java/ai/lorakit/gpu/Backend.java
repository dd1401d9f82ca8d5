package ai.lorakit.gpu;

import java.util.List;

/**
 * The op set everything above the device layer uses (ARCHITECTURE.md, layer 2). All tensors are dense,
 * row-major and contiguous; "matrix" views use {@link Tensor#rows()} x {@link Tensor#cols()}. Math is fp32.
 *
 * <p>Conventions (llm.c's): an op writes ({@code =}) its activation outputs and accumulates ({@code +=})
 * into parameter gradients only where the Javadoc says so. Every op validates shapes, dtypes, owners and
 * open state before doing any work and throws {@link ShapeException} naming the op and the tensors.
 *
 * <p>Primitive ops are abstract. LoRA-family ops that are compositions of primitives have default
 * implementations here: they are the reference, and a device backend overrides them with fused kernels.
 * Shapes use B, T, C (channels), N (tokens = B*T), in/out (linear layer sizes), r (rank), V (vocab).
 */
public interface Backend extends AutoCloseable {

    /** Registry name, e.g. {@code cpu}, {@code opencl}, {@code cuda-ffm}. */
    String name();

    // ---------------------------------------------------------------- memory

    /** A new tensor of zeros. */
    Tensor zeros(DType dtype, int... shape);

    /** A new tensor holding {@code data} (row-major), rounded to {@code dtype}. {@code data.length} must equal numel. */
    Tensor upload(float[] data, DType dtype, int... shape);

    /** A new F32 tensor holding {@code data}. */
    default Tensor upload(float[] data, int... shape) {
        return upload(data, DType.F32, shape);
    }

    /** A new I32 tensor (token ids, targets). */
    Tensor uploadInts(int[] data, int... shape);

    /**
     * I32 dst = data (row-major), written into the existing tensor: no allocation, so a training step can feed its
     * token ids into the same buffer every step. {@code data.length} must equal dst's numel.
     */
    void write(Tensor dst, int[] data);

    /**
     * Float dst = data (row-major) rounded to dst's dtype (F32, BF16, F16), written into the existing tensor: no
     * allocation. {@code data.length} must equal dst's numel; an I32 dst takes {@link #write(Tensor, int[])}.
     */
    void write(Tensor dst, float[] data);

    /** The tensor's values as fp32, row-major (I32 values converted exactly up to 2^24). */
    float[] download(Tensor t);

    /** The values of an I32 tensor. */
    int[] downloadInts(Tensor t);

    /** dst = src, element by element; same numel, any shapes; values rounded to dst's dtype. */
    void copy(Tensor src, Tensor dst);

    /**
     * A strided 2-D copy with rounding to dst's dtype: for i &lt; rows, j &lt; cols,
     * <pre>dst[dstOff + i*dstLd + j] = src[srcOff + i*srcRowStride + j*srcColStride]</pre>
     * (element offsets and strides into the flat tensors). A transpose is srcRowStride = 1, srcColStride = the
     * source's row length; a pitched pack of x [N,in] into columns [c0, c0+in) of Xm [N,in+r] is
     * {@code copyStrided(x, 0, in, 1, xm, c0, in + r, N, in)}. Writes nothing else of dst.
     *
     * <p>src and dst are F32, BF16 or F16 (any pair). Offsets and strides are &gt;= 0, dstLd &gt;= cols when
     * rows &gt; 1, and the last element read (written) lies inside src (dst); else {@link ShapeException} naming
     * the op, the tensor and the range, before anything is written. rows or cols == 0 is a no-op. src and dst
     * should not share storage unless they are the same elements; where they do, the copy reads src as it was
     * before the call (a backend stages a copy of src for that call).
     */
    void copyStrided(Tensor src, long srcOff, int srcRowStride, int srcColStride,
                     Tensor dst, long dstOff, int dstLd, int rows, int cols);

    /** Every element of t = value (rounded to t's dtype). */
    void fill(Tensor t, float value);

    /** Called by {@link Tensor#close()} only. */
    void release(Tensor t);

    /**
     * A work tensor for a default composition below (contents undefined until written), handed back with {@link
     * #returnWork} when the composition is done: from the backend's {@link #workPool} when it keeps one (so that a
     * composition run every training step allocates nothing after its first call), else a new tensor.
     */
    default Tensor borrowWork(DType dtype, int... shape) {
        WorkPool pool = workPool();
        return pool != null ? pool.borrow(this, dtype, shape) : zeros(dtype, shape);
    }

    /** Gives back a tensor from {@link #borrowWork} (kept by the pool, else closed); the caller is done with it. */
    default void returnWork(Tensor t) {
        WorkPool pool = workPool();
        if (pool != null) {
            pool.giveBack(t);
        } else {
            t.close();
        }
    }

    /** The pool of returned work tensors, or null (every borrow allocates). */
    default WorkPool workPool() {
        return null;
    }

    /** Blocks until all queued work is done (no-op on synchronous backends). */
    default void synchronize() {
    }

    /** Releases everything the backend holds; tensors still open become unusable. */
    @Override
    void close();

    // ---------------------------------------------------------------- GEMM

    /**
     * Strided batched GEMM (cuBLAS semantics on row-major storage), for i in [0, batch):
     * <pre>C_i[m,n] = alpha * op(A_i)[m,k] * op(B_i)[k,n] + beta * C_i[m,n]</pre>
     * op(A) = A stored [m,k] (row pitch lda) or, with transA, A stored [k,m]; likewise B ([k,n] or [n,k]).
     * A_i starts at element {@code offA + i*strideA} of {@code a}; C rows have pitch ldc. With beta == 0, C's
     * old contents are ignored (NaN in C does not propagate), as in BLAS.
     */
    void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                     Tensor a, long offA, int lda, long strideA,
                     Tensor b, long offB, int ldb, long strideB,
                     float beta, Tensor c, long offC, int ldc, long strideC);

    /** One strided GEMM; see {@link #gemmBatched}. */
    default void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
                      Tensor a, long offA, int lda, Tensor b, long offB, int ldb,
                      float beta, Tensor c, long offC, int ldc) {
        gemmBatched(1, transA, transB, m, n, k, alpha, a, offA, lda, 0, b, offB, ldb, 0, beta, c, offC, ldc, 0);
    }

    /**
     * C = alpha * op(A) * op(B) + beta * C on whole tensors seen as matrices (rows() x cols()).
     * For example {@code matmul(x, false, w, true, y, 1, 0)} is y[N,out] = x[N,in] * w[out,in]^T.
     */
    default void matmul(Tensor a, boolean transA, Tensor b, boolean transB, Tensor c, float alpha, float beta) {
        int m = transA ? a.cols() : a.rows();
        int k = transA ? a.rows() : a.cols();
        int kb = transB ? b.cols() : b.rows();
        int n = transB ? b.rows() : b.cols();
        if (k != kb || c.rows() != m || c.cols() != n) {
            throw new ShapeException("matmul: op(" + a + ")" + (transA ? "^T" : "") + " x op(" + b + ")"
                    + (transB ? "^T" : "") + " -> " + c + ": inner dims " + k + " vs " + kb
                    + ", output must be [" + m + "," + n + "]");
        }
        gemm(transA, transB, m, n, k, alpha, a, 0, a.cols(), b, 0, b.cols(), beta, c, 0, c.cols());
    }

    // ---------------------------------------------------------------- elementwise (same numel unless said)

    /** out = a + b. */
    void add(Tensor a, Tensor b, Tensor out);

    /** out = a * b (Hadamard). */
    void mul(Tensor a, Tensor b, Tensor out);

    /** out = a / b, IEEE: x / ±0 = ±Inf (x != 0), 0 / 0 = NaN. */
    void divide(Tensor a, Tensor b, Tensor out);

    /** out = sqrt(x), IEEE: sqrt(x < 0) = NaN, sqrt(-0) = -0. */
    void sqrt(Tensor x, Tensor out);

    /** out = 1 / x, IEEE: 1 / ±0 = ±Inf. */
    void reciprocal(Tensor x, Tensor out);

    /** out = alpha * x. */
    void scale(Tensor x, float alpha, Tensor out);

    /** y = alpha * x + beta * y (in place on y). */
    void axpby(float alpha, Tensor x, float beta, Tensor y);

    /** out[n,c] = a[n,c] + v[c]; a, out [N,C], v [C]. */
    void addRowVector(Tensor a, Tensor v, Tensor out);

    /** out[n,c] = a[n,c] * v[c]; a, out [N,C], v [C] (scales columns). */
    void mulRowVector(Tensor a, Tensor v, Tensor out);

    /** out[n,c] = a[n,c] * v[n]; a, out [N,C], v [N] (scales rows). */
    void mulColVector(Tensor a, Tensor v, Tensor out);

    /** out[c,r] = a[r,c]; a [R,C], out [C,R]. */
    void transpose(Tensor a, Tensor out);

    /**
     * Inverted-dropout mask: mask[i] = 0 with probability p, else 1/(1-p). Deterministic in (seed, i) on every
     * backend (counter-based hash {@link Dropout#keep}), so all backends draw the same mask.
     */
    void dropoutMask(Tensor mask, float p, long seed);

    // ---------------------------------------------------------------- reductions

    /** out[c] = beta * out[c] + sum_n a[n,c]; a [N,C], out [C] (bias / lambda gradients). */
    void sumRows(Tensor a, float beta, Tensor out);

    /** out[n] = sum_c a[n,c] * b[n,c]; a, b [N,C], out [N]. With a == b: squared row norms. */
    void rowDot(Tensor a, Tensor b, Tensor out);

    /** sum of all elements, accumulated in double. */
    double sum(Tensor a);

    /** sum_i a[i] * b[i], accumulated in double. */
    double dot(Tensor a, Tensor b);

    /** Number of NaN or infinite elements. */
    long countNonFinite(Tensor a);

    /**
     * Slot {@code at} of out = sum_i a[i], as a float-float pair ({@link DeviceSums}: out[2·at], out[2·at+1]); out
     * F32 of at least 2·at + 2 elements. No host transfer: a training step keeps its loss sums on the device.
     */
    void sumTo(Tensor a, Tensor out, int at);

    /**
     * Slot {@code at} of out = Σ_t Σ_i x_t[i]² over every tensor of xs (the squared global gradient norm), as a
     * float-float pair ({@link DeviceSums}); 0 for an empty list. No host transfer.
     */
    void sumSquaresTo(List<Tensor> xs, Tensor out, int at);

    // ---------------------------------------------------------------- transformer ops (GPT-2)

    /**
     * LayerNorm over the last dim: out = (x - mean) * rstd * gamma + beta; x, out [N,C]; gamma, beta [C];
     * mean, rstd [N] are written for the backward.
     */
    void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean, Tensor rstd);

    /** dx = dLayerNorm (written); dgamma, dbeta accumulated (+=). Shapes as the forward. */
    void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dgamma, Tensor dbeta);

    /** out = GELU(x), tanh approximation (GPT-2). */
    void geluForward(Tensor x, Tensor out);

    /** dx = dout * GELU'(x) (written). */
    void geluBackward(Tensor x, Tensor dout, Tensor dx);

    /**
     * Causal multi-head self-attention, GPT-2 layout: qkv [B,T,3C] (q | k | v, heads of size C/nHead),
     * out [B,T,C]; att [B,nHead,T,T] receives the softmax probabilities (zero above the diagonal).
     */
    void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att);

    /** dqkv = d(attention)/d(qkv) (written) from dout [B,T,C] and the forward's qkv and att. */
    void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv);

    /**
     * Softmax cross-entropy: probs[n,:] = softmax(logits[n,:]), losses[n] = -log probs[n, targets[n]];
     * logits, probs [N,V] F32, targets [N] I32, losses [N]. A target of {@link CrossEntropy#IGNORE} (-100) gives
     * losses[n] = 0 (probs still written); any other target outside [0,V) throws.
     */
    void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses);

    /**
     * dlogits = scale * (probs - onehot(targets)) (written); rows whose target is {@link CrossEntropy#IGNORE} are 0.
     * scale is typically 1/(number of {@link CrossEntropy#counted counted} targets).
     */
    void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits);

    /**
     * out[n,:] = wte[ids[n],:] + wpe[n % T,:]; ids [B,T] I32, wte [V,C], wpe [Tmax,C], out [B,T,C]. wpe may be
     * null (no learned positions, e.g. Llama with RoPE): then out[n,:] = wte[ids[n],:].
     */
    void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out);

    /** dwte[ids[n],:] += dout[n,:]; dwpe[n % T,:] += dout[n,:] (both accumulated); dwpe may be null (no positions). */
    void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe);

    // ---------------------------------------------------------------- transformer ops (Llama family)

    /**
     * RMSNorm: out = x * rstd * gamma, rstd[n] = 1/sqrt(mean_c x[n,c]^2 + eps); x,out [N,C], gamma [C], rstd [N]
     * written.
     */
    void rmsNormForward(Tensor x, Tensor gamma, float eps, Tensor out, Tensor rstd);

    /** dx written, dgamma accumulated (+=). */
    void rmsNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor rstd, Tensor dx, Tensor dgamma);

    /**
     * Rotary embedding, HF rotate_half layout per head of size D: for i < D/2, with c = cos[t,i], s = sin[t,i]:
     * out[..,i] = x[..,i]*c - x[..,i+D/2]*s; out[..,i+D/2] = x[..,i+D/2]*c + x[..,i]*s; x,out [B,T,nHead*D],
     * t = position within the window; cos,sin [T,D/2] ({@link RopeTables} computes them; a table with more rows
     * is read from its first T). out may be x (in place).
     */
    void ropeForward(Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out);

    /** dx = R^T dout (written; dx may be dout). */
    void ropeBackward(Tensor dout, int nHead, Tensor cos, Tensor sin, Tensor dx);

    /** out = silu(gate) * up; gate, up, out [N,F]. */
    void swigluForward(Tensor gate, Tensor up, Tensor out);

    /** dgate, dup written. */
    void swigluBackward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup);

    /**
     * Causal grouped-query attention: q [B,T,nHead*D], k,v [B,T,nKvHead*D], nHead % nKvHead == 0, query head h
     * reads kv head h/(nHead/nKvHead) (HF repeat_kv); scale 1/sqrt(D); out [B,T,nHead*D]; att [B,nHead,T,T]
     * softmax probs (zero above the diagonal). MHA: nKvHead == nHead; MQA: nKvHead == 1.
     */
    void gqaAttentionForward(Tensor q, Tensor k, Tensor v, int nHead, int nKvHead, Tensor out, Tensor att);

    /** dq, dk, dv written (dk, dv sum over the query heads of their group). No float atomics in kernels. */
    void gqaAttentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor att, int nHead, int nKvHead,
                              Tensor dq, Tensor dk, Tensor dv);

    // ---------------------------------------------------------------- optimizer

    /** One AdamW step on param in place ({@link AdamW} gives the formula); m, v are its moment buffers. */
    void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp);

    /**
     * One AdamW step on every tensor i (params[i], grads[i], ms[i], vs[i], hps[i]), clipped and guarded by the
     * global gradient norm that {@link #sumSquaresTo} left in slot {@code normAt} of {@code stats}, with no host
     * transfer on a device backend: norm = sqrt(slot); if the norm or any slot before it (a training step keeps
     * its loss sums there) is NaN or infinite, NOTHING changes (no parameter, moment or gradient); else with coef = {@link DeviceSums#clipCoefficient}(norm, maxNorm), when
     * coef < 1 every gradient is scaled in place, g ← coef·g (torch's clip_grad_norm_, so later readers of the
     * gradients see the clipped values), then updated as {@link #adamw}. The grads must be distinct tensors.
     * This default reads the norm to the host and loops {@link #scale} and {@link #adamw} (the reference); device
     * backends override it.
     */
    default void adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms,
                              List<Tensor> vs, List<AdamW> hps, Tensor stats, int normAt,
                              float maxNorm) {
        OpChecks.adamwLists("adamwClipped", params, grads, ms, vs, hps, stats, normAt);
        float[] r = download(stats);
        for (int k = 0; k <= normAt; k++) {
            if (!Double.isFinite(DeviceSums.at(r, k))) {
                return;
            }
        }
        double norm = Math.sqrt(DeviceSums.at(r, normAt));
        double coef = DeviceSums.clipCoefficient(norm, maxNorm);
        if (coef < 1.0) {
            for (Tensor g : grads) {
                scale(g, (float) coef, g);
            }
        }
        for (int i = 0; i < params.size(); i++) {
            adamw(params.get(i), grads.get(i), ms.get(i), vs.get(i), hps.get(i));
        }
    }

    // ---------------------------------------------------------------- LoRA family (defaults = reference)

    /** LoRA shrink: u[N,r] = x[N,in] * A[r,in]^T. */
    default void loraShrink(Tensor x, Tensor a, Tensor u) {
        matmul(x, false, a, true, u, 1f, 0f);
    }

    /** LoRA expand: y[N,out] += s * u[N,r] * B[out,r]^T. */
    default void loraExpand(Tensor u, Tensor b, float s, Tensor y) {
        matmul(u, false, b, true, y, s, 1f);
    }

    /**
     * The adapted linear layer's forward, y = x op(W) + bias + s (x A^T) B^T, with u = x A^T kept for the
     * backward. W is [out,in] (y = x W^T), or [in,out] when {@code fanInFanOut} (GPT-2 Conv1D: y = x W);
     * bias [out] or null. x [N,in], A [r,in], B [out,r], u [N,r], y [N,out]. The sum is accumulated in fp32 and
     * rounded once to y's dtype (a BF16 y does not round the base output before the low-rank update is added).
     */
    default void loraLinearForward(Tensor x, Tensor w, boolean fanInFanOut, Tensor bias,
                                   Tensor a, Tensor b, float s, Tensor u, Tensor y) {
        if (y.dtype() != DType.F32) {
            try (Tensor y32 = zeros(DType.F32, y.shape())) {
                loraLinearForward(x, w, fanInFanOut, bias, a, b, s, u, y32);
                copy(y32, y);
            }
            return;
        }
        matmul(x, false, w, !fanInFanOut, y, 1f, 0f);
        if (bias != null) {
            addRowVector(y, bias, y);
        }
        loraShrink(x, a, u);
        loraExpand(u, b, s, y);
    }

    /**
     * DoRA's weight norm per output unit, without materialising B A (PERFORMANCE.md):
     * n[o]^2 = ||W_o||^2 + 2s (W A^T ∘ B)[o,:] . 1 + s^2 ((B (A A^T)) ∘ B)[o,:] . 1, where W_o is output o's
     * weight row (a column of W when {@code fanInFanOut}). W [out,in] or [in,out], A [r,in], B [out,r], n [out].
     * No host transfer: the clamp and the square root run as device ops.
     */
    default void doraWeightNorm(Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s, Tensor n) {
        int out = b.rows();
        int r = a.rows();
        Tensor wat = borrowWork(DType.F32, out, r);
        Tensor aat = borrowWork(DType.F32, r, r);
        Tensor baat = borrowWork(DType.F32, out, r);
        Tensor t = borrowWork(DType.F32, out);
        try {
            // ||W_o||^2
            if (fanInFanOut) {
                Tensor wt = borrowWork(DType.F32, w.cols(), w.rows());
                try {
                    transpose(w, wt);
                    rowDot(wt, wt, n);
                    matmul(wt, false, a, true, wat, 1f, 0f);      // [out,in] x [in,r]
                } finally {
                    returnWork(wt);
                }
            } else {
                rowDot(w, w, n);
                matmul(w, false, a, true, wat, 1f, 0f);           // W A^T: [out,r]
            }
            rowDot(wat, b, t);
            axpby(2f * s, t, 1f, n);
            matmul(a, false, a, true, aat, 1f, 0f);               // A A^T: [r,r]
            matmul(b, false, aat, false, baat, 1f, 0f);           // B (A A^T): [out,r]
            rowDot(baat, b, t);
            axpby(s * s, t, 1f, n);
            // n = sqrt(max(0, n^2)) on the device: cancellation can leave a zero norm's n^2 slightly negative
            maskWhereAtMost(n, n, 0f);
            sqrt(n, n);
        } finally {
            returnWork(wat);
            returnWork(aat);
            returnWork(baat);
            returnWork(t);
        }
    }

    /**
     * DoRA's rescale per output unit: y = k ∘ z + bias, computed in fp32 and rounded once into y. z [N,out] is the
     * combined output x op(W) + s (x A^T) B^T, k = m / n [out], bias [out] or null; y may be z.
     */
    default void doraScale(Tensor z, Tensor k, Tensor bias, Tensor y) {
        if (bias == null) {
            mulRowVector(z, k, y);
            return;
        }
        Tensor t = borrowWork(DType.F32, z.shape());
        try {
            mulRowVector(z, k, t);
            addRowVector(t, bias, y);
        } finally {
            returnWork(t);
        }
    }

    /**
     * DoRA's rescale backward with the norm detached (paper section 4.3): dz = k ∘ dy (written; may be dy) and, unless
     * dm is null (a frozen magnitude), dm [out] += Σ_rows dy ∘ z / n. dy, z, dz [N,out]; k, n [out].
     */
    default void doraScaleBackward(Tensor dy, Tensor z, Tensor k, Tensor n, Tensor dz, Tensor dm) {
        if (dm != null) {
            Tensor t = borrowWork(DType.F32, dy.shape());
            Tensor col = borrowWork(DType.F32, k.shape());
            try {
                mul(dy, z, t);
                sumRows(t, 0f, col);                                     // Σ_rows dy ∘ z
                divide(col, n, col);
                axpby(1f, col, 1f, dm);
            } finally {
                returnWork(t);
                returnWork(col);
            }
        }
        mulRowVector(dy, k, dz);
    }

    /**
     * VeRA's scaled projections: y[N,out] += λb ∘ ((λd ∘ (x A_l^T)) B_l^T), with A_l = the first {@code in}
     * columns of the shared A [r,in_max] and B_l = the first {@code out} rows of the shared B [out_max,r].
     * u [N,r] receives x A_l^T and v [N,r] receives λd ∘ u, both kept for the backward.
     */
    default void veraForward(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB,
                             Tensor u, Tensor v, Tensor y) {
        int n = x.rows();
        int in = x.cols();
        int r = sharedA.rows();
        int out = y.cols();
        gemm(false, true, n, r, in, 1f, x, 0, in, sharedA, 0, sharedA.cols(), 0f, u, 0, r);
        mulRowVector(u, lambdaD, v);
        Tensor z = borrowWork(DType.F32, n, out);
        try {
            gemm(false, true, n, out, r, 1f, v, 0, r, sharedB, 0, r, 0f, z, 0, out);
            mulRowVector(z, lambdaB, z);
            axpby(1f, z, 1f, y);
        } finally {
            returnWork(z);
        }
    }

    /**
     * Delta-LoRA's in-place update W += c (B' A' - B A) (c = λ s), with W [out,in], or [in,out] when
     * {@code fanInFanOut} (then W += c (B' A' - B A)^T). A', A [r,in]; B', B [out,r].
     */
    default void deltaLoraUpdate(Tensor w, boolean fanInFanOut, float c,
                                 Tensor bNew, Tensor aNew, Tensor bOld, Tensor aOld) {
        if (fanInFanOut) {
            matmul(aNew, true, bNew, true, w, c, 1f);   // (B'A')^T = A'^T B'^T: [in,out]
            matmul(aOld, true, bOld, true, w, -c, 1f);
        } else {
            matmul(bNew, false, aNew, false, w, c, 1f);
            matmul(bOld, false, aOld, false, w, -c, 1f);
        }
    }

    // ---------------------------------------------------------------- staged LoRA family (the layer-owned bf16 copies)
    //
    // A training step reads the adapter many times between two optimizer steps, so an adapted layer keeps bf16
    // copies of what the kernels read ("stages", refreshed once after each optimizer step) and passes them with the
    // fp32 masters: the margin buffers of LoraMargins (the base GEMM, the low-rank update and the bias as one GEMM),
    // for LoRA, DoRA's LoRA branch, AdaLoRA (A∘E) and VeRA (A_l, λb ∘ B_l ∘ λd). An accelerated backend replaces the
    // steps around the GEMMs with fused kernels; the two agree to the bf16 tolerance.

    /**
     * Stages a LoRA adapter: aStage [r,in] = A and sbStage [out,r] = s B rounded to the stages' dtype, then Wm's
     * margins from them ({@link LoraMargins#stage}), and Wm's base block from W and the bias when {@code w} is not
     * null (W and the bias are frozen: the layer passes W on the first staging and after W changed, e.g.
     * Delta-LoRA). A [r,in], B [out,r] fp32, bias [out] (null unless g.bias()), Wm [g.wmRows(), g.ldw()].
     */
    default void loraStage(Tensor a, Tensor b, float s, LoraMargins g, Tensor w, Tensor bias, Tensor aStage,
                           Tensor sbStage, Tensor wm) {
        copy(a, aStage);
        Tensor sb = borrowWork(DType.F32, b.shape());
        try {
            scale(b, s, sb);
            copy(sb, sbStage);
        } finally {
            returnWork(sb);
        }
        g.stage(this, w, bias, aStage, sbStage, wm);
    }

    /**
     * The staged LoRA forward, {@link #loraLinearForward} in the margin layout of {@link LoraMargins} with Wm staged
     * by {@link #loraStage} since A, B and W last changed (and, with a bias, Xm's ones column written): Xm = [x | S]
     * with S = x A^T rounded to Xm's dtype, then y = Xm Wm (+ the bias), ONE GEMM accumulated in fp32 and rounded
     * once into y. x [N,in], Xm [N, g.ldx()] (kept for the backward), y [N,out].
     */
    default void loraLinearForwardStaged(Tensor x, Tensor a, LoraMargins g, Tensor aStage, Tensor wm, Tensor xm,
                                         Tensor y) {
        int n = x.rows();
        copyStrided(x, 0, g.in(), 1, xm, 0, g.ldx(), n, g.in());       // Xm[:, 0:in] = x
        Tensor u = borrowWork(DType.F32, n, g.r());
        try {
            matmul(x, false, a, true, u, 1f, 0f);                        // x A^T: [N,r]
            copyStrided(u, 0, g.r(), 1, xm, g.in(), g.ldx(), n, g.r());  // Xm[:, in:in+r] = S
        } finally {
            returnWork(u);
        }
        g.forwardGemm(this, n, xm, wm, y);
    }

    /**
     * The staged LoRA backward without dropout, from the forward's Xm: dYm = [dY | dS] with dS = s dY B, then
     * dx = dYm Wm (ONE GEMM over out + r, written), dB += s dY^T S and dA += dS^T x, S and x read from Xm.
     * dy [N,out], dYm [N, g.ldy()] (scratch), dx [N,in]; dA [r,in] or dB [out,r] null = frozen (skipped).
     */
    default void loraLinearBackward(Tensor dy, Tensor b, float s, LoraMargins g, Tensor sbStage, Tensor wm,
                                    Tensor xm, Tensor dym, Tensor dx, Tensor dA, Tensor dB) {
        int n = dy.rows();
        copyStrided(dy, 0, g.out(), 1, dym, 0, g.ldy(), n, g.out());   // dYm[:, 0:out] = dY
        Tensor ds = borrowWork(DType.F32, n, g.r());
        try {
            matmul(dy, false, b, false, ds, s, 0f);                      // dS = s dY B: [N,r]
            copyStrided(ds, 0, g.r(), 1, dym, g.out(), g.ldy(), n, g.r());
        } finally {
            returnWork(ds);
        }
        if (dB != null) {
            g.adapterBGradGemm(this, n, dy, s, xm, dB);
        }
        g.inputGradGemm(this, n, dym, wm, dx);
        if (dA != null) {
            g.adapterAGradGemm(this, n, dym, xm, dA);
        }
    }

    /**
     * Delta-LoRA's update of a low-precision W through its fp32 master (ARCHITECTURE.md "Precision"):
     * master += c (B' A' - B A) (transposed when {@code fanInFanOut}, as {@link #deltaLoraUpdate}), then W = master
     * rounded to W's dtype. master F32 shaped like W.
     */
    default void deltaLoraUpdateMaster(Tensor w, Tensor master, boolean fanInFanOut, float c,
                                       Tensor bNew, Tensor aNew, Tensor bOld, Tensor aOld) {
        deltaLoraUpdate(master, fanInFanOut, c, bNew, aNew, bOld, aOld);
        copy(master, w);
    }

    /**
     * AdaLoRA's sensitivity smoothing for one parameter, elementwise: I = |p ∘ g|,
     * Ī ← β1 Ī + (1-β1) I, Ū ← β2 Ū + (1-β2) |I - Ī| (with the updated Ī), as PEFT's RankAllocator.
     */
    void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1, float beta2);

    /** target[i] = 0 where scores[i] <= threshold (AdaLoRA's masking of Λ); same numel. */
    void maskWhereAtMost(Tensor target, Tensor scores, float threshold);

    /**
     * LoRA-drop importance of one adapter over a batch: sum_n ||s B u_n||^2 = s^2 sum_n u_n^T (B^T B) u_n,
     * with u = x A^T [N,r] and B [out,r]; never materialises the N x out output.
     */
    default double loraImportance(Tensor u, Tensor b, float s) {
        int r = u.cols();
        Tensor btb = borrowWork(DType.F32, r, r);
        Tensor ug = borrowWork(DType.F32, u.rows(), r);
        try {
            matmul(b, true, b, false, btb, 1f, 0f);   // B^T B: [r,r]
            matmul(u, false, btb, false, ug, 1f, 0f);
            return (double) s * s * dot(ug, u);
        } finally {
            returnWork(btb);
            returnWork(ug);
        }
    }
}
