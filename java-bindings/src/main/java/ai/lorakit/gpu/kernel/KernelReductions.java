package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * Reductions on cuda-kernels/portable/reduce.kc: local-memory trees with float-float (hi + lo) accumulation on
 * the device; sum, dot and countNonFinite read one partial per group (at most {@value #MAX_GROUPS}) and finish
 * in double / long on the host, so 2^24 + many ones is not lost (as CpuBackend's double accumulation).
 */
final class KernelReductions {
    static final int BLOCK = 256;
    static final int MAX_GROUPS = 1024;
    /** sum_rows / row_dot blocks: 32 x 8 threads (REDUCE_ROWS_X/Y). */
    static final int RX = 32;
    static final int RY = 8;

    private final KernelBackend be;

    KernelReductions(KernelBackend be) {
        this.be = be;
    }

    void sumRows(Tensor a, float beta, Tensor out) {
        String op = "sumRows";
        DeviceBuffer ab = be.math(op, a), ob = be.math(op, out);
        OpChecks.numelIs(op, out, a.cols(), "one per column of " + a);
        int rows = a.rows(), cols = a.cols();
        if (cols > 0) {
            be.launch("sum_rows_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(cols, RX)), Dim3.of(RX, RY), ab,
                    KernelBackend.code(a), ob, KernelBackend.code(out), a.numel() == 0 ? 0 : rows, cols, beta);
        }
    }

    void rowDot(Tensor a, Tensor b, Tensor out) {
        String op = "rowDot";
        DeviceBuffer ab = be.math(op, a), bb = be.math(op, b), ob = be.math(op, out);
        OpChecks.sameRows(op, a, b);
        OpChecks.numelIs(op, out, a.rows(), "one per row of " + a);
        int rows = a.rows(), cols = a.cols();
        if (out.numel() > 0) {
            be.launch("row_dot_fwd_kernel1", Dim3.of(KernelBackend.ceilDiv(rows, RY)), Dim3.of(RX, RY), ab,
                    KernelBackend.code(a), bb, KernelBackend.code(b), ob, KernelBackend.code(out), rows, cols);
        }
    }

    private static int groups(long n) {
        return (int) Math.max(1, Math.min(MAX_GROUPS, (n + BLOCK - 1) / BLOCK));
    }

    /** Sum of the (hi, lo) pairs of {@code groups} groups, in double. */
    private double finish(DeviceBuffer partial, int groups) {
        float[] p = new float[2 * groups];
        be.device().read(partial, 0, p);
        double s = 0;
        for (float x : p) {
            s += x;
        }
        return s;
    }

    double sum(Tensor a) {
        String op = "sum";
        DeviceBuffer ab = be.math(op, a);
        long n = a.numel();
        if (n == 0) {
            return 0;
        }
        int g = groups(n);
        DeviceBuffer partial = be.scratch(8L * g);
        be.launch("sum_partial_fwd_kernel1", Dim3.of(g), Dim3.of(BLOCK), ab, KernelBackend.code(a), partial, n);
        return finish(partial, g);
    }

    double dot(Tensor a, Tensor b) {
        String op = "dot";
        DeviceBuffer ab = be.math(op, a), bb = be.math(op, b);
        OpChecks.sameNumel(op, a, b);
        long n = a.numel();
        if (n == 0) {
            return 0;
        }
        int g = groups(n);
        DeviceBuffer partial = be.scratch(8L * g);
        be.launch("dot_partial_fwd_kernel1", Dim3.of(g), Dim3.of(BLOCK), ab, KernelBackend.code(a), bb,
                KernelBackend.code(b), partial, n);
        return finish(partial, g);
    }

    long countNonFinite(Tensor a) {
        String op = "countNonFinite";
        DeviceBuffer ab = be.math(op, a);
        long n = a.numel();
        if (n == 0) {
            return 0;
        }
        int g = groups(n);
        DeviceBuffer counts = be.scratch(4L * g);
        be.launch("count_nonfinite_fwd_kernel1", Dim3.of(g), Dim3.of(BLOCK), ab, KernelBackend.code(a), counts, n);
        int[] c = new int[g];
        be.device().read(counts, 0, c);
        long total = 0;
        for (int x : c) {
            total += x;
        }
        return total;
    }

    /** Slot {@code at} of out (a float-float pair) = sum_i a[i]: partial sums per group, then one block adds them. */
    void sumTo(Tensor a, Tensor out, int at) {
        String op = "sumTo";
        DeviceBuffer ab = be.math(op, a), ob = be.math(op, out);
        DeviceSums.checkSlot(op, out, at);
        long n = a.numel();
        int g = groups(n);
        DeviceBuffer partial = be.scratch(8L * g);
        if (n > 0) {
            be.launch("sum_partial_fwd_kernel1", Dim3.of(g), Dim3.of(BLOCK), ab, KernelBackend.code(a), partial, n);
        }
        be.launch("pair_sum_fwd_kernel1", Dim3.of(1), Dim3.of(BLOCK), partial, n > 0 ? g : 0, ob, at, 0);
    }

    /** Slot {@code at} of out = Σ over the tensors of Σ x²: per tensor, partial dot products, then added to the slot. */
    void sumSquaresTo(List<Tensor> xs, Tensor out, int at) {
        String op = "sumSquaresTo";
        DeviceBuffer ob = be.math(op, out);
        DeviceSums.checkSlot(op, out, at);
        DeviceBuffer[] bufs = new DeviceBuffer[xs.size()];
        for (int i = 0; i < bufs.length; i++) {
            bufs[i] = be.math(op, xs.get(i));
        }
        be.launch("pair_sum_fwd_kernel1", Dim3.of(1), Dim3.of(BLOCK), be.scratch(8), 0, ob, at, 0);   // slot = 0
        for (int i = 0; i < bufs.length; i++) {
            Tensor x = xs.get(i);
            long n = x.numel();
            if (n == 0) {
                continue;
            }
            int g = groups(n);
            DeviceBuffer partial = be.scratch(8L * g);
            be.launch("dot_partial_fwd_kernel1", Dim3.of(g), Dim3.of(BLOCK), bufs[i], KernelBackend.code(x), bufs[i],
                    KernelBackend.code(x), partial, n);
            be.launch("pair_sum_fwd_kernel1", Dim3.of(1), Dim3.of(BLOCK), partial, g, ob, at, 1);
        }
    }
}
