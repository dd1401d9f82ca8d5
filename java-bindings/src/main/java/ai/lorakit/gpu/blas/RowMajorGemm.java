package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.DType;

/**
 * lorakit's row-major GEMM ({@code Backend#gemmBatched}) on column-major cuBLAS, by the usual swap: a row-major
 * [r,c] matrix with row pitch ld is, read column-major, its transpose [c,r] with the same ld. So
 * <pre>C[m,n] = op(A)[m,k] op(B)[k,n]   (row-major)</pre>
 * is computed as
 * <pre>C^T[n,m] = op(B)^T[n,k] op(A)^T[k,m]   (column-major)</pre>
 * i.e. cuBLAS gets (transB, transA, n, m, k, B, ldb, A, lda, C, ldc): the operands swap places and keep their own
 * transpose flags and pitches. {@link #plan} is that mapping as data (tested on the CPU against a column-major
 * reference); {@link #run} applies it.
 */
public final class RowMajorGemm {

    /** One column-major cuBLAS call: C = alpha op(A) op(B) + beta C, A [m,k] after op, B [k,n], C [m,n]. */
    public record Plan(boolean transA, boolean transB, int m, int n, int k,
                       long a, int lda, long strideA, long b, int ldb, long strideB, long c, int ldc, long strideC) {
    }

    private RowMajorGemm() {
    }

    /**
     * The column-major call for the row-major one (pointers and offsets as given: elements or bytes alike, they are
     * only moved around).
     */
    public static Plan plan(boolean transA, boolean transB, int m, int n, int k,
                            long a, int lda, long strideA, long b, int ldb, long strideB, long c, int ldc, long strideC) {
        return new Plan(transB, transA, n, m, k, b, ldb, strideB, a, lda, strideA, c, ldc, strideC);
    }

    /** The cudaDataType of a storage dtype, or -1 where cuBLAS has none for GEMM (I32). */
    public static int cudaType(DType t) {
        return switch (t) {
            case F32 -> Blas.R_32F;
            case BF16 -> Blas.R_16BF;
            case F16 -> Blas.R_16F;
            case I32 -> -1;
        };
    }

    /** Whether cuBLAS runs this dtype combination with fp32 compute: A, B alike (F32/BF16/F16), C the same or F32. */
    public static boolean supports(DType a, DType b, DType c) {
        return a == b && a != DType.I32 && (c == a || c == DType.F32);
    }

    /**
     * Runs row-major C_i[m,n] = alpha op(A_i) op(B_i) + beta C_i on {@code blas}: addresses are the tensors' base
     * device addresses, offsets and strides in elements (as Backend#gemmBatched).
     */
    public static void run(Blas blas, int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                           long a, DType ta, long offA, int lda, long strideA,
                           long b, DType tb, long offB, int ldb, long strideB,
                           float beta, long c, DType tc, long offC, int ldc, long strideC) {
        Plan p = plan(transA, transB, m, n, k,
                a + offA * ta.bytes(), lda, strideA, b + offB * tb.bytes(), ldb, strideB,
                c + offC * tc.bytes(), ldc, strideC);
        // after the swap the first operand is lorakit's B
        blas.gemm(p.transA(), p.transB(), p.m(), p.n(), p.k(), alpha,
                p.a(), cudaType(tb), p.lda(), p.strideA(),
                p.b(), cudaType(ta), p.ldb(), p.strideB(),
                beta, p.c(), cudaType(tc), p.ldc(), p.strideC(), batch);
    }
}
