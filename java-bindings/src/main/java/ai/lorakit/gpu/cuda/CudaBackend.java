package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.blas.Blas;
import ai.lorakit.gpu.blas.Blases;
import ai.lorakit.gpu.blas.RowMajorGemm;
import ai.lorakit.gpu.cuda.fast.FusedKernelsTier;
import ai.lorakit.gpu.kernel.KernelBackend;

import java.lang.foreign.MemorySegment;
import java.util.List;

/**
 * The {@code cuda-ffm} and {@code cuda-jcuda} backends: {@link KernelBackend} (the portable kernels, shared with
 * OpenCL) on a {@link CudaDevice}, plus what only CUDA has. Per op, in order:
 * <ol>
 *   <li>the fast tier ({@link FusedKernelsTier}: the hand-written kernels of cuda-kernels/cuda/*.cu), for the ops it
 *       accelerates, which are exactly the ones this class overrides besides the GEMM; it declines (returns false)
 *       any call it does not fully handle;</li>
 *   <li>for GEMMs, cuBLAS ({@link Blases}: JCublas2 or FFM over libcublas.so.13/.12) with fp32 accumulation, when the
 *       dtypes are a cuBLAS combination (A, B alike; C alike or F32) and C aliases neither operand;</li>
 *   <li>the portable kernels ({@code super}), which also produce every error message.</li>
 * </ol>
 * Without cuBLAS the portable GEMM kernel runs and {@link #description()} says why.
 *
 * <p>CUDA graphs: {@link #capture} records a whole training step (forward, backward, optimizer) once per shape and
 * {@link CudaGraph#replay()} runs it with one launch (see CudaGraph for what must stay fixed). cuBLAS runs on the
 * default stream with a workspace of its own, so it is captured too.
 *
 * <p>Interop: {@link #wrap(long, DType, int...)} and {@link #wrap(MemorySegment, DType, int...)} make a tensor of a
 * user's device memory without a copy; {@link #address(String, Tensor)} gives a tensor's device address to user
 * kernels. Open the device on the user's stream (e.g. {@code JCudaDevice.open(0, stream)}) to run in order with it.
 */
public class CudaBackend extends KernelBackend {
    /** cuBLAS workspace (cublasSetWorkspace; CUDA-graph safe). 32 MiB as NVIDIA recommends for Hopper. */
    static final long BLAS_WORKSPACE_BYTES = 32L << 20;
    /** System property: "false" turns the fast tier off (the portable kernels and cuBLAS alone: STYLE.md 12.1). */
    public static final String FAST_TIER_PROPERTY = "lorakit.cuda.fastTier";

    private final CudaDevice cuda;
    private final Blas blas;
    private final String blasNote;
    private final DeviceBuffer workspace;
    /** The fast tier, or null when it is off. */
    private final FusedKernelsTier fast;
    private boolean closing;

    /**
     * A backend named {@code name} on {@code device} with cuBLAS and the fast tier (unless {@value #FAST_TIER_PROPERTY}
     * is "false"); owns the device if asked.
     */
    public CudaBackend(CudaDevice device, String name, boolean ownsDevice) {
        this(device, name, ownsDevice, fastTierEnabled(), true);
    }

    /**
     * As above with {@code fastTier} false to run the portable kernels for every op and {@code cublas} false to skip
     * cuBLAS (the portable GEMM kernel then runs; tests, and A/B comparisons on the GPU).
     */
    @SuppressWarnings("this-escape")   // the tier receives the backend after its own fields are set
    public CudaBackend(CudaDevice device, String name, boolean ownsDevice, boolean fastTier, boolean cublas) {
        super(device, name, ownsDevice);
        this.cuda = device;
        Blas b = null;
        DeviceBuffer ws = null;
        String note;
        try {
            device.makeCurrent();
            Blases.Result r = cublas ? Blases.open(device.driver().binding().equals("jcuda"), device.driverVersion())
                    : new Blases.Result(null, "cuBLAS not requested");
            b = r.blas();
            note = r.note();
            if (b != null) {
                ws = device.alloc(BLAS_WORKSPACE_BYTES);
                b.setStream(device.stream());
                b.setWorkspace(((CudaBuffer) ws).address(), ws.bytes());
            }
        } catch (RuntimeException e) {
            if (b != null) {
                b.close();
            }
            super.close();
            throw e;
        }
        this.blas = b;
        this.blasNote = note;
        this.workspace = ws;
        FusedKernelsTier t = null;
        try {
            t = fastTier ? new FusedKernelsTier(this) : null;
        } catch (RuntimeException e) {
            close();
            throw e;
        }
        this.fast = t;
    }

    /** Whether {@value #FAST_TIER_PROPERTY} leaves the fast tier on (anything but "false"). */
    public static boolean fastTierEnabled() {
        return !"false".equalsIgnoreCase(System.getProperty(FAST_TIER_PROPERTY));
    }

    /** Opens a backend owning {@code device}, closing the device if the backend cannot be built. */
    public static CudaBackend open(CudaDevice device, String name) {
        try {
            return new CudaBackend(device, name, true);
        } catch (RuntimeException | Error e) {
            try {
                device.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** The device, its cuBLAS, and its fast tier, e.g. for {@code lorakit info} and benchmark records. */
    public String description() {
        return name() + " on " + cuda.description() + "; GEMM: "
                + (blas != null ? blasNote : "portable kernel (" + blasNote + ")")
                + "; fast tier: " + (fast == null ? "none" : FusedKernelsTier.NAME);
    }

    @Override
    public String toString() {
        return "CudaBackend[" + name() + " on " + cuda.name() + "]";
    }

    public CudaDevice cudaDevice() {
        return cuda;
    }

    /** cuBLAS on the default stream, or null when none was found ({@link #description()} says why). */
    public Blas blas() {
        return blas;
    }

    /** A kernel of the fatbin by its {@code extern "C"} name (portable or fast tier). */
    public Kernel kernel(String name) {
        return module().kernel(name);
    }

    /** Launches a kernel of the fatbin on the default stream (args: DeviceBuffer, Integer, Float, Long). */
    public void launchKernel(String name, Dim3 grid, Dim3 block, Object... args) {
        cuda.launch(module().kernel(name), grid, block, args);
    }

    /** The device address of an open tensor of this backend (checked as every op checks it). */
    public long address(String op, Tensor t) {
        return ((CudaBuffer) deviceBuffer(op, t)).address();
    }

    /** The raw CUstream everything is queued on (the device's default queue). */
    public long stream() {
        return cuda.stream();
    }

    // ================================================================ interop

    /**
     * A tensor over {@code dtype.bytes() * numel(shape)} bytes of existing device memory at {@code address} (a user's
     * allocation in this device's primary context), without a copy. Closing the tensor does not free the memory.
     * The address must be a multiple of the element size; one that is not 16-byte aligned is valid, and the fast
     * tier then runs the portable kernels for it.
     */
    public Tensor wrap(long address, DType dtype, int... shape) {
        if (dtype == null) {
            throw new ShapeException("wrap: dtype is null");
        }
        if (address % dtype.bytes() != 0) {
            throw new ShapeException("wrap: address 0x" + Long.toHexString(address) + " is not a multiple of "
                    + dtype.bytes() + " bytes, the size of a " + dtype + " element; every kernel reads whole elements,"
                    + " so pass an element-aligned address (16-byte aligned for the fast tier's vector kernels)");
        }
        long bytes = Tensor.numel(shape) * dtype.bytes();
        return adopt(cuda.borrow(address, bytes), dtype, shape);
    }

    /**
     * {@link #wrap(long, DType, int...)} for an address held in a MemorySegment (e.g. from a downcall that returned a
     * device pointer). A segment with a size must be large enough; a zero-length segment (MemorySegment.ofAddress)
     * carries only the address.
     */
    public Tensor wrap(MemorySegment deviceMemory, DType dtype, int... shape) {
        long need = Tensor.numel(shape) * (dtype == null ? 1 : dtype.bytes());
        if (deviceMemory.byteSize() != 0 && deviceMemory.byteSize() < need) {
            throw new ShapeException("wrap: " + dtype + java.util.Arrays.toString(shape) + " needs " + need
                    + " bytes, the segment has " + deviceMemory.byteSize());
        }
        return wrap(deviceMemory.address(), dtype, shape);
    }

    // ================================================================ CUDA graphs

    /**
     * Captures {@code step} (everything it queues on this backend) into a CUDA graph; nothing runs during the capture.
     * Run the step once eagerly first so that lazily created buffers (scratch space, persistent tensors) exist;
     * temporaries the step creates and closes become graph memory nodes. See {@link CudaGraph} for the rules.
     */
    public CudaGraph capture(Runnable step) {
        checkOpenPublic("capture");
        return cuda.capture(step);
    }

    private void checkOpenPublic(String op) {
        OpChecks.backendOpen(op, this, closing || cuda.isClosed());
    }

    // ================================================================ GEMM: cuBLAS, portable

    @Override
    public void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                            Tensor a, long offA, int lda, long strideA,
                            Tensor b, long offB, int ldb, long strideB,
                            float beta, Tensor c, long offC, int ldc, long strideC) {
        if (blas != null && cublasGemm(batch, transA, transB, m, n, k, alpha, a, offA, lda, strideA, b, offB, ldb,
                strideB, beta, c, offC, ldc, strideC)) {
            return;
        }
        super.gemmBatched(batch, transA, transB, m, n, k, alpha, a, offA, lda, strideA, b, offB, ldb, strideB,
                beta, c, offC, ldc, strideC);
    }

    /** The cuBLAS path; false (nothing done) when the portable kernel must run (dtypes, aliasing, invalid args). */
    private boolean cublasGemm(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                               Tensor a, long offA, int lda, long strideA,
                               Tensor b, long offB, int ldb, long strideB,
                               float beta, Tensor c, long offC, int ldc, long strideC) {
        if (a == null || b == null || c == null || a == c || b == c || a.isClosed() || b.isClosed() || c.isClosed()
                || !RowMajorGemm.supports(a.dtype(), b.dtype(), c.dtype())) {
            return false;
        }
        String op = "gemmBatched";
        long pa;
        long pb;
        long pc;
        try {
            pa = address(op, a);
            pb = address(op, b);
            pc = address(op, c);
            OpChecks.gemmSizes(op, batch, m, n, k, a, b, c);
            OpChecks.gemmOperand(op, "A", a, transA, m, k, offA, lda, strideA, batch);
            OpChecks.gemmOperand(op, "B", b, transB, k, n, offB, ldb, strideB, batch);
            OpChecks.gemmOperand(op, "C", c, false, m, n, offC, ldc, strideC, batch);
        } catch (RuntimeException e) {
            return false;   // the portable path reports it with the standard message
        }
        if (batch == 0 || m == 0 || n == 0) {
            return true;
        }
        RowMajorGemm.run(blas, batch, transA, transB, m, n, k, alpha,
                pa, a.dtype(), offA, Math.max(1, lda), strideA,
                pb, b.dtype(), offB, Math.max(1, ldb), strideB,
                beta, pc, c.dtype(), offC, Math.max(1, ldc), strideC);
        return true;
    }

    // ================================================================ fast tier (then the portable kernels)

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        if (fast != null && fast.adamw(param, grad, m, v, hp)) {
            return;
        }
        super.adamw(param, grad, m, v, hp);
    }

    @Override
    public void adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs,
                             List<AdamW> hps, Tensor stats, int normAt, float maxNorm) {
        OpChecks.adamwLists("adamwClipped", params, grads, ms, vs, hps, stats, normAt);
        if (fast != null && fast.adamwClipped(params, grads, ms, vs, hps, stats, normAt, maxNorm)) {
            return;
        }
        super.adamwClipped(params, grads, ms, vs, hps, stats, normAt, maxNorm);
    }

    @Override
    public void loraStage(Tensor a, Tensor b, float s, LoraMargins g, Tensor w, Tensor bias, Tensor aStage,
                          Tensor sbStage, Tensor wm) {
        if (fast != null && fast.loraStage(a, b, s, g, w, bias, aStage, sbStage, wm)) {
            return;
        }
        super.loraStage(a, b, s, g, w, bias, aStage, sbStage, wm);
    }

    @Override
    public void loraLinearForwardStaged(Tensor x, Tensor a, LoraMargins g, Tensor aStage, Tensor wm, Tensor xm,
                                        Tensor y) {
        if (fast != null && fast.loraLinearForwardStaged(x, a, g, aStage, wm, xm, y)) {
            return;
        }
        super.loraLinearForwardStaged(x, a, g, aStage, wm, xm, y);
    }

    @Override
    public void loraLinearBackward(Tensor dy, Tensor b, float s, LoraMargins g, Tensor sbStage, Tensor wm,
                                   Tensor xm, Tensor dym, Tensor dx, Tensor dA, Tensor dB) {
        if (fast != null && fast.loraLinearBackward(dy, b, s, g, sbStage, wm, xm, dym, dx, dA, dB)) {
            return;
        }
        super.loraLinearBackward(dy, b, s, g, sbStage, wm, xm, dym, dx, dA, dB);
    }

    @Override
    public void deltaLoraUpdateMaster(Tensor w, Tensor master, boolean fanInFanOut, float c, Tensor bNew,
                                      Tensor aNew, Tensor bOld, Tensor aOld) {
        if (fast != null && fast.deltaLoraUpdateMaster(w, master, fanInFanOut, c, bNew, aNew, bOld, aOld)) {
            return;
        }
        super.deltaLoraUpdateMaster(w, master, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    @Override
    public void doraWeightNorm(Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s, Tensor n) {
        if (fast != null && fast.doraWeightNorm(w, fanInFanOut, a, b, s, n)) {
            return;
        }
        super.doraWeightNorm(w, fanInFanOut, a, b, s, n);
    }

    @Override
    public void doraScale(Tensor z, Tensor k, Tensor bias, Tensor y) {
        if (fast != null && fast.doraScale(z, k, bias, y)) {
            return;
        }
        super.doraScale(z, k, bias, y);
    }

    @Override
    public void doraScaleBackward(Tensor dy, Tensor z, Tensor k, Tensor n, Tensor dz, Tensor dm) {
        if (fast != null && fast.doraScaleBackward(dy, z, k, n, dz, dm)) {
            return;
        }
        super.doraScaleBackward(dy, z, k, n, dz, dm);
    }

    @Override
    public void veraForward(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB,
                            Tensor u, Tensor v, Tensor y) {
        if (fast != null && fast.veraForward(x, sharedA, sharedB, lambdaD, lambdaB, u, v, y)) {
            return;
        }
        super.veraForward(x, sharedA, sharedB, lambdaD, lambdaB, u, v, y);
    }

    @Override
    public void deltaLoraUpdate(Tensor w, boolean fanInFanOut, float c, Tensor bNew, Tensor aNew, Tensor bOld,
                                Tensor aOld) {
        if (fast != null && fast.deltaLoraUpdate(w, fanInFanOut, c, bNew, aNew, bOld, aOld)) {
            return;
        }
        super.deltaLoraUpdate(w, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    // ================================================================ close

    /** Closes the fast tier, cuBLAS and its workspace, then the kernel backend (and the device if owned). */
    @Override
    public void close() {
        if (closing) {
            return;
        }
        closing = true;
        RuntimeException first = null;
        if (fast != null) {
            try {
                fast.close();
            } catch (RuntimeException e) {
                first = e;
            }
        }
        if (!cuda.isClosed()) {
            try {
                if (blas != null) {
                    cuda.makeCurrent();
                    cuda.synchronize();
                    blas.close();
                }
                if (workspace != null) {
                    workspace.close();
                }
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
        }
        try {
            super.close();
        } catch (RuntimeException e) {
            if (first == null) {
                first = e;
            } else {
                first.addSuppressed(e);
            }
        }
        if (first != null) {
            throw first;
        }
    }
}
