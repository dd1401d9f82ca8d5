package ai.lorakit.gpu.jcuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUstream;

/**
 * Dropping lorakit into an existing JCuda pipeline: a backend that queues on the pipeline's CUstream, tensors over the
 * pipeline's CUdeviceptr allocations (no copy), and CUdeviceptrs of lorakit's tensors for the pipeline's own kernels.
 * The pipeline must allocate in the device's PRIMARY context (cuDevicePrimaryCtxRetain, or the CUDA runtime API),
 * not a context of its own from cuCtxCreate: memory of another context is rejected when wrapped.
 *
 * <pre>{@code
 * CUstream stream = ...;                    // the pipeline's stream (primary context)
 * CUdeviceptr x = ...;                      // [N, in] bf16 activations produced by the pipeline
 * try (CudaBackend be = JCudaInterop.backend(0, stream)) {
 *     Tensor xt = JCudaInterop.wrap(be, x, DType.BF16, n, in);    // no copy
 *     LoraMargins g = new LoraMargins(in, out, r, false, false);  // W bf16 [out,in]; A [r,in], B [out,r] fp32
 *     Tensor aStage = be.zeros(DType.BF16, r, in), sbStage = be.zeros(DType.BF16, out, r);
 *     Tensor wm = be.zeros(DType.BF16, g.wmRows(), g.ldw()), xm = be.zeros(DType.BF16, n, g.ldx());
 *     Tensor y = be.zeros(DType.BF16, n, out);
 *     be.loraStage(a, b, scaling, g, w, null, aStage, sbStage, wm);   // again whenever A, B or W change
 *     be.loraLinearForwardStaged(xt, a, g, aStage, wm, xm, y);   // fast-tier shrink + one cuBLAS GEMM
 *     CUdeviceptr yPtr = JCudaInterop.pointer(be, y);             // hand back to the pipeline, same stream
 * }
 * }</pre>
 */
public final class JCudaInterop {
    private JCudaInterop() {
    }

    /** A {@code cuda-jcuda} backend on device {@code ordinal} whose work is queued on {@code stream}. */
    public static CudaBackend backend(int ordinal, CUstream stream) {
        return CudaBackend.open(JCudaDevice.open(ordinal, stream), "cuda-jcuda");
    }

    /** A tensor over the memory {@code ptr} points at (numel * dtype bytes), without a copy; close() does not free it. */
    public static Tensor wrap(CudaBackend backend, CUdeviceptr ptr, DType dtype, int... shape) {
        return backend.wrap(JCudaHandles.address(ptr), dtype, shape);
    }

    /** A CUdeviceptr to an open tensor of {@code backend} (valid while the tensor is open). */
    public static CUdeviceptr pointer(CudaBackend backend, Tensor t) {
        return JCudaHandles.wrap(new CUdeviceptr(), backend.address("pointer", t));
    }

    /** The CUstream the backend queues on. */
    public static CUstream stream(CudaBackend backend) {
        return JCudaHandles.wrap(new CUstream(), backend.stream());
    }
}
