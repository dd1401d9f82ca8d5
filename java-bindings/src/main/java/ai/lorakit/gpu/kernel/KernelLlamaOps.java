package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

/**
 * The Llama-family transformer ops of KernelBackend on the portable kernels rmsnorm.kc, rope.kc, swiglu.kc and
 * gqa_attention.kc (their header comments give the maths, shapes and launch geometry; the CPU reference is
 * {@code CpuLlamaOps}). Every call is validated exactly as CpuBackend validates it ({@link OpChecks}, same
 * messages) before any launch.
 *
 * <p>No float atomics (OpenCL 1.2 has none): RMSNorm's dgamma is reduced per block of 64 rows into the backend's
 * scratch buffer, then over the blocks in order; GQA's backward runs one group per query row (dq) and then one
 * per key column of each kv head (dk, dv), which loops over the query heads of its group.
 */
final class KernelLlamaOps {
    /** Threads per group of every kernel here (RMS_BLOCK, ROPE_BLOCK, SWIGLU_BLOCK, GQA_BLOCK). */
    static final int BLOCK = 256;
    /** rmsnorm_bwd_partial_kernel1: 32 x 8 threads, RMS_ROW_BLOCK rows per partial sum. */
    static final int RMS_COLS_X = 32;
    static final int RMS_ROWS_Y = 8;
    static final int RMS_ROW_BLOCK = 64;

    private final KernelBackend be;

    KernelLlamaOps(KernelBackend be) {
        this.be = be;
    }

    private static int code(Tensor t) {
        return KernelBackend.code(t);
    }

    private static Dim3 strided(long n) {
        return Dim3.of(KernelBackend.strideGroups(n, BLOCK));
    }

    // ---------------------------------------------------------------- RMSNorm

    void rmsNormForward(Tensor x, Tensor gamma, float eps, Tensor out, Tensor rstd) {
        String op = "rmsNormForward";
        DeviceBuffer xb = be.math(op, x), gb = be.math(op, gamma), ob = be.math(op, out), rb = be.math(op, rstd);
        OpChecks.rmsNormShapes(op, x, rstd, new Tensor[]{out}, gamma);
        int rows = x.rows(), cols = x.cols();
        if (rows == 0) {
            return;
        }
        be.launch("rmsnorm_fwd_kernel1", Dim3.of(rows), Dim3.of(BLOCK), xb, code(x), gb, code(gamma), ob, code(out),
                rb, code(rstd), cols, eps);
    }

    void rmsNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor rstd, Tensor dx, Tensor dgamma) {
        String op = "rmsNormBackward";
        DeviceBuffer db = be.math(op, dout), xb = be.math(op, x), gb = be.math(op, gamma), rb = be.math(op, rstd),
                dxb = be.math(op, dx), dgb = be.math(op, dgamma);
        OpChecks.rmsNormShapes(op, x, rstd, new Tensor[]{dout, dx}, gamma, dgamma);
        int rows = x.rows(), cols = x.cols();
        if (rows == 0 || cols == 0) {
            return;
        }
        // dgamma first: it reads dout, which dx may alias.
        int blocks = KernelBackend.ceilDiv(rows, RMS_ROW_BLOCK);
        DeviceBuffer partial = be.scratch(4L * blocks * cols);   // [blocks, C] fp32
        be.launch("rmsnorm_bwd_partial_kernel1", Dim3.of(blocks, KernelBackend.ceilDiv(cols, RMS_COLS_X)),
                Dim3.of(RMS_COLS_X, RMS_ROWS_Y), db, code(dout), xb, code(x), rb, code(rstd), partial, rows, cols);
        be.launch("rmsnorm_bwd_params_kernel1", Dim3.of(KernelBackend.ceilDiv(cols, BLOCK)), Dim3.of(BLOCK),
                partial, dgb, code(dgamma), blocks, cols);
        be.launch("rmsnorm_bwd_kernel1", Dim3.of(rows), Dim3.of(BLOCK), db, code(dout), xb, code(x), gb,
                code(gamma), rb, code(rstd), dxb, code(dx), cols);
    }

    // ---------------------------------------------------------------- RoPE

    void ropeForward(Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out) {
        rope("ropeForward", "rope_fwd_kernel1", x, nHead, cos, sin, out);
    }

    void ropeBackward(Tensor dout, int nHead, Tensor cos, Tensor sin, Tensor dx) {
        rope("ropeBackward", "rope_bwd_kernel1", dout, nHead, cos, sin, dx);
    }

    private void rope(String op, String kernel, Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out) {
        DeviceBuffer xb = be.math(op, x), cb = be.math(op, cos), sb = be.math(op, sin), ob = be.math(op, out);
        int[] d = OpChecks.ropeDims(op, x, nHead, cos, sin, out);
        long pairs = x.numel() / 2;
        if (pairs == 0) {
            return;
        }
        be.launch(kernel, strided(pairs), Dim3.of(BLOCK), xb, code(x), cb, code(cos), sb, code(sin), ob, code(out),
                pairs, d[1], nHead, d[2] / 2);
    }

    // ---------------------------------------------------------------- SwiGLU

    void swigluForward(Tensor gate, Tensor up, Tensor out) {
        String op = "swigluForward";
        DeviceBuffer gb = be.math(op, gate), ub = be.math(op, up), ob = be.math(op, out);
        OpChecks.sameNumel(op, gate, up);
        OpChecks.sameNumel(op, gate, out);
        long n = gate.numel();
        if (n > 0) {
            be.launch("swiglu_fwd_kernel1", strided(n), Dim3.of(BLOCK), gb, code(gate), ub, code(up), ob, code(out), n);
        }
    }

    void swigluBackward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        String op = "swigluBackward";
        DeviceBuffer db = be.math(op, dout), gb = be.math(op, gate), ub = be.math(op, up), dgb = be.math(op, dgate),
                dub = be.math(op, dup);
        for (Tensor t : new Tensor[] {gate, up, dgate, dup}) {
            OpChecks.sameNumel(op, dout, t);
        }
        long n = dout.numel();
        if (n > 0) {
            be.launch("swiglu_bwd_kernel1", strided(n), Dim3.of(BLOCK), db, code(dout), gb, code(gate), ub, code(up),
                    dgb, code(dgate), dub, code(dup), n);
        }
    }

    // ---------------------------------------------------------------- causal grouped-query attention

    /** 1/sqrt(D) rounded to float as CpuLlamaOps rounds it. */
    private static float scale(int d) {
        return (float) (1.0 / Math.sqrt(d));
    }

    void gqaAttentionForward(Tensor q, Tensor k, Tensor v, int nHead, int nKvHead, Tensor out, Tensor att) {
        String op = "gqaAttentionForward";
        DeviceBuffer qb = be.math(op, q), kb = be.math(op, k), vb = be.math(op, v), ob = be.math(op, out),
                ab = be.math(op, att);
        int[] d = OpChecks.gqaDims(op, q, k, v, nHead, nKvHead, att, new Tensor[]{out});
        int b = d[0], t = d[1], hd = d[2];
        long rows = (long) b * nHead * t;
        if (rows == 0) {
            return;
        }
        be.launch("gqa_attention_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(rows, 1)), Dim3.of(BLOCK), qb, code(q),
                kb, code(k), vb, code(v), ob, code(out), ab, code(att), t, hd, nHead, nKvHead, scale(hd));
    }

    void gqaAttentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor att, int nHead, int nKvHead,
                              Tensor dq, Tensor dk, Tensor dv) {
        String op = "gqaAttentionBackward";
        DeviceBuffer db = be.math(op, dout), qb = be.math(op, q), kb = be.math(op, k), vb = be.math(op, v),
                ab = be.math(op, att), dqb = be.math(op, dq), dkb = be.math(op, dk), dvb = be.math(op, dv);
        int[] d = OpChecks.gqaDims(op, q, k, v, nHead, nKvHead, att, new Tensor[]{dout, dq}, dk, dv);
        int b = d[0], t = d[1], hd = d[2];
        long rows = (long) b * nHead * t;
        if (rows == 0 || hd == 0) {
            return;
        }
        DeviceBuffer ds = be.scratch(4L * rows);   // [B,nHead,T] fp32: s_t = sum_t2 att * datt
        float scale = scale(hd);
        be.launch("gqa_attention_bwd_kernel1", Dim3.of(KernelBackend.ceilDiv(rows, 1)), Dim3.of(BLOCK), db,
                code(dout), kb, code(k), vb, code(v), ab, code(att), ds, dqb, code(dq), t, hd, nHead, nKvHead, scale);
        be.launch("gqa_attention_bwd_kv_kernel1", Dim3.of(KernelBackend.ceilDiv((long) b * nKvHead * t, 1)),
                Dim3.of(BLOCK), db, code(dout), qb, code(q), vb, code(v), ab, code(att), ds, dkb, code(dk), dvb,
                code(dv), t, hd, nHead, nKvHead, scale);
    }
}
