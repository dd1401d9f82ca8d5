package ai.lorakit.gpu.blas;

/**
 * cuBLAS as lorakit uses it: column-major strided-batched GEMM with fp32 accumulation on one CUDA stream, all
 * pointers raw device addresses. Two implementations: {@link FfmCublas} (Panama FFM into whichever
 * libcublas.so.13/.12 {@link LibraryLocator} finds) and {@link JCublas2Blas} (JCuda's JCublas2, where it loads).
 * {@link RowMajorGemm} maps lorakit's row-major GEMM onto it.
 *
 * <p>Types are cudaDataType values ({@link #R_32F}, {@link #R_16F}, {@link #R_16BF}); supported: A and B of one type,
 * C of that type or fp32; compute type CUBLAS_COMPUTE_32F (fp32 accumulation, no TF32: results match the fp32
 * reference). Calls are asynchronous on the stream; a failed call throws naming it and the cublasStatus_t.
 */
public interface Blas extends AutoCloseable {
    /** cudaDataType_t values. */
    int R_32F = 0;
    int R_16F = 2;
    int R_16BF = 14;
    /** cublasComputeType_t CUBLAS_COMPUTE_32F. */
    int COMPUTE_32F = 68;
    /** cublasGemmAlgo_t CUBLAS_GEMM_DEFAULT. */
    int GEMM_DEFAULT = -1;

    /** Which library, version and binding, e.g. "cuBLAS 13.0.2 via FFM (/usr/lib/.../libcublas.so.13)". */
    String description();

    /** Queues later calls on this CUstream (0 = the legacy default stream). */
    void setStream(long stream);

    /** A workspace of {@code bytes} bytes at {@code address} (needed for CUDA-graph capture; cublasSetWorkspace). */
    void setWorkspace(long address, long bytes);

    /**
     * For i in [0, batch): C_i = alpha op(A_i) op(B_i) + beta C_i, column-major (cuBLAS semantics). m, n, k, lda, ldb,
     * ldc as cuBLAS; strides in elements (ignored when batch == 1).
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha,
              long a, int typeA, int lda, long strideA,
              long b, int typeB, int ldb, long strideB,
              float beta, long c, int typeC, int ldc, long strideC, int batch);

    @Override
    void close();

    /** "CUBLAS_STATUS_INVALID_VALUE" for 7. */
    static String statusName(int status) {
        return switch (status) {
            case 0 -> "CUBLAS_STATUS_SUCCESS";
            case 1 -> "CUBLAS_STATUS_NOT_INITIALIZED";
            case 3 -> "CUBLAS_STATUS_ALLOC_FAILED";
            case 7 -> "CUBLAS_STATUS_INVALID_VALUE";
            case 8 -> "CUBLAS_STATUS_ARCH_MISMATCH";
            case 11 -> "CUBLAS_STATUS_MAPPING_ERROR";
            case 13 -> "CUBLAS_STATUS_EXECUTION_FAILED";
            case 14 -> "CUBLAS_STATUS_INTERNAL_ERROR";
            case 15 -> "CUBLAS_STATUS_NOT_SUPPORTED";
            case 16 -> "CUBLAS_STATUS_LICENSE_ERROR";
            default -> "CUBLAS_STATUS_" + status;
        };
    }
}
