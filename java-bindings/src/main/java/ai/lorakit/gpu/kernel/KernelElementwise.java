package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

/**
 * Elementwise, broadcast, transpose, strided copy and dropout ops on the portable kernels elementwise.kc,
 * broadcast.kc, transpose.kc, copy_strided.kc and dropout.kc. Flat ops use grid-stride loops (256 threads, at
 * most 65535 groups); each tensor is passed with its dtype code, so any mix of F32/BF16/F16 works in one launch.
 */
final class KernelElementwise {
    static final int BLOCK = 256;
    static final int TRANSPOSE_TILE = 16;

    private final KernelBackend be;

    KernelElementwise(KernelBackend be) {
        this.be = be;
    }

    private static Dim3 grid(long n) {
        return Dim3.of(KernelBackend.strideGroups(n, BLOCK));
    }

    /** out = a (op) b over n elements; kernel (a, dta, b, dtb, out, dto, n). */
    private void binary(String op, String kernel, Tensor a, Tensor b, Tensor out) {
        DeviceBuffer ab = be.math(op, a), bb = be.math(op, b), ob = be.math(op, out);
        OpChecks.sameNumel(op, a, b);
        OpChecks.sameNumel(op, a, out);
        long n = a.numel();
        if (n > 0) {
            be.launch(kernel, grid(n), Dim3.of(BLOCK), ab, KernelBackend.code(a), bb, KernelBackend.code(b),
                    ob, KernelBackend.code(out), n);
        }
    }

    void add(Tensor a, Tensor b, Tensor out) {
        binary("add", "add_fwd_kernel1", a, b, out);
    }

    void mul(Tensor a, Tensor b, Tensor out) {
        binary("mul", "mul_fwd_kernel1", a, b, out);
    }

    void divide(Tensor a, Tensor b, Tensor out) {
        binary("divide", "divide_fwd_kernel1", a, b, out);
    }

    /** out = f(x) over n elements; kernel (x, dtx, out, dto, n). */
    private void unary(String op, String kernel, Tensor x, Tensor out) {
        DeviceBuffer xb = be.math(op, x), ob = be.math(op, out);
        OpChecks.sameNumel(op, x, out);
        long n = x.numel();
        if (n > 0) {
            be.launch(kernel, grid(n), Dim3.of(BLOCK), xb, KernelBackend.code(x), ob, KernelBackend.code(out), n);
        }
    }

    void sqrt(Tensor x, Tensor out) {
        unary("sqrt", "sqrt_fwd_kernel1", x, out);
    }

    void reciprocal(Tensor x, Tensor out) {
        unary("reciprocal", "reciprocal_fwd_kernel1", x, out);
    }

    void scale(Tensor x, float alpha, Tensor out) {
        String op = "scale";
        DeviceBuffer xb = be.math(op, x), ob = be.math(op, out);
        OpChecks.sameNumel(op, x, out);
        long n = x.numel();
        if (n > 0) {
            be.launch("scale_fwd_kernel1", grid(n), Dim3.of(BLOCK), xb, KernelBackend.code(x), alpha, ob,
                    KernelBackend.code(out), n);
        }
    }

    void axpby(float alpha, Tensor x, float beta, Tensor y) {
        String op = "axpby";
        DeviceBuffer xb = be.math(op, x), yb = be.math(op, y);
        OpChecks.sameNumel(op, x, y);
        long n = x.numel();
        if (n > 0) {
            be.launch("axpby_fwd_kernel1", grid(n), Dim3.of(BLOCK), alpha, xb, KernelBackend.code(x), beta, yb,
                    KernelBackend.code(y), n);
        }
    }

    /** out[r,c] = a[r,c] (op) v[c or r]; kernel (a, dta, v, dtv, out, dto, n, cols). */
    private void vector(String op, String kernel, Tensor a, Tensor v, Tensor out, boolean perColumn) {
        DeviceBuffer ab = be.math(op, a), vb = be.math(op, v), ob = be.math(op, out);
        OpChecks.sameNumel(op, a, out);
        if (perColumn) {
            OpChecks.numelIs(op, v, a.cols(), "one per column of " + a);
        } else {
            OpChecks.numelIs(op, v, a.rows(), "one per row of " + a);
        }
        long n = a.numel();
        if (n > 0) {
            be.launch(kernel, grid(n), Dim3.of(BLOCK), ab, KernelBackend.code(a), vb, KernelBackend.code(v), ob,
                    KernelBackend.code(out), n, a.cols());
        }
    }

    void addRowVector(Tensor a, Tensor v, Tensor out) {
        vector("addRowVector", "add_row_vector_fwd_kernel1", a, v, out, true);
    }

    void mulRowVector(Tensor a, Tensor v, Tensor out) {
        vector("mulRowVector", "mul_row_vector_fwd_kernel1", a, v, out, true);
    }

    void mulColVector(Tensor a, Tensor v, Tensor out) {
        vector("mulColVector", "mul_col_vector_fwd_kernel1", a, v, out, false);
    }

    void transpose(Tensor a, Tensor out) {
        String op = "transpose";
        be.math(op, a);
        DeviceBuffer ob = be.math(op, out);
        OpChecks.transposeShape(op, a, out);
        int rows = a.rows(), cols = a.cols();
        if (a.numel() == 0) {
            return;
        }
        Tensor staged = a == out ? be.stagedCopy(a) : null;
        try {
            DeviceBuffer ab = be.buffer(op, staged != null ? staged : a);
            int rowGroups = KernelBackend.ceilDiv(rows, TRANSPOSE_TILE);
            int maxCols = KernelGemm.MAX_GRID_YZ * TRANSPOSE_TILE;
            for (int c0 = 0; c0 < cols; c0 += maxCols) {
                int cc = Math.min(maxCols, cols - c0);
                be.launch("transpose_fwd_kernel1", Dim3.of(rowGroups, KernelBackend.ceilDiv(cc, TRANSPOSE_TILE)),
                        Dim3.of(TRANSPOSE_TILE, TRANSPOSE_TILE), ab, KernelBackend.code(a), ob,
                        KernelBackend.code(out), rows, cols, c0);
            }
        } finally {
            if (staged != null) {
                staged.close();
            }
        }
    }

    /** copy_strided.kc over the rows x cols elements; a src sharing dst's storage is read from a staged copy. */
    void copyStrided(Tensor src, long srcOff, int srcRowStride, int srcColStride,
                     Tensor dst, long dstOff, int dstLd, int rows, int cols) {
        String op = "copyStrided";
        be.math(op, src);
        DeviceBuffer db = be.math(op, dst);
        OpChecks.copyStrided(op, src, srcOff, srcRowStride, srcColStride, dst, dstOff, dstLd, rows, cols);
        if (rows == 0 || cols == 0) {
            return;
        }
        Tensor staged = src.handle() == dst.handle() ? be.stagedCopy(src) : null;
        try {
            DeviceBuffer sb = be.buffer(op, staged != null ? staged : src);
            be.launch("copy_strided_fwd_kernel1", grid((long) rows * cols), Dim3.of(BLOCK), sb,
                    KernelBackend.code(src), srcOff, srcRowStride, srcColStride, db, KernelBackend.code(dst), dstOff,
                    dstLd, rows, cols);
        } finally {
            if (staged != null) {
                staged.close();
            }
        }
    }

    /** Dropout.maskValue for every element; threshold and 1/(1-p) computed here exactly as Dropout does. */
    void dropoutMask(Tensor mask, float p, long seed) {
        String op = "dropoutMask";
        DeviceBuffer mb = be.math(op, mask);
        OpChecks.probability(op, p);
        long n = mask.numel();
        if (n > 0) {
            int threshold = (int) (long) (p * (1 << 24));
            float keepScale = 1f / (1f - p);
            be.launch("dropout_mask_fwd_kernel1", grid(n), Dim3.of(BLOCK), mb, KernelBackend.code(mask), n, seed,
                    threshold, keepScale);
        }
    }
}
