package ai.lorakit.gpu;

import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

/**
 * The argument checks every Backend implementation makes before an op does any work, with one wording for
 * all backends (the same messages as CpuBackend's): the op's name first, then the tensors and the problem.
 * Open state, ownership and dtype problems of single tensors are {@link #tensor}/{@link #math}/{@link #ints};
 * shape relations are the rest. Shape problems throw {@link ShapeException}, closed tensors or backends
 * {@link GpuException}.
 */
public final class OpChecks {
    private OpChecks() {
    }

    /** A closed backend: {@code op: backend NAME is closed}. */
    public static void backendOpen(String op, Backend self, boolean closed) {
        if (closed) {
            throw new GpuException(op + ": backend " + self.name() + " is closed");
        }
    }

    /** t is non-null, belongs to {@code self} (this very instance) and is open. */
    public static void tensor(String op, Backend self, Tensor t) {
        if (t == null) {
            throw new ShapeException(op + ": tensor argument is null");
        }
        if (t.backend() != self) {
            throw new ShapeException(op + ": " + t + " belongs to another backend instance (" + t.backend()
                    + "), not to this " + self);
        }
        if (t.isClosed()) {
            throw new GpuException(op + ": use of closed tensor " + t);
        }
    }

    /** t is a math tensor (F32, BF16 or F16). */
    public static void math(String op, Tensor t) {
        if (t.dtype() == DType.I32) {
            throw new ShapeException(op + ": " + t + " must be F32, BF16 or F16, not I32");
        }
    }

    /** t is an I32 tensor. */
    public static void ints(String op, Tensor t) {
        if (t.dtype() != DType.I32) {
            throw new ShapeException(op + ": " + t + " must be I32, not " + t.dtype());
        }
    }

    public static void sameNumel(String op, Tensor a, Tensor b) {
        if (a.numel() != b.numel()) {
            throw new ShapeException(op + ": " + a + " and " + b + " must have the same number of elements ("
                    + a.numel() + " vs " + b.numel() + ")");
        }
    }

    /** t has {@code want} elements; {@code what} says why (e.g. "one per column of x"). */
    public static void numelIs(String op, Tensor t, long want, String what) {
        if (t.numel() != want) {
            throw new ShapeException(op + ": " + t + " must have " + want + " elements (" + what + "), has "
                    + t.numel());
        }
    }

    /**
     * LayerNorm's shapes, shared by forward and backward: x and every [N,C] tensor in {@code rowsLikeX} have x's
     * numel, every tensor in {@code perColumn} has C elements, mean and rstd have N.
     */
    public static void layerNormShapes(String op, Tensor x, Tensor mean, Tensor rstd, Tensor[] rowsLikeX,
                                       Tensor... perColumn) {
        int rows = x.rows();
        int cols = x.cols();
        for (Tensor t : perColumn) {
            numelIs(op, t, cols, "C of " + x);
        }
        for (Tensor t : rowsLikeX) {
            sameNumel(op, x, t);
        }
        numelIs(op, mean, rows, "N of " + x);
        numelIs(op, rstd, rows, "N of " + x);
    }

    /**
     * RMSNorm's shapes, shared by forward and backward: every [N,C] tensor in {@code rowsLikeX} has x's numel,
     * every tensor in {@code perColumn} has C elements, rstd has N.
     */
    public static void rmsNormShapes(String op, Tensor x, Tensor rstd, Tensor[] rowsLikeX, Tensor... perColumn) {
        for (Tensor t : perColumn) {
            numelIs(op, t, x.cols(), "C of " + x);
        }
        for (Tensor t : rowsLikeX) {
            sameNumel(op, x, t);
        }
        numelIs(op, rstd, x.rows(), "N of " + x);
    }

    /**
     * {B, T, D} of a RoPE call, after checking x [B,T,nHead*D] with D even, out (or dx) with x's numel, and
     * cos, sin [Tmax >= T, D/2] (a table for more positions than the window is read from its first T rows).
     */
    public static int[] ropeDims(String op, Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out) {
        if (x.rank() != 3) {
            throw new ShapeException(op + ": " + x + " must be [B,T,nHead*D]");
        }
        int b = x.dim(0), t = x.dim(1), width = x.dim(2);
        if (nHead <= 0 || width % nHead != 0) {
            throw new ShapeException(op + ": nHead " + nHead + " must be > 0 and divide the last dim " + width
                    + " of " + x);
        }
        int d = width / nHead;
        if (d % 2 != 0) {
            throw new ShapeException(op + ": head size D=" + d + " of " + x + " with nHead " + nHead
                    + " must be even (rotate_half pairs i with i+D/2)");
        }
        for (Tensor table : new Tensor[] {cos, sin}) {
            if (table.cols() != d / 2 || table.rows() < t) {
                throw new ShapeException(op + ": " + table + " must be [Tmax>=" + t + "," + d / 2
                        + "] (positions x D/2 of " + x + "); compute it with RopeTables");
            }
        }
        sameNumel(op, x, out);
        return new int[] {b, t, d};
    }

    /**
     * {B, T, D} of a grouped-query attention call, after checking q [B,T,nHead*D], k and v [B,T,nKvHead*D],
     * nHead % nKvHead == 0, every tensor in {@code likeQ} (out, dout, dq) with q's numel, every tensor in
     * {@code likeKv} (dk, dv) with k's, and att [B,nHead,T,T].
     */
    public static int[] gqaDims(String op, Tensor q, Tensor k, Tensor v, int nHead, int nKvHead, Tensor att,
                                Tensor[] likeQ, Tensor... likeKv) {
        if (q.rank() != 3) {
            throw new ShapeException(op + ": q " + q + " must be [B,T,nHead*D]");
        }
        int b = q.dim(0), t = q.dim(1), width = q.dim(2);
        if (nHead <= 0 || nKvHead <= 0 || nHead % nKvHead != 0) {
            throw new ShapeException(op + ": nHead " + nHead + " must be a positive multiple of nKvHead " + nKvHead);
        }
        if (width % nHead != 0) {
            throw new ShapeException(op + ": nHead " + nHead + " must divide the last dim " + width + " of q " + q);
        }
        int d = width / nHead;
        for (Tensor kv : new Tensor[] {k, v}) {
            if (kv.rank() != 3 || kv.dim(0) != b || kv.dim(1) != t || kv.dim(2) != nKvHead * d) {
                throw new ShapeException(op + ": " + kv + " must be [B,T,nKvHead*D] = [" + b + "," + t + ","
                        + (long) nKvHead * d + "] (nKvHead " + nKvHead + ", D " + d + " from q " + q + ")");
            }
        }
        for (Tensor x : likeQ) {
            sameNumel(op, q, x);
        }
        for (Tensor x : likeKv) {
            sameNumel(op, k, x);
        }
        numelIs(op, att, (long) b * nHead * t * t, "[B,nHead,T,T] of q " + q);
        return new int[] {b, t, d};
    }

    /**
     * {B, T, C} of an embedding call, after checking ids [B,T], wte [V,C], wpe [Tmax>=T,C] (or null: no learned
     * positions), x [B,T,C] and every id (the host copy {@code idv}) against V.
     */
    public static int[] embeddingDims(String op, Tensor ids, int[] idv, Tensor wte, Tensor wpe, Tensor x) {
        int b = ids.rows(), t = ids.cols(), c = wte.cols();
        if (wpe != null && wpe.cols() != c) {
            throw new ShapeException(op + ": " + wpe + " and " + wte + " must have the same C");
        }
        if (wpe != null && wpe.rows() < t) {
            throw new ShapeException(op + ": " + wpe + " has " + wpe.rows() + " positions, fewer than T=" + t
                    + " of " + ids);
        }
        numelIs(op, x, (long) b * t * c, "[B,T,C] of " + ids + " and " + wte);
        indices(op, ids, idv, wte.rows(), "vocabulary size V of " + wte);
        return new int[] {b, t, c};
    }

    /** Host data of {@code length} values for a tensor of {@code shape}. */
    public static void dataLength(String op, int length, long numel, int[] shape) {
        if (length != numel) {
            throw new ShapeException(op + ": " + length + " values for shape " + java.util.Arrays.toString(shape)
                    + " (" + numel + " elements)");
        }
    }

    /** Non-negative GEMM sizes. */
    public static void gemmSizes(String op, int batch, int m, int n, int k, Tensor a, Tensor b, Tensor c) {
        if (batch < 0 || m < 0 || n < 0 || k < 0) {
            throw new ShapeException(op + ": negative size batch=" + batch + " m=" + m + " n=" + n + " k=" + k
                    + " for " + a + " x " + b + " -> " + c);
        }
    }

    /**
     * Every element op(X_i) touches lies inside x: X_i stored [rows,cols] (or [cols,rows] with trans) with row
     * pitch ld >= stored cols, starting at off + i*stride.
     */
    public static void gemmOperand(String op, String which, Tensor x, boolean trans, int rows, int cols,
                                   long off, int ld, long stride, int batch) {
        long sr = trans ? cols : rows;
        long sc = trans ? rows : cols;
        String what = op + ": " + which + "=" + x + (trans ? " (transposed)" : "") + " as op(" + which + ")["
                + rows + "," + cols + "]";
        if (off < 0 || stride < 0) {
            throw new ShapeException(what + ": negative offset " + off + " or stride " + stride);
        }
        if (ld < Math.max(1, sc)) {
            throw new ShapeException(what + ": leading dimension " + ld + " < stored row length " + sc);
        }
        if (batch == 0 || sr == 0 || sc == 0) {
            return;
        }
        long last = off + (batch - 1L) * stride + (sr - 1) * ld + sc - 1;
        if (last >= x.numel() || last < 0) {
            throw new ShapeException(what + " with offset " + off + ", ld " + ld + ", stride " + stride + ", batch "
                    + batch + " reaches element " + last + " but the tensor has " + x.numel());
        }
    }

    /**
     * The arguments of {@link Backend#copyStrided}: rows, cols, offsets and strides non-negative, dstLd >= cols
     * when rows > 1 (dst rows do not overlap), and, unless the copy is empty, the last element read inside src
     * and the last element written inside dst.
     */
    public static void copyStrided(String op, Tensor src, long srcOff, int srcRowStride, int srcColStride,
                                   Tensor dst, long dstOff, int dstLd, int rows, int cols) {
        String call = op + "(" + src + " at " + srcOff + " strides " + srcRowStride + "," + srcColStride + " -> "
                + dst + " at " + dstOff + " ld " + dstLd + ", [" + rows + "," + cols + "])";
        if (rows < 0 || cols < 0) {
            throw new ShapeException(call + ": negative size rows=" + rows + " cols=" + cols);
        }
        if (srcOff < 0 || dstOff < 0 || srcRowStride < 0 || srcColStride < 0 || dstLd < 0) {
            throw new ShapeException(call + ": offsets and strides must be >= 0");
        }
        if (rows > 1 && dstLd < cols) {
            throw new ShapeException(call + ": dst leading dimension " + dstLd + " < cols " + cols
                    + " (dst rows would overlap)");
        }
        if (rows == 0 || cols == 0) {
            return;
        }
        stridedRange(call, "src", src, srcOff, srcRowStride, srcColStride, rows, cols, "reads");
        stridedRange(call, "dst", dst, dstOff, dstLd, 1, rows, cols, "writes");
    }

    /** Elements off + i*rowStride + j*colStride (i < rows, j < cols; both >= 1) all lie inside t. */
    private static void stridedRange(String call, String which, Tensor t, long off, int rowStride, int colStride,
                                     int rows, int cols, String verb) {
        long span = (rows - 1L) * rowStride + (cols - 1L) * colStride;   // < 2^63: no overflow
        if (off > t.numel() - 1 - span) {
            long last = off + span;
            throw new ShapeException(call + ": " + which + " " + verb + " elements " + off + ".."
                    + (last >= 0 ? Long.toString(last) : off + "+" + span) + " but " + t + " has " + t.numel()
                    + " elements (0.." + (t.numel() - 1) + ")");
        }
    }

    /** out is a's transpose: [cols, rows] of a seen as a matrix. */
    public static void transposeShape(String op, Tensor a, Tensor out) {
        int rows = a.rows(), cols = a.cols();
        if (out.rows() != cols || out.cols() != rows) {
            throw new ShapeException(op + ": " + a + " seen as [" + rows + "," + cols + "] needs an output ["
                    + cols + "," + rows + "], got " + out);
        }
    }

    /** a and b have the same number of elements and the same row length. */
    public static void sameRows(String op, Tensor a, Tensor b) {
        sameNumel(op, a, b);
        if (a.cols() != b.cols()) {
            throw new ShapeException(op + ": " + a + " and " + b + " must have the same row length");
        }
    }

    /** A dropout probability in [0, 1] (IllegalArgumentException otherwise, NaN included). */
    public static void probability(String op, float p) {
        if (!(p >= 0f && p <= 1f)) {
            throw new IllegalArgumentException(op + ": p must be in [0,1], got " + p);
        }
    }

    /** ids[i] in [0, limit) for every i; {@code what} names the limit. */
    public static void indices(String op, Tensor t, int[] ids, int limit, String what) {
        for (int i = 0; i < ids.length; i++) {
            if (ids[i] < 0 || ids[i] >= limit) {
                throw new ShapeException(op + ": " + t + "[" + i + "] = " + ids[i] + " is outside [0," + limit
                        + ") (" + what + ")");
            }
        }
    }

    /** targets[i] in [0, limit) or {@link CrossEntropy#IGNORE} for every i; {@code what} names the limit. */
    public static void targets(String op, Tensor t, int[] targets, int limit, String what) {
        for (int i = 0; i < targets.length; i++) {
            if (targets[i] != CrossEntropy.IGNORE && (targets[i] < 0 || targets[i] >= limit)) {
                throw new ShapeException(op + ": " + t + "[" + i + "] = " + targets[i] + " is outside [0," + limit
                        + ") (" + what + ") and is not the ignored target " + CrossEntropy.IGNORE);
            }
        }
    }

    /**
     * The lists of a multi-tensor AdamW ({@link Backend#adamwClipped}): equal sizes, no nulls, distinct gradients
     * (each is scaled in place once), and a stats slot for the norm.
     */
    public static void adamwLists(String op, List<Tensor> params, List<Tensor> grads,
                                  List<Tensor> ms, List<Tensor> vs, List<AdamW> hps,
                                  Tensor stats, int normAt) {
        if (params == null || grads == null || ms == null || vs == null || hps == null) {
            throw new IllegalArgumentException(op + ": params, grads, ms, vs and hps must not be null");
        }
        int n = params.size();
        if (grads.size() != n || ms.size() != n || vs.size() != n || hps.size() != n) {
            throw new IllegalArgumentException(op + ": params, grads, ms, vs and hps must have the same size, got "
                    + n + ", " + grads.size() + ", " + ms.size() + ", " + vs.size() + ", " + hps.size());
        }
        Set<Tensor> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        for (int i = 0; i < n; i++) {
            if (params.get(i) == null || grads.get(i) == null || ms.get(i) == null || vs.get(i) == null
                    || hps.get(i) == null) {
                throw new IllegalArgumentException(op + ": entry " + i + " has a null tensor or hyper-parameters");
            }
            if (!seen.add(grads.get(i))) {
                throw new IllegalArgumentException(op + ": gradient " + grads.get(i) + " appears twice (entry " + i
                        + "); each gradient is clipped in place once, so pass each parameter once");
            }
        }
        DeviceSums.checkSlot(op, stats, normAt);
    }
}
