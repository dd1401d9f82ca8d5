package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.jcuda.JCudaHandles;
import jcuda.CudaException;
import jcuda.Pointer;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;
import jcuda.jcublas.JCublas2;
import jcuda.jcublas.cublasHandle;
import jcuda.runtime.cudaStream_t;

/**
 * cuBLAS through JCuda's JCublas2 (the JCuda device's natural partner). JCublas2 12.6.0's JNI library links
 * libcublas.so.12 with versioned symbols, so it loads only where a CUDA 12 cuBLAS is on the loader path or was loaded
 * first ({@link #open} preloads a located libcublas.so.12 through FFM so the JNI library finds it by soname); with
 * only CUDA 13 libraries it throws UnsatisfiedLinkError and the FFM binding is used instead (TOOLCHAIN.md). alpha and
 * beta live in two Java arrays behind Pointers made once.
 */
public final class JCublas2Blas implements Blas {
    private final cublasHandle handle = new cublasHandle();
    private final float[] alpha = new float[1];
    private final float[] beta = new float[1];
    private final Pointer alphaPtr = Pointer.to(alpha);
    private final Pointer betaPtr = Pointer.to(beta);
    private final int version;
    private boolean closed;

    private JCublas2Blas() {
        JCublas2.setExceptionsEnabled(true);   // loads libJCublas2 (needs libcublas.so.12)
        try {
            check(JCublas2.cublasCreate(handle), "cublasCreate");
            int[] v = new int[1];
            check(JCublas2.cublasGetVersion(handle, v), "cublasGetVersion");
            this.version = v[0];
        } catch (CudaException e) {
            throw new GpuException("JCublas2 cublasCreate failed: " + e.getMessage(), e);
        }
    }

    /**
     * Opens JCublas2 in the current context. {@code preload} (a libcublas.so.12 candidate with a path, or null) is
     * loaded first through FFM. Throws GpuException (a missing libcublas.so.12 included: the LinkageError is caught).
     */
    public static JCublas2Blas open(LibraryLocator.Candidate preload) {
        try {
            if (preload != null && preload.path() != null && preload.major() == 12) {
                FfmCublas.load(preload);   // libcublasLt.so.12 and libcublas.so.12 stay loaded
            }
            return new JCublas2Blas();
        } catch (LinkageError e) {
            throw new GpuException("JCublas2 natives failed to load (" + e.getClass().getSimpleName() + ": "
                    + e.getMessage() + "); JCublas2 12.6.0 needs libcublas.so.12", e);
        }
    }

    private static void check(int status, String call) {
        if (status != 0) {
            throw new GpuException(call + " failed: " + Blas.statusName(status) + " (" + status + ")");
        }
    }

    @Override
    public String description() {
        return "cuBLAS " + (version / 10000) + "." + (version / 100 % 100) + "." + (version % 100)
                + " via JCublas2 (libcublas.so.12)";
    }

    private static CUdeviceptr ptr(long address) {
        return JCudaHandles.wrap(new CUdeviceptr(), address);
    }

    private void checkOpen(String call) {
        if (closed) {
            throw new GpuException(call + ": the cuBLAS handle was closed");
        }
    }

    @Override
    public void setStream(long stream) {
        checkOpen("cublasSetStream");
        try {
            check(JCublas2.cublasSetStream(handle, new cudaStream_t(JCudaHandles.wrap(new CUstream(), stream))),
                    "cublasSetStream");
        } catch (CudaException e) {
            throw new GpuException("cublasSetStream failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void setWorkspace(long address, long bytes) {
        checkOpen("cublasSetWorkspace");
        try {
            check(JCublas2.cublasSetWorkspace(handle, ptr(address), bytes), "cublasSetWorkspace");
        } catch (CudaException e) {
            throw new GpuException("cublasSetWorkspace failed: " + e.getMessage(), e);
        }
    }

    @Override
    public void gemm(boolean transA, boolean transB, int m, int n, int k, float alphaValue,
                     long a, int typeA, int lda, long strideA,
                     long b, int typeB, int ldb, long strideB,
                     float betaValue, long c, int typeC, int ldc, long strideC, int batch) {
        checkOpen("cublasGemm");
        alpha[0] = alphaValue;
        beta[0] = betaValue;
        int ta = transA ? 1 : 0;
        int tb = transB ? 1 : 0;
        boolean f32 = typeA == R_32F && typeB == R_32F && typeC == R_32F;
        String call = f32 ? (batch == 1 ? "cublasSgemm" : "cublasSgemmStridedBatched")
                : (batch == 1 ? "cublasGemmEx" : "cublasGemmStridedBatchedEx");
        try {
            int st;
            if (f32 && batch == 1) {
                st = JCublas2.cublasSgemm(handle, ta, tb, m, n, k, alphaPtr, ptr(a), lda, ptr(b), ldb, betaPtr, ptr(c), ldc);
            } else if (f32) {
                st = JCublas2.cublasSgemmStridedBatched(handle, ta, tb, m, n, k, alphaPtr, ptr(a), lda, strideA, ptr(b),
                        ldb, strideB, betaPtr, ptr(c), ldc, strideC, batch);
            } else if (batch == 1) {
                st = JCublas2.cublasGemmEx_new(handle, ta, tb, m, n, k, alphaPtr, ptr(a), typeA, lda, ptr(b), typeB, ldb,
                        betaPtr, ptr(c), typeC, ldc, COMPUTE_32F, GEMM_DEFAULT);
            } else {
                st = JCublas2.cublasGemmStridedBatchedEx_new(handle, ta, tb, m, n, k, alphaPtr, ptr(a), typeA, lda,
                        strideA, ptr(b), typeB, ldb, strideB, betaPtr, ptr(c), typeC, ldc, strideC, batch, COMPUTE_32F,
                        GEMM_DEFAULT);
            }
            check(st, call);
        } catch (CudaException e) {
            throw new GpuException(call + "(m=" + m + ", n=" + n + ", k=" + k + ", batch=" + batch + ") failed: "
                    + e.getMessage(), e);
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            try {
                check(JCublas2.cublasDestroy(handle), "cublasDestroy");
            } catch (CudaException e) {
                throw new GpuException("cublasDestroy failed: " + e.getMessage(), e);
            }
        }
    }
}
