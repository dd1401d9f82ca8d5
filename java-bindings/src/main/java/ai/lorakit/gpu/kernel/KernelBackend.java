package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Device;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.KernelModule;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.WorkPool;

import java.lang.ref.ReferenceQueue;
import java.lang.ref.WeakReference;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.WeakHashMap;

/**
 * The Backend op set written once on top of any {@link Device} (ARCHITECTURE.md, layer 2): it validates every
 * call exactly as CpuBackend does ({@link OpChecks}) before any launch, computes launch geometry and launches the
 * portable kernels (cuda-kernels/portable/*.kc) by name. Running it on OpenCL/PoCL in CI exercises the same host
 * logic that drives the CUDA devices.
 *
 * <p>This class holds memory and dispatch; each op group lives in its own small class so that kernels for
 * another group are added without touching this file's neighbours: {@link KernelGemm},
 * {@link KernelElementwise}, {@link KernelReductions}, {@link KernelTransformerOps}, {@link KernelLlamaOps},
 * {@link KernelLoraOps},
 * {@link KernelOptimizer}.
 *
 * <p>Storage: one {@link DeviceBuffer} per tensor, F32/I32 as 4-byte and BF16/F16 as 2-byte elements; each
 * kernel receives a dtype code per tensor (the DType ordinal, kcompat.h's KC_*), computes in fp32 and rounds on
 * the store. Buffers are freed by {@link Tensor#close()}, by {@link #close()}, or, for a tensor that became
 * unreachable without being closed, at the next allocation.
 */
public class KernelBackend implements Backend {

    private final Device device;
    private final String name;
    private final boolean ownsDevice;
    private final KernelModule module;
    private final Map<Tensor, Storage> live = new WeakHashMap<>();
    private final Set<Reclaim> reclaims = Collections.newSetFromMap(new IdentityHashMap<>());
    private final ReferenceQueue<Tensor> unreachable = new ReferenceQueue<>();
    private DeviceBuffer scratch;
    /** Returned work tensors of the default compositions ({@link #borrowWork}). */
    private final WorkPool work = new WorkPool();
    private boolean closed;

    final KernelGemm gemm;
    final KernelElementwise elementwise;
    final KernelReductions reductions;
    final KernelTransformerOps transformer;
    final KernelLlamaOps llama;
    final KernelLoraOps lora;
    final KernelOptimizer optimizer;

    /**
     * A backend named {@code name} (e.g. "opencl") on {@code device}; with {@code ownsDevice} closing the
     * backend closes the device. Loads the portable kernels (OpenCL builds each source file on first use).
     */
    @SuppressWarnings("this-escape")   // the op-group helpers only keep the reference; nothing runs before return
    public KernelBackend(Device device, String name, boolean ownsDevice) {
        this.device = device;
        this.name = name;
        this.ownsDevice = ownsDevice;
        this.module = device.load(KernelSources.portable());
        this.gemm = new KernelGemm(this);
        this.elementwise = new KernelElementwise(this);
        this.reductions = new KernelReductions(this);
        this.transformer = new KernelTransformerOps(this);
        this.llama = new KernelLlamaOps(this);
        this.lora = new KernelLoraOps(this);
        this.optimizer = new KernelOptimizer(this);
    }

    @Override
    public String name() {
        return name;
    }

    /** The device this backend launches on. */
    public Device device() {
        return device;
    }

    @Override
    public String toString() {
        return "KernelBackend[" + name + " on " + device.name() + "]";
    }

    // ================================================================ validation and dispatch (package API)

    /** Storage of one tensor. */
    static final class Storage {
        final DeviceBuffer buf;
        Reclaim reclaim;
        /**
         * An I32 buffer's values as last written from the host (token ids, targets), or null once the device may
         * have changed them: the id-range checks read this instead of the device, so a training step makes no
         * device-to-host read for them.
         */
        int[] hostInts;
        /**
         * Token ids used by embeddingBackward: their by-id grouping on the device (KernelTransformerOps.groupById
         * for {@code indexRows} table rows), rebuilt and uploaded with every host write of the ids, so the
         * backward of a training step uploads nothing; {@code indexFresh} while it matches the ids.
         */
        DeviceBuffer index;
        int indexRows;
        int indexDistinct;
        boolean indexFresh;

        /** Frees the buffer and the ids' grouping. */
        void free() {
            buf.close();
            if (index != null) {
                index.close();
            }
        }

        Storage(DeviceBuffer buf) {
            this.buf = buf;
        }
    }

    /** Frees the buffer of a tensor that was dropped without close(). */
    private static final class Reclaim extends WeakReference<Tensor> {
        final Storage storage;

        Reclaim(Tensor t, Storage s, ReferenceQueue<Tensor> q) {
            super(t, q);
            this.storage = s;
        }
    }

    void checkOpen(String op) {
        OpChecks.backendOpen(op, this, closed);
    }

    /** The buffer of any open tensor of this backend (CpuBackend's rules and messages). */
    DeviceBuffer buffer(String op, Tensor t) {
        checkOpen(op);
        OpChecks.tensor(op, this, t);
        Storage s = (Storage) t.handle();
        if (s.buf.isFreed()) {
            throw new GpuException(op + ": use of released tensor " + t);
        }
        return s.buf;
    }

    /** The buffer of an F32/BF16/F16 tensor. */
    DeviceBuffer math(String op, Tensor t) {
        DeviceBuffer b = buffer(op, t);
        OpChecks.math(op, t);
        return b;
    }

    /** The buffer of an I32 tensor. */
    DeviceBuffer ints(String op, Tensor t) {
        DeviceBuffer b = buffer(op, t);
        OpChecks.ints(op, t);
        return b;
    }

    /** The kcompat.h dtype code of a tensor (KC_F32 0, KC_BF16 1, KC_F16 2, KC_I32 3). */
    static int code(Tensor t) {
        return t.dtype().ordinal();
    }

    /** Launches a portable kernel by name on the default queue. */
    void launch(String kernel, Dim3 grid, Dim3 block, Object... args) {
        device.launch(module.kernel(kernel), grid, block, args);
    }

    /** Groups for a grid-stride loop over n elements with {@code block} threads: min(ceil(n/block), 65535). */
    static int strideGroups(long n, int block) {
        return (int) Math.max(1, Math.min(65535, (n + block - 1) / block));
    }

    static int ceilDiv(long n, int d) {
        long g = (n + d - 1) / d;
        if (g > Integer.MAX_VALUE) {
            throw new ShapeException("launch geometry: " + n + " / " + d + " needs more than 2^31-1 groups");
        }
        return (int) g;
    }

    /** A device scratch buffer of at least {@code bytes} bytes, reused between calls (reductions' partials). */
    DeviceBuffer scratch(long bytes) {
        if (scratch == null || scratch.bytes() < bytes) {
            if (scratch != null) {
                scratch.close();
            }
            scratch = device.alloc(Math.max(bytes, 16 * 1024));
        }
        return scratch;
    }

    /** A new tensor of the same dtype and numel holding a copy of t (for calls whose output aliases an input). */
    Tensor stagedCopy(Tensor t) {
        Tensor c = zeros(t.dtype(), t.shape());
        copy(t, c);
        return c;
    }

    // ================================================================ memory

    private static long bytes(DType dt, long numel) {
        return numel * dt.bytes();
    }

    private Tensor register(DType dtype, int[] shape) {
        reclaimUnreachable();
        long n = Tensor.numel(shape);
        Storage s = new Storage(device.alloc(bytes(dtype, n)));
        Tensor t = new Tensor(this, dtype, shape, s);
        s.reclaim = new Reclaim(t, s, unreachable);
        reclaims.add(s.reclaim);
        live.put(t, s);
        return t;
    }

    private void reclaimUnreachable() {
        for (Object r; (r = unreachable.poll()) != null; ) {
            Reclaim rc = (Reclaim) r;
            if (reclaims.remove(rc)) {
                rc.storage.free();
            }
        }
    }

    private static int hostLength(String op, long numel, int[] shape) {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new ShapeException(op + ": tensor of shape " + Arrays.toString(shape) + " has " + numel
                    + " elements; host arrays hold at most 2^31-9");
        }
        return (int) numel;
    }

    @Override
    public Tensor zeros(DType dtype, int... shape) {
        checkOpen("zeros");
        if (dtype == null) {
            throw new ShapeException("zeros: dtype is null");
        }
        Tensor t = register(dtype, shape);
        DeviceBuffer b = ((Storage) t.handle()).buf;
        device.fill(b, 0, b.bytes(), 0, dtype.bytes());
        return t;
    }

    @Override
    public Tensor upload(float[] data, DType dtype, int... shape) {
        checkOpen("upload");
        if (dtype == null || data == null) {
            throw new ShapeException("upload: data and dtype must not be null");
        }
        OpChecks.dataLength("upload", data.length, Tensor.numel(shape), shape);
        Tensor t = register(dtype, shape);
        DeviceBuffer b = ((Storage) t.handle()).buf;
        put(b, dtype, data);
        return t;
    }

    @Override
    public void write(Tensor dst, float[] data) {
        DeviceBuffer b = buffer("write", dst);
        OpChecks.math("write", dst);
        if (data == null) {
            throw new ShapeException("write: data must not be null");
        }
        OpChecks.dataLength("write", data.length, dst.numel(), dst.shape());
        put(b, dst.dtype(), data);
    }

    /** b = data converted to dtype on the host, then one host-to-device copy. */
    private void put(DeviceBuffer b, DType dtype, float[] data) {
        switch (dtype) {
            case F32 -> device.write(b, 0, data);
            case BF16 -> {
                short[] h = new short[data.length];
                for (int i = 0; i < h.length; i++) {
                    h[i] = DType.floatToBf16(data[i]);
                }
                device.write(b, 0, h);
            }
            case F16 -> {
                short[] h = new short[data.length];
                for (int i = 0; i < h.length; i++) {
                    h[i] = Float.floatToFloat16(data[i]);
                }
                device.write(b, 0, h);
            }
            case I32 -> {
                int[] v = new int[data.length];
                for (int i = 0; i < v.length; i++) {
                    v[i] = (int) data[i];
                }
                device.write(b, 0, v);
            }
        }
    }

    @Override
    public Tensor uploadInts(int[] data, int... shape) {
        checkOpen("uploadInts");
        if (data == null) {
            throw new ShapeException("uploadInts: data must not be null");
        }
        OpChecks.dataLength("uploadInts", data.length, Tensor.numel(shape), shape);
        Tensor t = register(DType.I32, shape);
        Storage st = (Storage) t.handle();
        device.write(st.buf, 0, data);
        st.hostInts = data.clone();
        return t;
    }

    @Override
    public void write(Tensor dst, int[] data) {
        DeviceBuffer b = ints("write", dst);
        if (data == null) {
            throw new ShapeException("write: data must not be null");
        }
        OpChecks.dataLength("write", data.length, dst.numel(), dst.shape());
        device.write(b, 0, data);
        Storage st = (Storage) dst.handle();
        st.hostInts = data.clone();
        st.indexFresh = false;
        if (st.index != null) {
            transformer.uploadIndex(st, data);   // with the ids: the backward then reads it without a transfer
        }
    }

    /**
     * The values of an I32 tensor for a host-side check: the host copy of its last write from the host when the
     * device has not changed it since (no transfer), else read from the device.
     */
    int[] hostInts(String op, Tensor t) {
        DeviceBuffer b = ints(op, t);
        int[] mirror = ((Storage) t.handle()).hostInts;
        if (mirror != null) {
            return mirror.clone();
        }
        if (t.numel() > Integer.MAX_VALUE - 8) {
            throw new ShapeException(op + ": " + t + " has too many indices to check on the host");
        }
        int[] v = new int[(int) t.numel()];
        if (v.length > 0) {
            device.read(b, 0, v);
        }
        return v;
    }

    @Override
    public float[] download(Tensor t) {
        DeviceBuffer b = buffer("download", t);
        int n = hostLength("download", t.numel(), t.shape());
        float[] out = new float[n];
        switch (t.dtype()) {
            case F32 -> device.read(b, 0, out);
            case BF16 -> {
                short[] h = new short[n];
                device.read(b, 0, h);
                for (int i = 0; i < n; i++) {
                    out[i] = DType.bf16ToFloat(h[i]);
                }
            }
            case F16 -> {
                short[] h = new short[n];
                device.read(b, 0, h);
                for (int i = 0; i < n; i++) {
                    out[i] = Float.float16ToFloat(h[i]);
                }
            }
            case I32 -> {
                int[] v = new int[n];
                device.read(b, 0, v);
                for (int i = 0; i < n; i++) {
                    out[i] = v[i];
                }
            }
        }
        return out;
    }

    @Override
    public int[] downloadInts(Tensor t) {
        DeviceBuffer b = ints("downloadInts", t);
        int[] out = new int[hostLength("downloadInts", t.numel(), t.shape())];
        device.read(b, 0, out);
        return out;
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        String op = "copy";
        DeviceBuffer s = buffer(op, src);
        DeviceBuffer d = buffer(op, dst);
        OpChecks.sameNumel(op, src, dst);
        long n = src.numel();
        if (n == 0 || src == dst) {
            return;
        }
        int[] srcInts = src.dtype() == DType.I32 ? ((Storage) src.handle()).hostInts : null;
        Storage ds = (Storage) dst.handle();
        ds.hostInts = dst.dtype() == DType.I32 && srcInts != null ? srcInts.clone() : null;
        ds.indexFresh = false;
        if (src.dtype() == dst.dtype()) {
            device.copy(s, 0, d, 0, bytes(src.dtype(), n));
        } else {
            launch("convert_fwd_kernel1", Dim3.of(strideGroups(n, 256)), Dim3.of(256), s, code(src), d, code(dst), n);
        }
    }

    @Override
    public void copyStrided(Tensor src, long srcOff, int srcRowStride, int srcColStride,
                            Tensor dst, long dstOff, int dstLd, int rows, int cols) {
        elementwise.copyStrided(src, srcOff, srcRowStride, srcColStride, dst, dstOff, dstLd, rows, cols);
    }

    @Override
    public void fill(Tensor t, float value) {
        DeviceBuffer b = buffer("fill", t);
        ((Storage) t.handle()).hostInts = null;
        ((Storage) t.handle()).indexFresh = false;
        int pattern = switch (t.dtype()) {
            case F32 -> Float.floatToRawIntBits(value);
            case BF16 -> DType.floatToBf16(value) & 0xffff;
            case F16 -> Float.floatToFloat16(value) & 0xffff;
            case I32 -> (int) value;
        };
        device.fill(b, 0, b.bytes(), pattern, t.dtype().bytes());
    }

    @Override
    public void release(Tensor t) {
        Storage s = live.remove(t);
        if (s != null) {
            reclaims.remove(s.reclaim);
            s.reclaim.clear();
            if (!closed) {
                s.free();
            }
        }
    }

    @Override
    public void synchronize() {
        checkOpen("synchronize");
        device.synchronize();
    }

    @Override
    public WorkPool workPool() {
        return work;
    }

    /** Frees every tensor's buffer and the kernels; closes the device if this backend owns it. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        work.clear();                                      // their buffers are live tensors, freed below
        if (device.isClosed()) {
            return;
        }
        try {
            for (Storage s : new ArrayList<>(live.values())) {
                s.free();
            }
            live.clear();
            reclaims.clear();
            if (scratch != null) {
                scratch.close();
            }
            module.close();
        } finally {
            if (ownsDevice) {
                device.close();
            }
        }
    }

    // ================================================================ GEMM

    @Override
    public void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                            Tensor a, long offA, int lda, long strideA,
                            Tensor b, long offB, int ldb, long strideB,
                            float beta, Tensor c, long offC, int ldc, long strideC) {
        gemm.gemmBatched(batch, transA, transB, m, n, k, alpha, a, offA, lda, strideA, b, offB, ldb, strideB,
                beta, c, offC, ldc, strideC);
    }

    // ================================================================ elementwise

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        elementwise.add(a, b, out);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        elementwise.mul(a, b, out);
    }

    @Override
    public void divide(Tensor a, Tensor b, Tensor out) {
        elementwise.divide(a, b, out);
    }

    @Override
    public void sqrt(Tensor x, Tensor out) {
        elementwise.sqrt(x, out);
    }

    @Override
    public void reciprocal(Tensor x, Tensor out) {
        elementwise.reciprocal(x, out);
    }

    @Override
    public void scale(Tensor x, float alpha, Tensor out) {
        elementwise.scale(x, alpha, out);
    }

    @Override
    public void axpby(float alpha, Tensor x, float beta, Tensor y) {
        elementwise.axpby(alpha, x, beta, y);
    }

    @Override
    public void addRowVector(Tensor a, Tensor v, Tensor out) {
        elementwise.addRowVector(a, v, out);
    }

    @Override
    public void mulRowVector(Tensor a, Tensor v, Tensor out) {
        elementwise.mulRowVector(a, v, out);
    }

    @Override
    public void mulColVector(Tensor a, Tensor v, Tensor out) {
        elementwise.mulColVector(a, v, out);
    }

    @Override
    public void transpose(Tensor a, Tensor out) {
        elementwise.transpose(a, out);
    }

    @Override
    public void dropoutMask(Tensor mask, float p, long seed) {
        elementwise.dropoutMask(mask, p, seed);
    }

    // ================================================================ reductions

    @Override
    public void sumRows(Tensor a, float beta, Tensor out) {
        reductions.sumRows(a, beta, out);
    }

    @Override
    public void rowDot(Tensor a, Tensor b, Tensor out) {
        reductions.rowDot(a, b, out);
    }

    @Override
    public double sum(Tensor a) {
        return reductions.sum(a);
    }

    @Override
    public double dot(Tensor a, Tensor b) {
        return reductions.dot(a, b);
    }

    @Override
    public long countNonFinite(Tensor a) {
        return reductions.countNonFinite(a);
    }

    @Override
    public void sumTo(Tensor a, Tensor out, int at) {
        reductions.sumTo(a, out, at);
    }

    @Override
    public void sumSquaresTo(List<Tensor> xs, Tensor out, int at) {
        reductions.sumSquaresTo(xs, out, at);
    }

    // ================================================================ transformer ops (GPT-2)

    @Override
    public void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean, Tensor rstd) {
        transformer.layerNormForward(x, gamma, beta, eps, out, mean, rstd);
    }

    @Override
    public void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dgamma, Tensor dbeta) {
        transformer.layerNormBackward(dout, x, gamma, mean, rstd, dx, dgamma, dbeta);
    }

    @Override
    public void geluForward(Tensor x, Tensor out) {
        transformer.geluForward(x, out);
    }

    @Override
    public void geluBackward(Tensor x, Tensor dout, Tensor dx) {
        transformer.geluBackward(x, dout, dx);
    }

    @Override
    public void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        transformer.attentionForward(qkv, nHead, out, att);
    }

    @Override
    public void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        transformer.attentionBackward(dout, qkv, att, nHead, dqkv);
    }

    @Override
    public void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        transformer.crossEntropyForward(logits, targets, probs, losses);
    }

    @Override
    public void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        transformer.crossEntropyBackward(probs, targets, scale, dlogits);
    }

    @Override
    public void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        transformer.embeddingForward(ids, wte, wpe, out);
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        transformer.embeddingBackward(dout, ids, dwte, dwpe);
    }

    // ================================================================ transformer ops (Llama family)

    @Override
    public void rmsNormForward(Tensor x, Tensor gamma, float eps, Tensor out, Tensor rstd) {
        llama.rmsNormForward(x, gamma, eps, out, rstd);
    }

    @Override
    public void rmsNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor rstd, Tensor dx, Tensor dgamma) {
        llama.rmsNormBackward(dout, x, gamma, rstd, dx, dgamma);
    }

    @Override
    public void ropeForward(Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out) {
        llama.ropeForward(x, nHead, cos, sin, out);
    }

    @Override
    public void ropeBackward(Tensor dout, int nHead, Tensor cos, Tensor sin, Tensor dx) {
        llama.ropeBackward(dout, nHead, cos, sin, dx);
    }

    @Override
    public void swigluForward(Tensor gate, Tensor up, Tensor out) {
        llama.swigluForward(gate, up, out);
    }

    @Override
    public void swigluBackward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        llama.swigluBackward(dout, gate, up, dgate, dup);
    }

    @Override
    public void gqaAttentionForward(Tensor q, Tensor k, Tensor v, int nHead, int nKvHead, Tensor out, Tensor att) {
        llama.gqaAttentionForward(q, k, v, nHead, nKvHead, out, att);
    }

    @Override
    public void gqaAttentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor att, int nHead, int nKvHead,
                                     Tensor dq, Tensor dk, Tensor dv) {
        llama.gqaAttentionBackward(dout, q, k, v, att, nHead, nKvHead, dq, dk, dv);
    }

    // ================================================================ optimizer

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        optimizer.adamw(param, grad, m, v, hp);
    }

    @Override
    public void adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs,
                             List<AdamW> hps, Tensor stats, int normAt, float maxNorm) {
        optimizer.adamwClipped(params, grads, ms, vs, hps, stats, normAt, maxNorm);
    }

    // ================================================================ LoRA family

    @Override
    public void loraShrink(Tensor x, Tensor a, Tensor u) {
        if (!lora.shrink(x, a, u)) {
            Backend.super.loraShrink(x, a, u);   // other dtypes, and the checks' exact messages
        }
    }

    @Override
    public void loraExpand(Tensor u, Tensor b, float s, Tensor y) {
        if (!lora.expand(u, b, s, y)) {
            Backend.super.loraExpand(u, b, s, y);
        }
    }

    @Override
    public void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1, float beta2) {
        lora.adaloraSensitivity(p, grad, expAvgIpt, expAvgUnc, beta1, beta2);
    }

    @Override
    public void maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        lora.maskWhereAtMost(target, scores, threshold);
    }

    // ================================================================ device access (CUDA backend: cuBLAS, fast tier, interop)

    /**
     * The device buffer of {@code t} after the checks every op makes (an open tensor of this open backend), for
     * device-specific fast paths in subclasses (ai.lorakit.gpu.cuda.CudaBackend).
     */
    public DeviceBuffer deviceBuffer(String op, Tensor t) {
        return buffer(op, t);
    }

    /**
     * A tensor over an existing buffer of this backend's device, without a copy (interop: a user's device memory the
     * device wrapped). The buffer must hold numel * dtype.bytes() bytes; closing the tensor closes the buffer.
     */
    public Tensor adopt(DeviceBuffer buf, DType dtype, int... shape) {
        checkOpen("adopt");
        if (buf == null || dtype == null || buf.device() != device || buf.isFreed()) {
            throw new GpuException("adopt: " + buf + " is not an open buffer of " + device.name());
        }
        long need = bytes(dtype, Tensor.numel(shape));
        if (buf.bytes() < need) {
            throw new ShapeException("adopt: " + dtype + Arrays.toString(shape) + " needs " + need
                    + " bytes, " + buf + " has " + buf.bytes());
        }
        Storage s = new Storage(buf);
        Tensor t = new Tensor(this, dtype, shape, s);
        s.reclaim = new Reclaim(t, s, unreachable);
        reclaims.add(s.reclaim);
        live.put(t, s);
        return t;
    }

    /** The kernels this backend launches (on a CUDA device: the whole fatbin, fast tier included). */
    public KernelModule module() {
        return module;
    }

    /** Whether t is an open F32 tensor of this open backend (the fused fast paths' precondition). */
    boolean usableF32(Tensor t) {
        return !closed && t != null && t.backend() == this && !t.isClosed() && t.dtype() == DType.F32;
    }
}
