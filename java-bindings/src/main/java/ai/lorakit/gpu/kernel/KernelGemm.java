package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.Tensor;

/**
 * Backend#gemmBatched on the portable tiled GEMM (cuda-kernels/portable/gemm.kc, gemm_fwd_kernel1): checks
 * as CpuBackend, then one launch per slice of at most 65535 batch entries and 65535*32 columns (the y and z
 * grid limits of CUDA), each group computing a 32 x 32 tile of C with 16 x 16 threads. C aliasing A or B is
 * read from a staged copy (BLAS forbids the alias; CpuBackend snapshots too).
 */
final class KernelGemm {
    /** Output tile of one group (GEMM_TM = GEMM_TN in gemm.kc) and its 16 x 16 threads. */
    static final int TILE = 32;
    static final int THREADS = 16;
    static final int MAX_GRID_YZ = 65535;

    private final KernelBackend be;

    KernelGemm(KernelBackend be) {
        this.be = be;
    }

    void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                     Tensor a, long offA, int lda, long strideA,
                     Tensor b, long offB, int ldb, long strideB,
                     float beta, Tensor c, long offC, int ldc, long strideC) {
        String op = "gemmBatched";
        be.math(op, a);
        be.math(op, b);
        DeviceBuffer cb = be.math(op, c);
        OpChecks.gemmSizes(op, batch, m, n, k, a, b, c);
        OpChecks.gemmOperand(op, "A", a, transA, m, k, offA, lda, strideA, batch);
        OpChecks.gemmOperand(op, "B", b, transB, k, n, offB, ldb, strideB, batch);
        OpChecks.gemmOperand(op, "C", c, false, m, n, offC, ldc, strideC, batch);
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        Tensor sa = a == c ? be.stagedCopy(a) : null;
        Tensor sb = b == c ? be.stagedCopy(b) : null;
        try {
            DeviceBuffer ab = be.buffer(op, sa != null ? sa : a);
            DeviceBuffer bb = be.buffer(op, sb != null ? sb : b);
            int kEff = alpha == 0f ? 0 : k;   // alpha == 0: A and B are not read (BLAS)
            int rowGroups = KernelBackend.ceilDiv(m, TILE);
            for (int b0 = 0; b0 < batch; b0 += MAX_GRID_YZ) {
                int bc = Math.min(MAX_GRID_YZ, batch - b0);
                for (long j0 = 0; j0 < n; j0 += (long) MAX_GRID_YZ * TILE) {
                    int nc = (int) Math.min((long) MAX_GRID_YZ * TILE, n - j0);
                    long oa = offA + b0 * strideA;
                    long ob = offB + b0 * strideB + (transB ? j0 * ldb : j0);
                    long oc = offC + b0 * strideC + j0;
                    be.launch("gemm_fwd_kernel1",
                            Dim3.of(rowGroups, KernelBackend.ceilDiv(nc, TILE), bc), Dim3.of(THREADS, THREADS, 1),
                            ab, KernelBackend.code(a), bb, KernelBackend.code(b), cb, KernelBackend.code(c),
                            transA ? 1 : 0, transB ? 1 : 0, m, nc, kEff, alpha, beta,
                            oa, lda, strideA, ob, ldb, strideB, oc, ldc, strideC);
                }
            }
        } finally {
            if (sa != null) {
                sa.close();
            }
            if (sb != null) {
                sb.close();
            }
        }
    }
}
