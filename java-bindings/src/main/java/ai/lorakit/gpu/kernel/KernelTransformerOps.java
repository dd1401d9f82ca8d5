package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;

/**
 * The GPT-2 transformer ops of KernelBackend on the portable kernels layernorm.kc, gelu.kc,
 * attention.kc, cross_entropy.kc and embedding.kc (their header comments give the maths, shapes and launch
 * geometry; the CPU reference is {@code CpuTransformerOps}). Every call is validated exactly as CpuBackend
 * validates it, with the same messages, before any launch; targets and ids are read back to the host and
 * checked there, so an out-of-range index throws {@link ShapeException} and nothing is written.
 *
 * <p>No float atomics (OpenCL 1.2 has none): LayerNorm's dgamma/dbeta are reduced per block of 64 rows into
 * the backend's scratch buffer, then over the blocks in order; attention's backward runs one group per query
 * row (dq) and then one per key column (dk, dv); embedding's dwte groups the tokens by id on the host (the ids
 * are on the host for the range check anyway) so that one thread owns each (id, channel).
 */
final class KernelTransformerOps {
    /** Threads per group of every kernel here (LN_BLOCK, SOFTMAX_BLOCK, ATT_BLOCK, CE_BLOCK, GELU/EMB_BLOCK). */
    static final int BLOCK = 256;
    /** layernorm_bwd_partial_kernel1: 32 x 8 threads, LN_ROW_BLOCK rows per partial sum. */
    static final int LN_COLS_X = 32;
    static final int LN_ROWS_Y = 8;
    static final int LN_ROW_BLOCK = 64;

    private final KernelBackend be;

    KernelTransformerOps(KernelBackend be) {
        this.be = be;
    }

    private static int code(Tensor t) {
        return KernelBackend.code(t);
    }

    private static Dim3 strided(long n) {
        return Dim3.of(KernelBackend.strideGroups(n, BLOCK));
    }

    // ---------------------------------------------------------------- LayerNorm

    void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean, Tensor rstd) {
        String op = "layerNormForward";
        DeviceBuffer xb = be.math(op, x), gb = be.math(op, gamma), bb = be.math(op, beta), ob = be.math(op, out),
                mb = be.math(op, mean), rb = be.math(op, rstd);
        int rows = x.rows(), cols = x.cols();
        OpChecks.layerNormShapes(op, x, mean, rstd, new Tensor[]{out}, gamma, beta);
        if (rows == 0) {
            return;
        }
        be.launch("layernorm_fwd_kernel1", Dim3.of(rows), Dim3.of(BLOCK), xb, code(x), gb, code(gamma), bb,
                code(beta), ob, code(out), mb, code(mean), rb, code(rstd), cols, eps);
    }

    void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                           Tensor dx, Tensor dgamma, Tensor dbeta) {
        String op = "layerNormBackward";
        DeviceBuffer db = be.math(op, dout), xb = be.math(op, x), gb = be.math(op, gamma), mb = be.math(op, mean),
                rb = be.math(op, rstd), dxb = be.math(op, dx), dgb = be.math(op, dgamma), dbb = be.math(op, dbeta);
        int rows = x.rows(), cols = x.cols();
        OpChecks.layerNormShapes(op, x, mean, rstd, new Tensor[]{dout, dx}, gamma, dgamma, dbeta);
        if (rows == 0 || cols == 0) {
            return;
        }
        // dgamma/dbeta first: they read dout, which dx may alias.
        int blocks = KernelBackend.ceilDiv(rows, LN_ROW_BLOCK);
        DeviceBuffer partial = be.scratch(4L * blocks * 2 * cols);   // [blocks, 2C] fp32
        be.launch("layernorm_bwd_partial_kernel1", Dim3.of(blocks, KernelBackend.ceilDiv(cols, LN_COLS_X)),
                Dim3.of(LN_COLS_X, LN_ROWS_Y), db, code(dout), xb, code(x), mb, code(mean), rb, code(rstd), partial,
                rows, cols);
        be.launch("layernorm_bwd_params_kernel1", Dim3.of(KernelBackend.ceilDiv(cols, BLOCK)), Dim3.of(BLOCK),
                partial, dgb, code(dgamma), dbb, code(dbeta), blocks, cols);
        be.launch("layernorm_bwd_kernel1", Dim3.of(rows), Dim3.of(BLOCK), db, code(dout), xb, code(x), gb,
                code(gamma), mb, code(mean), rb, code(rstd), dxb, code(dx), cols);
    }

    // ---------------------------------------------------------------- GELU

    void geluForward(Tensor x, Tensor out) {
        String op = "geluForward";
        DeviceBuffer xb = be.math(op, x), ob = be.math(op, out);
        OpChecks.sameNumel(op, x, out);
        long n = x.numel();
        if (n > 0) {
            be.launch("gelu_fwd_kernel1", strided(n), Dim3.of(BLOCK), xb, code(x), ob, code(out), n);
        }
    }

    void geluBackward(Tensor x, Tensor dout, Tensor dx) {
        String op = "geluBackward";
        DeviceBuffer xb = be.math(op, x), db = be.math(op, dout), dxb = be.math(op, dx);
        OpChecks.sameNumel(op, x, dout);
        OpChecks.sameNumel(op, x, dx);
        long n = x.numel();
        if (n > 0) {
            be.launch("gelu_bwd_kernel1", strided(n), Dim3.of(BLOCK), xb, code(x), db, code(dout), dxb, code(dx), n);
        }
    }

    // ---------------------------------------------------------------- causal self-attention

    /** {B, T, C} of an attention call, after checking qkv [B,T,3C], out/dout [B,T,C], att [B,nHead,T,T]. */
    private static int[] attentionDims(String op, Tensor qkv, int nHead, Tensor btc, Tensor att) {
        if (qkv.rank() != 3 || qkv.dim(2) % 3 != 0) {
            throw new ShapeException(op + ": qkv " + qkv + " must be [B,T,3C]");
        }
        int b = qkv.dim(0), t = qkv.dim(1), c = qkv.dim(2) / 3;
        if (nHead <= 0 || c % nHead != 0) {
            throw new ShapeException(op + ": nHead " + nHead + " must be > 0 and divide C=" + c + " of " + qkv);
        }
        OpChecks.numelIs(op, btc, (long) b * t * c, "[B,T,C] of " + qkv);
        OpChecks.numelIs(op, att, (long) b * nHead * t * t, "[B,nHead,T,T] of " + qkv);
        return new int[] {b, t, c};
    }

    /** 1/sqrt(hs) rounded to float as CpuTransformerOps rounds it. */
    private static float attentionScale(int c, int nHead) {
        return (float) (1.0 / Math.sqrt(c / nHead));
    }

    void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        String op = "attentionForward";
        DeviceBuffer qb = be.math(op, qkv), ob = be.math(op, out), ab = be.math(op, att);
        int[] d = attentionDims(op, qkv, nHead, out, att);
        int b = d[0], t = d[1], c = d[2];
        long rows = (long) b * nHead * t;
        if (rows == 0) {
            return;
        }
        be.launch("attention_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(rows, 1)), Dim3.of(BLOCK), qb, code(qkv),
                ob, code(out), ab, code(att), t, c, nHead, attentionScale(c, nHead));
    }

    void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        String op = "attentionBackward";
        DeviceBuffer db = be.math(op, dout), qb = be.math(op, qkv), ab = be.math(op, att), dqb = be.math(op, dqkv);
        int[] d = attentionDims(op, qkv, nHead, dout, att);
        OpChecks.sameNumel(op, qkv, dqkv);
        int b = d[0], t = d[1], c = d[2];
        long rows = (long) b * nHead * t;
        if (rows == 0 || c == 0) {
            return;
        }
        int groups = KernelBackend.ceilDiv(rows, 1);
        DeviceBuffer ds = be.scratch(4L * rows);   // [B,nHead,T] fp32: s_t = sum_t2 att * datt
        float scale = attentionScale(c, nHead);
        be.launch("attention_bwd_kernel1", Dim3.of(groups), Dim3.of(BLOCK), db, code(dout), qb, code(qkv), ab,
                code(att), ds, dqb, code(dqkv), t, c, nHead, scale);
        be.launch("attention_bwd_kv_kernel1", Dim3.of(groups), Dim3.of(BLOCK), db, code(dout), qb, code(qkv), ab,
                code(att), ds, dqb, code(dqkv), t, c, nHead, scale);
    }

    // ---------------------------------------------------------------- cross-entropy

    void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        String op = "crossEntropyForward";
        DeviceBuffer lb = be.math(op, logits), pb = be.math(op, probs), lossb = be.math(op, losses);
        DeviceBuffer tb = be.ints(op, targets);
        int rows = logits.rows(), v = logits.cols();
        OpChecks.sameNumel(op, logits, probs);
        OpChecks.numelIs(op, targets, rows, "N of " + logits);
        OpChecks.numelIs(op, losses, rows, "N of " + logits);
        OpChecks.targets(op, targets, be.hostInts(op, targets), v, "vocabulary size V of " + logits);
        if (rows == 0 || v == 0) {
            return;
        }
        be.launch("cross_entropy_fwd_kernel1", Dim3.of(rows), Dim3.of(BLOCK), lb, code(logits), tb, pb, code(probs),
                lossb, code(losses), v);
    }

    void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        String op = "crossEntropyBackward";
        DeviceBuffer pb = be.math(op, probs), db = be.math(op, dlogits);
        DeviceBuffer tb = be.ints(op, targets);
        int rows = probs.rows(), v = probs.cols();
        OpChecks.sameNumel(op, probs, dlogits);
        OpChecks.numelIs(op, targets, rows, "N of " + probs);
        OpChecks.targets(op, targets, be.hostInts(op, targets), v, "vocabulary size V of " + probs);
        long n = probs.numel();
        if (n == 0) {
            return;
        }
        be.launch("cross_entropy_bwd_kernel1", strided(n), Dim3.of(BLOCK), pb, code(probs), tb, scale, db,
                code(dlogits), n, v);
    }

    // ---------------------------------------------------------------- embeddings

    void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        String op = "embeddingForward";
        DeviceBuffer ib = be.ints(op, ids);
        DeviceBuffer teb = be.math(op, wte), ob = be.math(op, out);
        DeviceBuffer peb = wpe == null ? teb : be.math(op, wpe);   // no positions: any valid buffer, never read
        int[] d = OpChecks.embeddingDims(op, ids, be.hostInts(op, ids), wte, wpe, out);
        long n = out.numel();
        if (n == 0) {
            return;
        }
        be.launch("embedding_fwd_kernel1", strided(n), Dim3.of(BLOCK), ib, teb, code(wte), peb,
                code(wpe == null ? wte : wpe), wpe == null ? 0 : 1, ob, code(out), n, d[1], d[2]);
    }

    /**
     * dwte[ids[n], :] += dout[n, :], dwpe[t, :] += dout[b, t, :] (dwpe null: no positions, no wpe launch). The
     * tokens are grouped by id on the host (counting sort, O(N + V)) into one I32 buffer [starts (U+1) | distinct
     * ids (U) | token order (N)], so embedding_bwd_wte_kernel1 gives each (id, channel) one thread that adds its
     * tokens in token order (the CPU's order); only the U distinct rows of dwte are touched. Cost per call: the ids
     * index written (2U+1+N ints) into the ids' own buffer when the ids are written from the host (KernelBackend.write:
     * so a training step's backward makes no transfer; here only when they changed otherwise), O(N C) device
     * reads for dwte and O(B T C) for dwpe.
     */
    void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        String op = "embeddingBackward";
        DeviceBuffer ib = be.ints(op, ids);
        DeviceBuffer db = be.math(op, dout), teb = be.math(op, dwte);
        DeviceBuffer peb = dwpe == null ? null : be.math(op, dwpe);
        int[] idv = be.hostInts(op, ids);
        int[] d = OpChecks.embeddingDims(op, ids, idv, dwte, dwpe, dout);
        int b = d[0], t = d[1], c = d[2];
        if (dout.numel() == 0) {
            return;
        }
        KernelBackend.Storage st = (KernelBackend.Storage) ids.handle();
        if (!st.indexFresh || st.indexRows != dwte.rows()) {
            st.indexRows = dwte.rows();
            uploadIndex(st, idv);
        }
        int u = st.indexDistinct;
        be.launch("embedding_bwd_wte_kernel1", strided((long) u * c), Dim3.of(BLOCK), db, code(dout), st.index, u,
                teb, code(dwte), c);
        if (dwpe != null) {
            be.launch("embedding_bwd_wpe_kernel1", strided((long) t * c), Dim3.of(BLOCK), db, code(dout), peb,
                    code(dwpe), b, t, c);
        }
    }

    /**
     * The token indices of {@code ids} (each in [0, vocab)) grouped by id: [starts[0..U], uniq[0..U),
     * order[0..N)] where the tokens of the u-th distinct id (increasing) are order[starts[u] .. starts[u+1]),
     * in token order.
     */
    /**
     * Groups {@code ids} (the values of st) by id for {@code st.indexRows} table rows and uploads the index into
     * the ids' own index buffer (made at the first call, for the longest index N ids can give: 3N+1 ints); the
     * index is then fresh. Ids outside [0, indexRows) leave it stale (the backward's check names them).
     */
    void uploadIndex(KernelBackend.Storage st, int[] ids) {
        st.indexFresh = false;
        for (int id : ids) {
            if (id < 0 || id >= st.indexRows) {
                return;
            }
        }
        int[] index = groupById(ids, st.indexRows);
        if (st.index == null) {
            st.index = be.device().alloc(4L * (3L * ids.length + 1));
        }
        be.device().write(st.index, 0, index);
        st.indexDistinct = (index.length - 1 - ids.length) / 2;
        st.indexFresh = true;
    }

    static int[] groupById(int[] ids, int vocab) {
        int n = ids.length;
        int[] count = new int[vocab];
        int u = 0;
        for (int id : ids) {
            if (count[id]++ == 0) {
                u++;
            }
        }
        int[] index = new int[2 * u + 1 + n];
        int[] slot = new int[vocab];   // id -> next write position in order[]
        int k = 0;
        int pos = 0;
        for (int id = 0; id < vocab; id++) {
            if (count[id] > 0) {
                index[k] = pos;              // starts[k]
                index[u + 1 + k] = id;       // uniq[k]
                slot[id] = pos;
                pos += count[id];
                k++;
            }
        }
        index[u] = pos;                      // starts[U] = N
        int order = 2 * u + 1;
        for (int i = 0; i < n; i++) {
            index[order + slot[ids[i]]++] = i;
        }
        return index;
    }
}
