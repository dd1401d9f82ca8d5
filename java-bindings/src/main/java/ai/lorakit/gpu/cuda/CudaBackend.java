package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.blas.Blas;
import ai.lorakit.gpu.blas.Blases;
import ai.lorakit.gpu.blas.RowMajorGemm;
import ai.lorakit.gpu.kernel.KernelBackend;

import java.lang.foreign.MemorySegment;
import java.util.ArrayList;
import java.util.List;
import java.util.OptionalDouble;
import java.util.OptionalLong;

/**
 * The {@code cuda-ffm} and {@code cuda-jcuda} backends: {@link KernelBackend} (the portable kernels, shared with
 * OpenCL) on a {@link CudaDevice}, plus what only CUDA has. Per op, in order:
 * <ol>
 *   <li>the fast tier: every {@link FastTier} the installed {@link FastTierProvider}s opened for this backend;</li>
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

    private final CudaDevice cuda;
    private final Blas blas;
    private final String blasNote;
    private final DeviceBuffer workspace;
    private final List<FastTier> tiers = new ArrayList<>();
    private final List<String> tierNames = new ArrayList<>();
    private boolean closing;

    /** A backend named {@code name} on {@code device} with the installed fast-tier providers; owns the device if asked. */
    public CudaBackend(CudaDevice device, String name, boolean ownsDevice) {
        this(device, name, ownsDevice, FastTierProvider.installed(), true);
    }

    /**
     * As above with an explicit provider list (an empty list = no fast tier) and {@code cublas} false to skip cuBLAS
     * (the portable GEMM kernel then runs; tests, and A/B comparisons on the GPU).
     */
    @SuppressWarnings("this-escape")   // providers receive the backend after its own fields are set
    public CudaBackend(CudaDevice device, String name, boolean ownsDevice, List<FastTierProvider> providers,
                       boolean cublas) {
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
        try {
            for (FastTierProvider p : providers) {
                tiers.add(p.open(this));
                tierNames.add(p.name());
            }
        } catch (RuntimeException e) {
            close();
            throw e;
        }
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
                + "; fast tier: " + (tierNames.isEmpty() ? "none" : String.join(", ", tierNames));
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

    // ================================================================ GEMM: fast tier, cuBLAS, portable

    @Override
    public void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                            Tensor a, long offA, int lda, long strideA,
                            Tensor b, long offB, int ldb, long strideB,
                            float beta, Tensor c, long offC, int ldc, long strideC) {
        for (FastTier t : tiers) {
            if (t.gemmBatched(batch, transA, transB, m, n, k, alpha, a, offA, lda, strideA, b, offB, ldb, strideB,
                    beta, c, offC, ldc, strideC)) {
                return;
            }
        }
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

    // ================================================================ fast-tier hooks (then the portable kernels)

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        for (FastTier t : tiers) {
            if (t.add(a, b, out)) {
                return;
            }
        }
        super.add(a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        for (FastTier t : tiers) {
            if (t.mul(a, b, out)) {
                return;
            }
        }
        super.mul(a, b, out);
    }

    @Override
    public void scale(Tensor x, float alpha, Tensor out) {
        for (FastTier t : tiers) {
            if (t.scale(x, alpha, out)) {
                return;
            }
        }
        super.scale(x, alpha, out);
    }

    @Override
    public void axpby(float alpha, Tensor x, float beta, Tensor y) {
        for (FastTier t : tiers) {
            if (t.axpby(alpha, x, beta, y)) {
                return;
            }
        }
        super.axpby(alpha, x, beta, y);
    }

    @Override
    public void addRowVector(Tensor a, Tensor v, Tensor out) {
        for (FastTier t : tiers) {
            if (t.addRowVector(a, v, out)) {
                return;
            }
        }
        super.addRowVector(a, v, out);
    }

    @Override
    public void mulRowVector(Tensor a, Tensor v, Tensor out) {
        for (FastTier t : tiers) {
            if (t.mulRowVector(a, v, out)) {
                return;
            }
        }
        super.mulRowVector(a, v, out);
    }

    @Override
    public void mulColVector(Tensor a, Tensor v, Tensor out) {
        for (FastTier t : tiers) {
            if (t.mulColVector(a, v, out)) {
                return;
            }
        }
        super.mulColVector(a, v, out);
    }

    @Override
    public void transpose(Tensor a, Tensor out) {
        for (FastTier t : tiers) {
            if (t.transpose(a, out)) {
                return;
            }
        }
        super.transpose(a, out);
    }

    @Override
    public void dropoutMask(Tensor mask, float p, long seed) {
        for (FastTier t : tiers) {
            if (t.dropoutMask(mask, p, seed)) {
                return;
            }
        }
        super.dropoutMask(mask, p, seed);
    }

    @Override
    public void sumRows(Tensor a, float beta, Tensor out) {
        for (FastTier t : tiers) {
            if (t.sumRows(a, beta, out)) {
                return;
            }
        }
        super.sumRows(a, beta, out);
    }

    @Override
    public void rowDot(Tensor a, Tensor b, Tensor out) {
        for (FastTier t : tiers) {
            if (t.rowDot(a, b, out)) {
                return;
            }
        }
        super.rowDot(a, b, out);
    }

    @Override
    public double sum(Tensor a) {
        for (FastTier t : tiers) {
            OptionalDouble r = t.sum(a);
            if (r.isPresent()) {
                return r.getAsDouble();
            }
        }
        return super.sum(a);
    }

    @Override
    public double dot(Tensor a, Tensor b) {
        for (FastTier t : tiers) {
            OptionalDouble r = t.dot(a, b);
            if (r.isPresent()) {
                return r.getAsDouble();
            }
        }
        return super.dot(a, b);
    }

    @Override
    public long countNonFinite(Tensor a) {
        for (FastTier t : tiers) {
            OptionalLong r = t.countNonFinite(a);
            if (r.isPresent()) {
                return r.getAsLong();
            }
        }
        return super.countNonFinite(a);
    }

    @Override
    public void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean, Tensor rstd) {
        for (FastTier t : tiers) {
            if (t.layerNormForward(x, gamma, beta, eps, out, mean, rstd)) {
                return;
            }
        }
        super.layerNormForward(x, gamma, beta, eps, out, mean, rstd);
    }

    @Override
    public void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dgamma, Tensor dbeta) {
        for (FastTier t : tiers) {
            if (t.layerNormBackward(dout, x, gamma, mean, rstd, dx, dgamma, dbeta)) {
                return;
            }
        }
        super.layerNormBackward(dout, x, gamma, mean, rstd, dx, dgamma, dbeta);
    }

    @Override
    public void geluForward(Tensor x, Tensor out) {
        for (FastTier t : tiers) {
            if (t.geluForward(x, out)) {
                return;
            }
        }
        super.geluForward(x, out);
    }

    @Override
    public void geluBackward(Tensor x, Tensor dout, Tensor dx) {
        for (FastTier t : tiers) {
            if (t.geluBackward(x, dout, dx)) {
                return;
            }
        }
        super.geluBackward(x, dout, dx);
    }

    @Override
    public void softmaxRows(Tensor x, Tensor out) {
        for (FastTier t : tiers) {
            if (t.softmaxRows(x, out)) {
                return;
            }
        }
        super.softmaxRows(x, out);
    }

    @Override
    public void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        for (FastTier t : tiers) {
            if (t.attentionForward(qkv, nHead, out, att)) {
                return;
            }
        }
        super.attentionForward(qkv, nHead, out, att);
    }

    @Override
    public void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        for (FastTier t : tiers) {
            if (t.attentionBackward(dout, qkv, att, nHead, dqkv)) {
                return;
            }
        }
        super.attentionBackward(dout, qkv, att, nHead, dqkv);
    }

    @Override
    public void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        for (FastTier t : tiers) {
            if (t.crossEntropyForward(logits, targets, probs, losses)) {
                return;
            }
        }
        super.crossEntropyForward(logits, targets, probs, losses);
    }

    @Override
    public void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        for (FastTier t : tiers) {
            if (t.crossEntropyBackward(probs, targets, scale, dlogits)) {
                return;
            }
        }
        super.crossEntropyBackward(probs, targets, scale, dlogits);
    }

    @Override
    public void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        for (FastTier t : tiers) {
            if (t.embeddingForward(ids, wte, wpe, out)) {
                return;
            }
        }
        super.embeddingForward(ids, wte, wpe, out);
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        for (FastTier t : tiers) {
            if (t.embeddingBackward(dout, ids, dwte, dwpe)) {
                return;
            }
        }
        super.embeddingBackward(dout, ids, dwte, dwpe);
    }

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        for (FastTier t : tiers) {
            if (t.adamw(param, grad, m, v, hp)) {
                return;
            }
        }
        super.adamw(param, grad, m, v, hp);
    }

    @Override
    public void adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs,
                             List<AdamW> hps, Tensor stats, int normAt, float maxNorm) {
        OpChecks.adamwLists("adamwClipped", params, grads, ms, vs, hps, stats, normAt);
        for (FastTier t : tiers) {
            if (t.adamwClipped(params, grads, ms, vs, hps, stats, normAt, maxNorm)) {
                return;
            }
        }
        super.adamwClipped(params, grads, ms, vs, hps, stats, normAt, maxNorm);
    }

    @Override
    public void loraShrink(Tensor x, Tensor a, Tensor u) {
        for (FastTier t : tiers) {
            if (t.loraShrink(x, a, u)) {
                return;
            }
        }
        super.loraShrink(x, a, u);
    }

    @Override
    public void loraExpand(Tensor u, Tensor b, float s, Tensor y) {
        for (FastTier t : tiers) {
            if (t.loraExpand(u, b, s, y)) {
                return;
            }
        }
        super.loraExpand(u, b, s, y);
    }

    @Override
    public void loraLinearForward(Tensor x, Tensor w, boolean fanInFanOut, Tensor bias,
                                  Tensor a, Tensor b, float s, Tensor u, Tensor y) {
        for (FastTier t : tiers) {
            if (t.loraLinearForward(x, w, fanInFanOut, bias, a, b, s, u, y)) {
                return;
            }
        }
        super.loraLinearForward(x, w, fanInFanOut, bias, a, b, s, u, y);
    }

    @Override
    public void loraStage(Tensor a, Tensor b, float s, Tensor aStage, Tensor sbStage) {
        for (FastTier t : tiers) {
            if (t.loraStage(a, b, s, aStage, sbStage)) {
                return;
            }
        }
        super.loraStage(a, b, s, aStage, sbStage);
    }

    @Override
    public void loraLinearForwardStaged(Tensor x, Tensor w, boolean fanInFanOut, Tensor bias, Tensor a, Tensor b,
                                        float s, Tensor aStage, Tensor sbStage, Tensor u, Tensor uStage, Tensor y) {
        for (FastTier t : tiers) {
            if (t.loraLinearForwardStaged(x, w, fanInFanOut, bias, a, b, s, aStage, sbStage, u, uStage, y)) {
                return;
            }
        }
        super.loraLinearForwardStaged(x, w, fanInFanOut, bias, a, b, s, aStage, sbStage, u, uStage, y);
    }

    @Override
    public void loraLinearBackward(Tensor dy, Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s,
                                   Tensor aStage, Tensor sbStage, Tensor u, Tensor uStage, Tensor x, Tensor dx,
                                   Tensor dA, Tensor dB) {
        for (FastTier t : tiers) {
            if (t.loraLinearBackward(dy, w, fanInFanOut, a, b, s, aStage, sbStage, u, uStage, x, dx, dA, dB)) {
                return;
            }
        }
        super.loraLinearBackward(dy, w, fanInFanOut, a, b, s, aStage, sbStage, u, uStage, x, dx, dA, dB);
    }

    @Override
    public void veraStage(Tensor sharedA, Tensor sharedB, Tensor lambdaB, Tensor aStage, Tensor sbStage) {
        for (FastTier t : tiers) {
            if (t.veraStage(sharedA, sharedB, lambdaB, aStage, sbStage)) {
                return;
            }
        }
        super.veraStage(sharedA, sharedB, lambdaB, aStage, sbStage);
    }

    @Override
    public void veraForwardStaged(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB,
                                  Tensor aStage, Tensor sbStage, Tensor u, Tensor vStage, Tensor y) {
        for (FastTier t : tiers) {
            if (t.veraForwardStaged(x, sharedA, sharedB, lambdaD, lambdaB, aStage, sbStage, u, vStage, y)) {
                return;
            }
        }
        super.veraForwardStaged(x, sharedA, sharedB, lambdaD, lambdaB, aStage, sbStage, u, vStage, y);
    }

    @Override
    public void veraBackward(Tensor dy, Tensor w, boolean fanInFanOut, Tensor sharedA, Tensor sharedB,
                             Tensor lambdaD, Tensor lambdaB, Tensor sbStage, Tensor u, Tensor vStage, Tensor dx,
                             Tensor dLambdaD, Tensor dLambdaB) {
        for (FastTier t : tiers) {
            if (t.veraBackward(dy, w, fanInFanOut, sharedA, sharedB, lambdaD, lambdaB, sbStage, u, vStage, dx,
                    dLambdaD, dLambdaB)) {
                return;
            }
        }
        super.veraBackward(dy, w, fanInFanOut, sharedA, sharedB, lambdaD, lambdaB, sbStage, u, vStage, dx,
                dLambdaD, dLambdaB);
    }

    @Override
    public void deltaLoraUpdateMaster(Tensor w, Tensor master, boolean fanInFanOut, float c, Tensor bNew,
                                      Tensor aNew, Tensor bOld, Tensor aOld) {
        for (FastTier t : tiers) {
            if (t.deltaLoraUpdateMaster(w, master, fanInFanOut, c, bNew, aNew, bOld, aOld)) {
                return;
            }
        }
        super.deltaLoraUpdateMaster(w, master, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    @Override
    public void doraWeightNorm(Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s, Tensor n) {
        for (FastTier t : tiers) {
            if (t.doraWeightNorm(w, fanInFanOut, a, b, s, n)) {
                return;
            }
        }
        super.doraWeightNorm(w, fanInFanOut, a, b, s, n);
    }

    @Override
    public void veraForward(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB,
                            Tensor u, Tensor v, Tensor y) {
        for (FastTier t : tiers) {
            if (t.veraForward(x, sharedA, sharedB, lambdaD, lambdaB, u, v, y)) {
                return;
            }
        }
        super.veraForward(x, sharedA, sharedB, lambdaD, lambdaB, u, v, y);
    }

    @Override
    public void deltaLoraUpdate(Tensor w, boolean fanInFanOut, float c, Tensor bNew, Tensor aNew, Tensor bOld,
                                Tensor aOld) {
        for (FastTier t : tiers) {
            if (t.deltaLoraUpdate(w, fanInFanOut, c, bNew, aNew, bOld, aOld)) {
                return;
            }
        }
        super.deltaLoraUpdate(w, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    @Override
    public void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1, float beta2) {
        for (FastTier t : tiers) {
            if (t.adaloraSensitivity(p, grad, expAvgIpt, expAvgUnc, beta1, beta2)) {
                return;
            }
        }
        super.adaloraSensitivity(p, grad, expAvgIpt, expAvgUnc, beta1, beta2);
    }

    @Override
    public void maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        for (FastTier t : tiers) {
            if (t.maskWhereAtMost(target, scores, threshold)) {
                return;
            }
        }
        super.maskWhereAtMost(target, scores, threshold);
    }

    @Override
    public double loraImportance(Tensor u, Tensor b, float s) {
        for (FastTier t : tiers) {
            OptionalDouble r = t.loraImportance(u, b, s);
            if (r.isPresent()) {
                return r.getAsDouble();
            }
        }
        return super.loraImportance(u, b, s);
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
        for (FastTier t : tiers) {
            try {
                t.close();
            } catch (RuntimeException e) {
                first = first == null ? e : first;
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
