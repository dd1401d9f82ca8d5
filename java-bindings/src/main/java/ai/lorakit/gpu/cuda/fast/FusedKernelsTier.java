package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.cuda.CudaScratch;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static ai.lorakit.gpu.cuda.fast.FastGeometry.MAX_GRID;
import static ai.lorakit.gpu.cuda.fast.FastGeometry.SHRINK_ROWS;
import static ai.lorakit.gpu.cuda.fast.FastGeometry.block;

/**
 * The Backend ops cuda-kernels/cuda/*.cu accelerate (cuda-kernels/cuda/README.md maps them), one instance per
 * {@link CudaBackend}, which calls it first for exactly these ops. Each method has the Backend op's name and
 * arguments and returns whether it did the op: {@code true} = done, {@code false} = declined, and the backend runs
 * cuBLAS or the portable kernels, which validate and report errors with the standard messages (so a fast op never
 * needs an error message of its own). Each method checks the
 * kernel's documented requirements (dtypes: bf16 base and activations, fp32 adapters and optimizer state; shapes;
 * pitches and {@code in} multiples of 8; DoRA r <= 64; grid limits; tensors open and of this backend) and declines
 * when any fails. Tensors are dense
 * and row-major (Tensor's contract), so every pitch is the row length. Before a kernel with 16-byte vector loads
 * (the WMMA shrink tile: lora_shrink, vera_shrink, dora_norm) is chosen, every pointer it loads through is checked
 * for 16-byte alignment and every leading dimension for a multiple of 16 bytes ({@link VectorAlignment}): a wrapped
 * user pointer at an odd offset would otherwise stop the context with the sticky CUDA_ERROR_MISALIGNED_ADDRESS; such
 * a call goes to the portable kernels. adamw_fwd_kernel2 and delta_lora_update_fwd_kernel1 check alignment on the
 * device and take their scalar path; dora_gram_fwd_kernel1 and dora_norm_fifo_fwd_kernel1 are scalar.
 *
 * <p>No allocation in the steady state: the bf16 copies of A, the Gram matrix and VeRA's product live in a {@link
 * CudaScratch} of this tier (one per backend, hence per stream), grown when a call needs more, freed on close.
 *
 * <p>Wired: {@code adamw} (adamw_fwd_kernel2), {@code adamwClipped} (adamw_multi_fwd_kernel2: one launch for a whole
 * optimizer step, clipped and guarded by the device-side gradient norm), {@code deltaLoraUpdate} (delta_lora_update_fwd_kernel1, no master nor
 * compensation buffer: W = bf16(W + cΔ) as the portable op does), {@code doraWeightNorm} (dora_gram_fwd_kernel1 +
 * dora_norm_fwd_kernel2 on a bf16 copy of A for W [out,in]; dora_norm_fifo_fwd_kernel1 on the fp32 A for W [in,out]),
 * {@code doraScale} and {@code doraScaleBackward} (dora_scale_fwd_kernel1, dora_scale_bwd_x_kernel1: DoRA's rescale
 * and its backward, one pass each),
 * {@code veraForward} (u by vera_shrink_fwd_kernel1; VeRA with dropout reaches it). The unstaged {@code
 * loraLinearForward} is not accelerated: the adapters reach it only with activations that are not bf16 (a bf16
 * input without dropout always takes the staged op below), so the backend's default runs it.
 * Activations may be [B,T,C] (seen as [N,C] matrices); frozen biases fp32 or bf16.
 *
 * <p>The staged ops (the training path of the bf16 policy for LoRA, DoRA's LoRA branch, AdaLoRA and VeRA: the adapted
 * layer owns bf16 stages of its adapter, refreshed after each optimizer step): {@code loraStage}
 * (lora_margin_fwd_kernel1 twice, on dense stages, then Wm's margins), {@code loraLinearForwardStaged} (the K-concat
 * of {@link LoraMargins}: lora_shrink_fwd_kernel2 packs Xm = [x | S] in one read of x, then one cuBLAS GEMM over
 * in + r (+ 1 for the bias)), {@code loraLinearBackward} (lora_linear_bwd_x_kernel1 packs dYm = [dy | dS] and adds dB
 * in one read of dy, then one cuBLAS GEMM over out + r for dx, and dA += dS^T x), {@code deltaLoraUpdateMaster}
 * (delta_lora_update_fwd_kernel1 with the fp32 master).
 */
public final class FusedKernelsTier implements AutoCloseable {
    /** The name in {@link CudaBackend#description()}. */
    public static final String NAME = "cuda-fused";
    static final String ADAMW = "adamw_fwd_kernel2";
    static final String ADAMW_MULTI = "adamw_multi_fwd_kernel2";
    /** adamw_multi_fwd_kernel2's hyper-parameter groups (kernel parameters) and tensors (grid.y). */
    static final int ADAMW_MAX_GROUPS = 4;
    static final int ADAMW_MAX_TENSORS = MAX_GRID;
    static final String DELTA_LORA = "delta_lora_update_fwd_kernel1";
    static final String DORA_GRAM = "dora_gram_fwd_kernel1";
    static final String DORA_NORM = "dora_norm_fwd_kernel2";
    static final String DORA_NORM_FIFO = "dora_norm_fifo_fwd_kernel1";
    static final String DORA_SCALE = "dora_scale_fwd_kernel1";
    static final String DORA_SCALE_BWD = "dora_scale_bwd_x_kernel1";
    static final String LORA_SHRINK = "lora_shrink_fwd_kernel2";
    static final String VERA_SHRINK = "vera_shrink_fwd_kernel1";
    static final String LORA_MARGIN = "lora_margin_fwd_kernel1";
    static final String LORA_BWD = "lora_linear_bwd_x_kernel1";
    /** dora_norm_fwd_kernel2's limit on r (larger r writes NaN). */
    static final int DORA_MAX_R = 64;
    /** delta_lora_update_fwd_kernel1's limit on W's rows (grid.y = ceil(rows/64) <= 65535). */
    static final int DELTA_LORA_MAX_ROWS = 4194240;

    private final CudaBackend be;
    private final CudaScratch scratch;
    /** adamw_multi_fwd_kernel2's device table and the host values it was built from (rebuilt when they change). */
    private Tensor adamwTable;
    private int[] adamwTableHost;

    /** The tier of {@code backend} (one per backend, opened by its constructor). */
    public FusedKernelsTier(CudaBackend backend) {
        this.be = backend;
        this.scratch = new CudaScratch(backend);
    }

    /** Frees the scratch slots. */
    @Override
    public void close() {
        scratch.close();
        if (adamwTable != null) {
            adamwTable.close();
        }
    }

    // ------------------------------------------------------------------------------------------ checks

    /** Open, of this backend, of {@code dtype}, with exactly {@code dims}. */
    private boolean is(Tensor t, DType dtype, int... dims) {
        if (t == null || t.isClosed() || t.backend() != be || t.dtype() != dtype || t.rank() != dims.length) {
            return false;
        }
        for (int i = 0; i < dims.length; i++) {
            if (t.dim(i) != dims[i] || dims[i] <= 0) {
                return false;
            }
        }
        return true;
    }

    private static boolean rank2(Tensor t) {
        return t != null && t.rank() == 2;
    }

    /** An activation: [..., cols] seen as a matrix (the model's are [B,T,C]). */
    private static boolean matrix(Tensor t) {
        return t != null && t.rank() >= 2;
    }

    /** Open, of this backend, of {@code dtype}, a matrix [rows, cols] (leading dimensions folded into rows). */
    private boolean mat(Tensor t, DType dtype, int rows, int cols) {
        return matrix(t) && !t.isClosed() && t.backend() == be && t.dtype() == dtype && t.rows() == rows
                && t.cols() == cols && rows > 0 && cols > 0;
    }

    /** No two of the non-null tensors are the same object. */
    private static boolean distinct(Tensor... ts) {
        for (int i = 0; i < ts.length; i++) {
            for (int j = i + 1; j < ts.length; j++) {
                if (ts[i] != null && ts[i] == ts[j]) {
                    return false;
                }
            }
        }
        return true;
    }

    private long addr(String op, Tensor t) {
        return be.address(op, t);
    }

    // ------------------------------------------------------------------------------------------ optimizer

    /** adamw.cu adamw_fwd_kernel2(param, grad, m, v, n, beta1, beta2, eps, decay, step_size, bc2_sqrt): all F32. */
    public boolean adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        if (hp == null || hp.step() < 1 || param == null) {
            return false;
        }
        int[] shape = param.shape();
        if (!is(param, DType.F32, shape) || !is(grad, DType.F32, shape) || !is(m, DType.F32, shape)
                || !is(v, DType.F32, shape) || !distinct(param, grad, m, v)) {
            return false;
        }
        long n = param.numel();
        // the host-folded scalars of KernelOptimizer / CpuBackend (adamw.cu header), in double where they are
        float decay = 1f - hp.lr() * hp.weightDecay();
        double bc1 = 1.0 - Math.pow(hp.beta1(), hp.step());
        double bc2 = 1.0 - Math.pow(hp.beta2(), hp.step());
        float stepSize = (float) (hp.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        be.launchKernel(ADAMW, FastGeometry.adamw(n), block(), addr("adamw", param), addr("adamw", grad),
                addr("adamw", m), addr("adamw", v), n, hp.beta1(), hp.beta2(), hp.eps(), decay, stepSize, bc2Sqrt);
        return true;
    }

    /**
     * adamw.cu adamw_multi_fwd_kernel2(ptrs, numel, group, stats, normAt, maxNorm, beta1, beta2, decay0..3,
     * stepSize0..3, bc2Sqrt0..3, eps0..3): every tensor F32 (param, grad, m, v of one shape, distinct), at most
     * {@value #ADAMW_MAX_GROUPS} distinct hyper-parameter sets sharing beta1 and beta2, at most 65535 tensors. The
     * device table (ptrs | numel | group, one I32 tensor) is built at the first call and uploaded again only when
     * a tensor or a group assignment changes; per step only kernel parameters change, so nothing is copied.
     */
    public boolean adamwClipped(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs,
                                List<AdamW> hps, Tensor stats, int normAt, float maxNorm) {
        int n = params.size();
        if (n == 0 || n > ADAMW_MAX_TENSORS || !is(stats, DType.F32, stats.shape())) {
            return false;
        }
        List<AdamW> groups = new ArrayList<>();
        int[] group = new int[n];
        long maxNumel = 0;
        for (int i = 0; i < n; i++) {
            Tensor p = params.get(i), g = grads.get(i), m = ms.get(i), v = vs.get(i);
            int[] shape = p.shape();
            if (!is(p, DType.F32, shape) || !is(g, DType.F32, shape) || !is(m, DType.F32, shape)
                    || !is(v, DType.F32, shape) || !distinct(p, g, m, v)) {
                return false;
            }
            AdamW hp = hps.get(i);
            AdamW first = hps.getFirst();
            if (hp.beta1() != first.beta1() || hp.beta2() != first.beta2()) {
                return false;
            }
            int k = groups.indexOf(hp);
            if (k < 0) {
                if (groups.size() == ADAMW_MAX_GROUPS) {
                    return false;
                }
                groups.add(hp);
                k = groups.size() - 1;
            }
            group[i] = k;
            maxNumel = Math.max(maxNumel, p.numel());
        }
        Tensor table = adamwTable(params, grads, ms, vs, group);
        long base = addr("adamw", table);
        float[] decay = new float[ADAMW_MAX_GROUPS], stepSize = new float[ADAMW_MAX_GROUPS];
        float[] bc2Sqrt = new float[ADAMW_MAX_GROUPS], eps = new float[ADAMW_MAX_GROUPS];
        for (int k = 0; k < ADAMW_MAX_GROUPS; k++) {
            AdamW hp = groups.get(Math.min(k, groups.size() - 1));   // unused slots repeat the last group
            // the host-folded scalars of adamw (adamw.cu header), in double where they are
            decay[k] = 1f - hp.lr() * hp.weightDecay();
            stepSize[k] = (float) (hp.lr() / (1.0 - Math.pow(hp.beta1(), hp.step())));
            bc2Sqrt[k] = (float) Math.sqrt(1.0 - Math.pow(hp.beta2(), hp.step()));
            eps[k] = hp.eps();
        }
        AdamW hp0 = groups.getFirst();
        be.launchKernel(ADAMW_MULTI, FastGeometry.adamwMulti(maxNumel, n), block(), base, base + 32L * n,
                base + 40L * n, addr("adamw", stats), normAt, maxNorm, hp0.beta1(), hp0.beta2(),
                decay[0], decay[1], decay[2], decay[3], stepSize[0], stepSize[1], stepSize[2], stepSize[3],
                bc2Sqrt[0], bc2Sqrt[1], bc2Sqrt[2], bc2Sqrt[3], eps[0], eps[1], eps[2], eps[3]);
        return true;
    }

    /**
     * The I32 table [ptrs u64 [T][4] | numel i64 [T] | group i32 [T]] of these tensors: the cached one when the
     * addresses and groups are the same as last time (no transfer), else written again (in place when T is the same).
     */
    private Tensor adamwTable(List<Tensor> params, List<Tensor> grads, List<Tensor> ms, List<Tensor> vs, int[] group) {
        int n = params.size();
        int[] host = new int[11 * n];
        for (int t = 0; t < n; t++) {
            Tensor[] four = {params.get(t), grads.get(t), ms.get(t), vs.get(t)};
            for (int j = 0; j < 4; j++) {
                long a = addr("adamw", four[j]);
                host[2 * (4 * t + j)] = (int) a;              // little-endian u64: low word first
                host[2 * (4 * t + j) + 1] = (int) (a >>> 32);
            }
            long numel = params.get(t).numel();
            host[8 * n + 2 * t] = (int) numel;
            host[8 * n + 2 * t + 1] = (int) (numel >>> 32);
            host[10 * n + t] = group[t];
        }
        if (adamwTable != null && Arrays.equals(host, adamwTableHost)) {
            return adamwTable;
        }
        if (adamwTable == null || adamwTable.numel() != host.length) {
            if (adamwTable != null) {
                adamwTable.close();
            }
            adamwTable = be.uploadInts(host, host.length).named("adamw_multi.table");
        } else {
            be.write(adamwTable, host);
        }
        adamwTableHost = host;
        return adamwTable;
    }

    // ------------------------------------------------------------------------------------------ Delta-LoRA

    /**
     * delta_lora.cu delta_lora_update_fwd_kernel1(W, ldw, master, ldm, comp, ldc, fanInFanOut, c, aNew, aOld, bNew,
     * bOld, out, in, r): W bf16 [out,in] (or [in,out]), A', A fp32 [r,in], B', B fp32 [out,r].
     */
    public boolean deltaLoraUpdate(Tensor w, boolean fanInFanOut, float c, Tensor bNew, Tensor aNew, Tensor bOld,
                                   Tensor aOld) {
        return deltaLora("deltaLoraUpdate", w, null, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    // ------------------------------------------------------------------------------------------ DoRA

    /**
     * dora.cu. W bf16 [out,in]: G = A A^T by dora_gram_fwd_kernel1(A, lda, in, r, G), then dora_norm_fwd_kernel2(W,
     * ldw, A_bf16, lda, B, G, s, m, n, g, out, in, r) with m = g = null; in % 8 == 0. W bf16 [in,out] (fanInFanOut):
     * dora_norm_fifo_fwd_kernel1(W, ldw, A, lda, B, s, n, out, in, r) on the fp32 A, no other requirement. Both: A
     * fp32 [r,in], B fp32 [out,r], n fp32 [out], r <= 64.
     */
    public boolean doraWeightNorm(Tensor w, boolean fanInFanOut, Tensor a, Tensor b, float s, Tensor n) {
        if (!rank2(a) || !rank2(b) || n == null || n.rank() != 1) {
            return false;
        }
        int r = a.rows();
        int in = a.cols();
        int out = b.rows();
        if (fanInFanOut) {
            return doraWeightNormFifo(w, a, b, s, n, r, in, out);
        }
        if (r > DORA_MAX_R || in % 8 != 0 || !is(w, DType.BF16, out, in) || !is(a, DType.F32, r, in)
                || !is(b, DType.F32, out, r) || !is(n, DType.F32, out) || FastGeometry.doraNorm(out).y() > MAX_GRID) {
            return false;
        }
        String op = "doraWeightNorm";
        long pw = addr(op, w);
        if (!VectorAlignment.aligned(pw) || !VectorAlignment.pitch(in, DType.BF16)) {
            return false;
        }
        try (Tensor g = scratch.tensor("gram", DType.F32, r, r); Tensor abf = scratch.tensor("a_bf16", DType.BF16, r, in)) {
            long pabf = addr(op, abf);
            if (!VectorAlignment.aligned(pabf)) {
                return false;
            }
            be.copy(a, abf);
            be.launchKernel(DORA_GRAM, FastGeometry.doraGram(r), block(), addr(op, a), in, in, r, addr(op, g));
            be.launchKernel(DORA_NORM, FastGeometry.doraNorm(out), block(), pw, in, pabf, in,
                    addr(op, b), addr(op, g), s, 0L, addr(op, n), 0L, out, in, r);
        }
        return true;
    }

    /**
     * dora.cu dora_scale_fwd_kernel1(Z, ldz, Y, ldy, g, bias, N, out): y = bf16(k ∘ z + bias) in one pass. z, y bf16
     * [N,out] (y may be z), k fp32 [out], bias fp32 [out] or null (a bf16 bias declines: the layer keeps an fp32
     * copy). The kernel takes 16-byte vectors when it can and scalars otherwise.
     */
    public boolean doraScale(Tensor z, Tensor k, Tensor bias, Tensor y) {
        if (!matrix(z) || !matrix(y)) {
            return false;
        }
        int nRows = z.rows();
        int out = z.cols();
        if (!mat(z, DType.BF16, nRows, out) || !mat(y, DType.BF16, nRows, out) || !is(k, DType.F32, out)
                || (bias != null && !is(bias, DType.F32, out)) || !distinct(k, y, bias)) {
            return false;
        }
        String op = "doraScale";
        be.launchKernel(DORA_SCALE, FastGeometry.doraScale(nRows, out), block(), addr(op, z), out, addr(op, y), out,
                addr(op, k), bias == null ? 0L : addr(op, bias), nRows, out);
        return true;
    }

    /**
     * dora.cu dora_scale_bwd_x_kernel1(dY, ldy, Z, ldz, g, n, dZ, lddz, dm, N, out): dz = bf16(k ∘ dy) and dm +=
     * Σ_rows dy ∘ z / n in one read of dy and z. dy, z, dz bf16 [N,out] (dz may be dy), k, n, dm fp32 [out]; a
     * frozen magnitude (dm null) declines.
     */
    public boolean doraScaleBackward(Tensor dy, Tensor z, Tensor k, Tensor n, Tensor dz, Tensor dm) {
        if (!matrix(dy) || !matrix(z) || !matrix(dz) || dm == null) {
            return false;
        }
        int nRows = dy.rows();
        int out = dy.cols();
        if (!mat(dy, DType.BF16, nRows, out) || !mat(z, DType.BF16, nRows, out) || !mat(dz, DType.BF16, nRows, out)
                || !is(k, DType.F32, out) || !is(n, DType.F32, out) || !is(dm, DType.F32, out)
                || !distinct(z, dz, dm, k, n)) {
            return false;
        }
        String op = "doraScaleBackward";
        be.launchKernel(DORA_SCALE_BWD, FastGeometry.doraScaleBwd(nRows, out), block(), addr(op, dy), out,
                addr(op, z), out, addr(op, k), addr(op, n), addr(op, dz), out, addr(op, dm), nRows, out);
        return true;
    }

    /** The fan-in-fan-out norm: one launch, W bf16 [in,out] read once along out, A read as the fp32 master. */
    private boolean doraWeightNormFifo(Tensor w, Tensor a, Tensor b, float s, Tensor n, int r, int in, int out) {
        if (r > DORA_MAX_R || !is(w, DType.BF16, in, out) || !is(a, DType.F32, r, in) || !is(b, DType.F32, out, r)
                || !is(n, DType.F32, out)) {
            return false;
        }
        String op = "doraWeightNorm";
        be.launchKernel(DORA_NORM_FIFO, FastGeometry.doraNormFifo(out), block(), addr(op, w), out, addr(op, a), in,
                addr(op, b), s, addr(op, n), out, in, r);
        return true;
    }

    // ------------------------------------------------------------------------------------------ VeRA

    /**
     * u = x A_l^T by vera_shrink_fwd_kernel1(X, ldx, A, lda, λd, u, V, ldv, N, in, r) on a bf16 copy of the shared A
     * (lda = in_max, V = null), then v = λd ∘ u and y += λb ∘ (v B_l^T) through the backend as the default does.
     * x bf16 [N,in], in and in_max multiples of 8; shared A fp32 [r,in_max], shared B fp32 [out_max,r], λd fp32 [r],
     * λb fp32 [out], u, v fp32 [N,r], y [N,out] bf16 or fp32.
     */
    public boolean veraForward(Tensor x, Tensor sharedA, Tensor sharedB, Tensor lambdaD, Tensor lambdaB, Tensor u,
                               Tensor v, Tensor y) {
        if (!matrix(x) || !rank2(sharedA) || !rank2(sharedB) || !matrix(y)) {
            return false;
        }
        int nRows = x.rows();
        int in = x.cols();
        int r = sharedA.rows();
        int inMax = sharedA.cols();
        int outMax = sharedB.rows();
        int out = y.cols();
        if (in % 8 != 0 || inMax % 8 != 0 || in > inMax || out > outMax || !shrinkFits(nRows)
                || !mat(x, DType.BF16, nRows, in) || !is(sharedA, DType.F32, r, inMax)
                || !is(sharedB, DType.F32, outMax, r) || !is(lambdaD, DType.F32, r) || !is(lambdaB, DType.F32, out)
                || !is(u, DType.F32, nRows, r) || !is(v, DType.F32, nRows, r) || !activation(y, nRows, out)
                || !distinct(u, v, y)) {
            return false;
        }
        String op = "veraForward";
        long px = addr(op, x);
        if (!VectorAlignment.aligned(px) || !VectorAlignment.pitch(in, DType.BF16)
                || !VectorAlignment.pitch(inMax, DType.BF16)) {
            return false;
        }
        try (Tensor abf = scratch.tensor("a_bf16", DType.BF16, r, inMax)) {
            long pabf = addr(op, abf);
            if (!VectorAlignment.aligned(pabf)) {
                return false;
            }
            be.copy(sharedA, abf);
            be.launchKernel(VERA_SHRINK, FastGeometry.shrink(nRows, r), block(), px, in, pabf, inMax,
                    addr(op, lambdaD), addr(op, u), 0L, 0, nRows, in, r);
        }
        be.mulRowVector(u, lambdaD, v);
        try (Tensor z = scratch.tensor("vera_z", DType.F32, nRows, out)) {   // written whole by the GEMM (beta 0)
            be.gemm(false, true, nRows, out, r, 1f, v, 0, r, sharedB, 0, r, 0f, z, 0, out);
            be.mulRowVector(z, lambdaB, z);
            be.axpby(1f, z, 1f, y);
        }
        return true;
    }

    // ------------------------------------------------------------------------------------------ staged LoRA family
    // The adapted layer owns the bf16 stages (Backend#loraStage): nothing here copies A per call.

    /**
     * lora_fused.cu lora_margin_fwd_kernel1(A, B, s, Wm, ldw, out, in, r) twice, on dense stages: with in = 0 and
     * ldw = r it writes sbStage[o,j] = bf16(s B[o,j]); with out = 0 and ldw = in, aStage[j,k] = bf16(A[j,k]). Then
     * Wm's margins (and base block) as the default does ({@link LoraMargins#stage}, portable copies: once per
     * optimizer step). A fp32 [r,in], B fp32 [out,r], stages and Wm bf16.
     */
    public boolean loraStage(Tensor a, Tensor b, float s, LoraMargins g, Tensor w, Tensor bias, Tensor aStage,
                             Tensor sbStage, Tensor wm) {
        if (!rank2(a) || !rank2(b)) {
            return false;
        }
        int r = a.rows();
        int in = a.cols();
        int out = b.rows();
        boolean baseOk = w == null
                || (baseWeight(w, g.fanInFanOut(), in, out) && (!g.bias() || (bias != null && biasOk(bias, out))));
        if (!is(a, DType.F32, r, in) || !is(b, DType.F32, out, r) || !is(aStage, DType.BF16, r, in)
                || !is(sbStage, DType.BF16, out, r) || !margins(g, in, out, r)
                || !is(wm, DType.BF16, g.wmRows(), g.ldw()) || !baseOk || !Float.isFinite(s)) {
            return false;
        }
        String op = "loraStage";
        long pa = addr(op, a);
        long pb = addr(op, b);
        be.launchKernel(LORA_MARGIN, FastGeometry.margin((long) out * r), block(), pa, pb, s, addr(op, sbStage), r,
                out, 0, r);
        be.launchKernel(LORA_MARGIN, FastGeometry.margin((long) r * in), block(), pa, pb, s, addr(op, aStage), in,
                0, in, r);
        g.stage(be, w, bias, aStage, sbStage, wm);
        return true;
    }

    /**
     * The K-concat forward: lora_shrink_fwd_kernel2(X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r) reads x once and
     * writes Xm = [x | S] (Xc = Xm, S = Xm + in, both at pitch ldx; no fp32 u), then y = Xm Wm by ONE cuBLAS GEMM
     * over in + r (+ 1: the bias, {@link LoraMargins#forwardGemm}). x bf16 [N,in] with in % 8 == 0, aStage bf16
     * [r,in], Wm and Xm bf16 pitched ({@link LoraMargins}), y [N,out] bf16 or fp32.
     */
    public boolean loraLinearForwardStaged(Tensor x, Tensor a, LoraMargins g, Tensor aStage, Tensor wm, Tensor xm,
                                           Tensor y) {
        if (!matrix(x) || !rank2(aStage)) {
            return false;
        }
        int nRows = x.rows();
        int in = x.cols();
        int r = aStage.rows();
        int out = g.out();
        if (in % 8 != 0 || !shrinkFits(nRows) || !mat(x, DType.BF16, nRows, in) || !margins(g, in, out, r)
                || !is(a, DType.F32, r, in) || !is(aStage, DType.BF16, r, in)
                || !is(wm, DType.BF16, g.wmRows(), g.ldw()) || !mat(xm, DType.BF16, nRows, g.ldx())
                || !activation(y, nRows, out) || !distinct(x, y, xm)) {
            return false;
        }
        String op = "loraLinearForwardStaged";
        long px = addr(op, x);
        long pas = addr(op, aStage);
        long pxm = addr(op, xm);
        if (!VectorAlignment.aligned(px) || !VectorAlignment.aligned(pas) || !VectorAlignment.aligned(pxm)
                || !VectorAlignment.pitch(in, DType.BF16)) {
            return false;
        }
        int ldx = g.ldx();
        be.launchKernel(LORA_SHRINK, FastGeometry.shrink(nRows, r), block(), px, in, pas, in, 0L, pxm + 2L * in, ldx,
                pxm, ldx, nRows, in, r);
        g.forwardGemm(be, nRows, xm, wm, y);                                      // [x | S | 1] Wm: [N,out]
        return true;
    }

    /**
     * The K-concat backward: lora_linear_bwd_x_kernel1(dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc,
     * dB, N, r) reads dy once: dYm = [dy | dS] (dYc = dYm, dS = bf16(s dy B) at dYm + out) and dB += s dy^T S
     * (S = Xm + in); then dx = dYm Wm by ONE cuBLAS GEMM over out + r ({@link LoraMargins#inputGradGemm}) and
     * dA += dS^T x with both operands read in place from dYm and Xm. dy bf16 [N,out], out and r multiples of 8;
     * dy, sbStage, Xm, dYm, dB 16-byte aligned; dx [N,in] bf16 or fp32; dA, dB fp32 or null.
     */
    public boolean loraLinearBackward(Tensor dy, Tensor b, float s, LoraMargins g, Tensor sbStage, Tensor wm, Tensor xm,
                                      Tensor dym, Tensor dx, Tensor dA, Tensor dB) {
        if (!matrix(dy) || !rank2(sbStage) || !matrix(dx)) {
            return false;
        }
        int nRows = dy.rows();
        int out = dy.cols();
        int r = sbStage.cols();
        int in = g.in();
        if (out % 8 != 0 || r % 8 != 0 || !shrinkFits(nRows) || !mat(dy, DType.BF16, nRows, out)
                || !margins(g, in, out, r) || !is(b, DType.F32, out, r) || !is(sbStage, DType.BF16, out, r)
                || !is(wm, DType.BF16, g.wmRows(), g.ldw())
                || !mat(xm, DType.BF16, nRows, g.ldx()) || !mat(dym, DType.BF16, nRows, g.ldy())
                || !activation(dx, nRows, in) || (dA != null && !is(dA, DType.F32, r, in))
                || (dB != null && !is(dB, DType.F32, out, r)) || !distinct(dy, dx, dA, dB, xm, dym)) {
            return false;
        }
        String op = "loraLinearBackward";
        long pdy = addr(op, dy);
        long psb = addr(op, sbStage);
        long pxm = addr(op, xm);
        long pdym = addr(op, dym);
        long pdb = dB == null ? 0L : addr(op, dB);
        if (!VectorAlignment.aligned(pdy) || !VectorAlignment.aligned(psb) || !VectorAlignment.aligned(pxm)
                || !VectorAlignment.aligned(pdym) || !VectorAlignment.aligned(pdb)) {
            return false;
        }
        int ldy = g.ldy();
        be.launchKernel(LORA_BWD, FastGeometry.shrink(nRows, r), block(), pdy, out, out, psb, r, pxm + 2L * in,
                g.ldx(), s, 0L, pdym + 2L * out, ldy, pdym, ldy, pdb, nRows, r);
        g.inputGradGemm(be, nRows, dym, wm, dx);                                  // [dy | dS] Wm: [N,in]
        if (dA != null) {
            g.adapterAGradGemm(be, nRows, dym, xm, dA);                           // += dS^T x: [r,in]
        }
        return true;
    }

    /** The margin layout is the one of these adapter dimensions. */
    private static boolean margins(LoraMargins g, int in, int out, int r) {
        return g != null && g.in() == in && g.out() == out && g.r() == r;
    }

    /**
     * delta_lora_update_fwd_kernel1 with the fp32 master: master += cΔ, W = bf16(master), one pass (W bf16 and
     * master fp32 in the same orientation, pitches = their row length).
     */
    public boolean deltaLoraUpdateMaster(Tensor w, Tensor master, boolean fanInFanOut, float c, Tensor bNew,
                                         Tensor aNew, Tensor bOld, Tensor aOld) {
        return master != null && deltaLora("deltaLoraUpdateMaster", w, master, fanInFanOut, c, bNew, aNew, bOld, aOld);
    }

    /** delta_lora_update_fwd_kernel1 on W, with the fp32 master in W's orientation or without one (master null). */
    private boolean deltaLora(String op, Tensor w, Tensor master, boolean fanInFanOut, float c, Tensor bNew,
                              Tensor aNew, Tensor bOld, Tensor aOld) {
        if (!rank2(aNew) || !rank2(bNew)) {
            return false;
        }
        int r = aNew.rows();
        int in = aNew.cols();
        int out = bNew.rows();
        int rows = fanInFanOut ? in : out;
        int cols = fanInFanOut ? out : in;
        if (!is(w, DType.BF16, rows, cols) || (master != null && !is(master, DType.F32, rows, cols))
                || !is(aNew, DType.F32, r, in) || !is(aOld, DType.F32, r, in) || !is(bNew, DType.F32, out, r)
                || !is(bOld, DType.F32, out, r) || rows > DELTA_LORA_MAX_ROWS || !Float.isFinite(c)
                || !distinct(aNew, aOld, bNew, bOld)) {
            return false;
        }
        long pm = master == null ? 0L : addr(op, master);
        be.launchKernel(DELTA_LORA, FastGeometry.deltaLora(rows, cols), block(), addr(op, w), cols, pm,
                master == null ? 0 : cols, 0L, 0, fanInFanOut ? 1 : 0, c, addr(op, aNew), addr(op, aOld),
                addr(op, bNew), addr(op, bOld), out, in, r);
        return true;
    }

    /** bias null, or [out] fp32 or bf16 (the bf16 policy stores frozen biases in bf16). */
    private boolean biasOk(Tensor bias, int out) {
        return bias == null || is(bias, DType.F32, out) || is(bias, DType.BF16, out);
    }

    /** W bf16, [out,in] or (fanInFanOut) [in,out]. */
    private boolean baseWeight(Tensor w, boolean fanInFanOut, int in, int out) {
        return is(w, DType.BF16, fanInFanOut ? in : out, fanInFanOut ? out : in);
    }

    /** The shrink kernels' grid.y = ceil(N/128) must fit CUDA's 65535. */
    private static boolean shrinkFits(int nRows) {
        return (nRows + (long) SHRINK_ROWS - 1) / SHRINK_ROWS <= MAX_GRID;
    }

    /** y: the layer output, bf16 (the activations) or fp32, [N,out]. */
    private boolean activation(Tensor y, int nRows, int out) {
        return mat(y, DType.BF16, nRows, out) || mat(y, DType.F32, nRows, out);
    }
}
