package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Step 2 of the GPU check (GPU.md) for the fast tier: every kernel of cuda-kernels/cuda/*.cu against the CPU
 * reference in double on the same bf16-rounded inputs, and against its portable twin where the twin is one
 * kernel (lora_shrink_fwd_kernel1, adamw_fwd_kernel1). Awkward shapes (rows not a multiple of the tile, r of 5,
 * 24, 72, 80, 256), structured and random inputs, outputs poisoned with NaN first (an unwritten element fails),
 * and the columns a kernel must not touch compared before and after. Tolerances: {@link Tolerance#BF16} for
 * anything stored in bf16 or multiplied on tensor cores, {@link Tolerance#F32} for fp32 paths.
 *
 * <p>Each case is independent: a failure (or an exception) is recorded and the next case runs.
 */
final class FastTierCheck {

    /** One case's outcome. */
    record Case(String kernel, String shape, boolean ok, String detail) {
        Map<String, Object> json() {
            Map<String, Object> m = new LinkedHashMap<>();
            m.put("kernel", kernel);
            m.put("shape", shape);
            m.put("ok", ok);
            m.put("detail", detail);
            return m;
        }
    }

    private final Harness h;
    private final List<Case> cases = new ArrayList<>();

    FastTierCheck(Harness h) {
        this.h = h;
    }

    List<Case> run() {
        for (int r : new int[] {5, 16, 24, 80}) {
            guard("lora_shrink_fwd_kernel2", "N=300 in=264 r=" + r, () -> shrink(300, 264, r, false, false, 11 + r));
        }
        guard("lora_shrink_fwd_kernel2", "structured N=130 in=64 r=16", () -> shrink(130, 64, 16, true, false, 3));
        for (int r : new int[] {5, 16, 80}) {
            guard("lora_shrink_fwd_kernel2", "pack N=300 in=264 r=" + r,
                    () -> shrink(300, 264, r, false, true, 61 + r));
        }
        guard("lora_margin_fwd_kernel1", "out=200 in=264 r=16", () -> margin(200, 264, 16));
        guard("K-concat forward (cuBLAS)", "N=300 in=264 out=200 r=16", () -> kconcat(300, 264, 200, 16));
        for (int r : new int[] {8, 16, 72}) {
            guard("lora_linear_bwd_x_kernel1", "N=300 out=200 r=" + r, () -> backward(300, 200, r, false, 21 + r));
        }
        for (int r : new int[] {8, 72}) {
            guard("lora_linear_bwd_x_kernel1", "pack N=300 out=200 r=" + r, () -> backward(300, 200, r, true, 71 + r));
        }
        guard("dora_gram_fwd_kernel1", "r=16 in=264", () -> gram(16, 264));
        for (int r : new int[] {8, 16, 64}) {
            guard("dora_norm_fwd_kernel2", "out=300 in=264 r=" + r, () -> doraNorm(300, 264, r));
        }
        for (int r : new int[] {5, 16, 64}) {
            guard("dora_norm_fifo_fwd_kernel1", "in=130 out=203 r=" + r, () -> doraNormFifo(203, 130, r));
        }
        for (int out : new int[] {200, 203}) {
            guard("dora_scale_fwd_kernel1", "N=77 out=" + out, () -> doraScale(77, out));
            guard("dora_scale_bwd_x_kernel1", "N=300 out=" + out, () -> doraScaleBwd(300, out));
        }
        for (int r : new int[] {80, 256}) {
            guard("vera_shrink_fwd_kernel1", "N=200 in=264 r=" + r, () -> veraShrink(200, 264, r));
        }
        for (String mode : new String[] {"master", "comp", "plain"}) {
            for (boolean fan : new boolean[] {false, true}) {
                guard("delta_lora_update_fwd_kernel1", mode + (fan ? " fanInFanOut" : "") + " out=200 in=264 r=8",
                        () -> deltaLora(200, 264, 8, mode, fan));
            }
        }
        guard("delta_lora_update_fwd_kernel1", "comp out=200 in=260 r=8 (scalar edge)",
                () -> deltaLora(200, 260, 8, "comp", false));
        guard("adamw_fwd_kernel2", "n=4099 (+ unaligned tail)", () -> adamw(4099));
        guard("adamw_multi_fwd_kernel1", "3 tensors, 2 groups, 1 frozen", this::adamwMulti);
        guard("fast ops: no allocation in the steady state", "lora, vera, dora, adamw, delta-lora x 10",
                this::steadyState);
        // last: were the alignment check missing, the misaligned vector load would leave the context unusable
        guard("loraLinearForwardStaged at an odd offset", "x wrapped at +2 bytes, N=300 in=264 out=200 r=16",
                () -> oddOffset(300, 264, 200, 16));
        return cases;
    }

    private interface Body {
        String run();   // null = ok, else the failure description
    }

    private void guard(String kernel, String shape, Body body) {
        try {
            String fail = body.run();
            cases.add(new Case(kernel, shape, fail == null, fail == null ? "ok" : fail));
        } catch (RuntimeException | Error e) {
            cases.add(new Case(kernel, shape, false, "exception: " + e));
        }
    }

    private static String check(Tolerance tol, String what, float[] actual, double[] ref) {
        Tolerance.Result r = tol.compare(what, actual, ref);
        return r.ok() ? null : r.describe();
    }

    private static String check(Tolerance tol, String what, float[] actual, float[] ref) {
        Tolerance.Result r = tol.compare(what, actual, ref);
        return r.ok() ? null : r.describe();
    }

    private static String first(String... fails) {
        for (String f : fails) {
            if (f != null) {
                return f;
            }
        }
        return null;
    }

    // ---------------------------------------------------------------- LoRA

    /**
     * Every wired fast op through the Backend, once to warm up (its scratch is allocated then), then 10 times: the
     * device must make no allocation in those 10 (cuMemFree synchronises; a CUDA graph cannot capture cuMemAlloc).
     */
    private String steadyState() {
        int n = 256;
        int in = 264;
        int out = 200;
        int r = 16;
        Tensor x = h.upload(Harness.random(51, n * in, 1f), DType.BF16, n, in);
        Tensor w = h.upload(Harness.random(52, out * in, 0.05f), DType.BF16, out, in);
        Tensor a = h.upload(Harness.random(53, r * in, 0.1f), DType.F32, r, in);
        Tensor b = h.upload(Harness.random(54, out * r, 0.1f), DType.F32, out, r);
        Tensor u = h.zeros(DType.F32, n, r);
        Tensor v = h.zeros(DType.F32, n, r);
        Tensor y = h.zeros(DType.F32, n, out);
        Tensor nrm = h.zeros(DType.F32, out);
        Tensor wT = h.upload(Harness.random(61, in * out, 0.05f), DType.BF16, in, out);   // Conv1D [in,out]
        Tensor ld = h.upload(Harness.random(55, r, 1f), DType.F32, r);
        Tensor lb = h.upload(Harness.random(56, out, 1f), DType.F32, out);
        Tensor p = h.upload(Harness.random(57, 4096, 1f), DType.F32, 4096);
        Tensor g = h.upload(Harness.random(58, 4096, 1f), DType.F32, 4096);
        Tensor m = h.zeros(DType.F32, 4096);
        Tensor vv = h.zeros(DType.F32, 4096);
        Tensor a2 = h.upload(Harness.random(59, r * in, 0.1f), DType.F32, r, in);
        Tensor b2 = h.upload(Harness.random(60, out * r, 0.1f), DType.F32, out, r);
        LoraMargins lm = new LoraMargins(in, out, r, false, false);
        Tensor aStage = h.zeros(DType.BF16, r, in);
        Tensor sbStage = h.zeros(DType.BF16, out, r);
        Tensor wm = h.zeros(DType.BF16, lm.wmRows(), lm.ldw());
        Tensor xm = h.zeros(DType.BF16, n, lm.ldx());
        Runnable step = new Runnable() {
            int t;

            @Override
            public void run() {
                h.be.loraStage(a, b, 0.5f, lm, w, null, aStage, sbStage, wm);   // A, s B and W: deltaLoraUpdate changes W
                h.be.loraLinearForwardStaged(x, a, lm, aStage, wm, xm, y);
                h.be.veraForward(x, a, b, ld, lb, u, v, y);
                h.be.doraWeightNorm(w, false, a, b, 2f, nrm);
                h.be.doraWeightNorm(wT, true, a, b, 2f, nrm);
                h.be.adamw(p, g, m, vv, new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, ++t));
                h.be.deltaLoraUpdate(w, false, 0.1f, b2, a2, b, a);
            }
        };
        step.run();
        h.sync();
        long before = h.dev.allocations();
        for (int i = 0; i < 10; i++) {
            step.run();
        }
        h.sync();
        long made = h.dev.allocations() - before;
        return made == 0 ? null : made + " device allocations in 10 steady-state calls of the fast ops";
    }

    /**
     * The staged LoRA forward on x wrapped one bf16 element past an aligned address (a user's pointer into a bigger
     * buffer): the fast tier must decline its vector kernel (the default composition of portable kernels runs), with
     * the same y and Xm (x and S) as for an aligned copy of x, which takes lora_shrink_fwd_kernel2.
     */
    private String oddOffset(int n, int in, int out, int r) {
        Tensor x = h.upload(Harness.random(41, n * in, 1f), DType.BF16, n, in);
        Tensor arena = h.zeros(DType.BF16, n * in + 8);
        try (Tensor xOdd = h.be.wrap(h.addr(arena) + 2, DType.BF16, n, in)) {
            h.be.copy(x, xOdd);
            Tensor w = h.upload(Harness.random(42, out * in, 0.05f), DType.BF16, out, in);
            Tensor a = h.upload(Harness.random(43, r * in, 0.1f), DType.F32, r, in);
            Tensor b = h.upload(Harness.random(44, out * r, 0.1f), DType.F32, out, r);
            Tensor y = h.zeros(DType.F32, n, out);
            Tensor yOdd = h.zeros(DType.F32, n, out);
            LoraMargins g = new LoraMargins(in, out, r, false, false);
            Tensor aStage = h.zeros(DType.BF16, r, in);
            Tensor sbStage = h.zeros(DType.BF16, out, r);
            Tensor wm = h.zeros(DType.BF16, g.wmRows(), g.ldw());
            Tensor xm = h.zeros(DType.BF16, n, g.ldx());
            Tensor xmOdd = h.zeros(DType.BF16, n, g.ldx());
            h.be.loraStage(a, b, 0.5f, g, w, null, aStage, sbStage, wm);
            h.be.loraLinearForwardStaged(x, a, g, aStage, wm, xm, y);
            h.be.loraLinearForwardStaged(xOdd, a, g, aStage, wm, xmOdd, yOdd);
            h.sync();
            return first(check(Tolerance.BF16, "Xm at an odd offset vs aligned", h.download(xmOdd), h.download(xm)),
                    check(Tolerance.BF16, "y at an odd offset vs aligned", h.download(yOdd), h.download(y)));
        }
    }

    /**
     * u = x A^T through lora_shrink_fwd_kernel2 vs the host and vs lora_shrink_fwd_kernel1, and S = bf16(u) in the
     * margin of the activation buffer Xm. pack = false: x already lives in Xm (X = Xm, no Xc). pack = true: x is
     * dense [n, in] and the kernel packs it into Xm (Xc = Xm, S = Xm + in), which has 8 padding columns and one
     * row past n: those, and x itself, must stay untouched.
     */
    private String shrink(int n, int in, int r, boolean structured, boolean pack, long seed) {
        int ldm = (in + Math.max(r, 8) + 7) / 8 * 8 + (pack ? 8 : 0);   // Xm's row pitch
        int rowsM = pack ? n + 1 : n;
        int ldx = pack ? in : ldm;
        float[] x = structured ? Harness.structured(n * ldx, 0.25f) : Harness.random(seed, n * ldx, 1f);
        float[] a = structured ? Harness.structured(r * in, 0.125f) : Harness.random(seed + 1, r * in, 0.1f);
        float[] xb = Harness.bf16(x);
        float[] ab = Harness.bf16(a);
        float[] xm0 = pack ? Harness.bf16(Harness.random(seed + 2, rowsM * ldm, 1f)) : xb;   // Xm before the launch
        Tensor X = h.upload(x, DType.BF16, n, ldx);
        Tensor Xm = pack ? h.upload(xm0, DType.BF16, rowsM, ldm) : X;
        Tensor A = h.upload(a, DType.BF16, r, in);
        Tensor u = h.zeros(DType.F32, n, r);
        h.poison(u);
        h.launch("lora_shrink_fwd_kernel2", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                h.addr(X), ldx, h.addr(A), in, h.addr(u), h.addr(Xm, 0, in, ldm), ldm, pack ? h.addr(Xm) : 0L,
                pack ? ldm : 0, n, in, r);
        float[] got = h.download(u);
        float[] xmAfter = h.download(Xm);
        double[] ref = new double[n * r];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r; j++) {
                double s = 0;
                for (int k = 0; k < in; k++) {
                    s += (double) xb[i * ldx + k] * ab[j * in + k];
                }
                ref[i * r + j] = s;
            }
        }
        // the portable twin on fp32 copies of the same bf16 values
        Tensor xf = h.upload(Harness.cols(xb, n, ldx, 0, in), DType.F32, n, in);
        Tensor af = h.upload(ab, DType.F32, r, in);
        Tensor ut = h.zeros(DType.F32, n, r);
        h.poison(ut);
        h.launch("lora_shrink_fwd_kernel1", Dim3.of(Harness.ceilDiv(n, 16), Harness.ceilDiv(r, 16)), Dim3.of(16, 16),
                h.addr(xf), h.addr(af), h.addr(ut), n, in, r);
        float[] twin = h.download(ut);
        float[] margin = Harness.cols(xmAfter, n, ldm, in, r);
        float[] marginRef = new float[n * r];
        for (int i = 0; i < marginRef.length; i++) {
            marginRef[i] = Harness.bf16((float) ref[i]);
        }
        return first(check(Tolerance.BF16, "u vs host", got, ref),
                check(Tolerance.BF16, "u vs lora_shrink_fwd_kernel1", got, twin),
                check(Tolerance.BF16, "S in Xm's margin", margin, marginRef),
                check(Tolerance.F32, pack ? "x packed into Xm" : "x columns untouched",
                        Harness.cols(xmAfter, n, ldm, 0, in), Harness.cols(xb, n, ldx, 0, in)),
                pack ? check(Tolerance.F32, "dense x untouched", h.download(X), xb) : null,
                pack ? check(Tolerance.F32, "Xm outside [0:n, 0:in+r] untouched",
                        outside(xmAfter, rowsM, ldm, n, in + r), outside(xm0, rowsM, ldm, n, in + r)) : null);
    }

    /** The elements of a row-major [rows, ld] matrix outside its top-left [n, w] block, in order. */
    private static float[] outside(float[] m, int rows, int ld, int n, int w) {
        float[] o = new float[rows * ld - n * w];
        int e = 0;
        for (int i = 0; i < rows; i++) {
            for (int c = 0; c < ld; c++) {
                if (i >= n || c >= w) {
                    o[e++] = m[i * ld + c];
                }
            }
        }
        return o;
    }

    /** Wm's margins: bf16(s B) right of W, bf16(A) below it; W itself untouched. */
    private String margin(int out, int in, int r) {
        int ldw = in + r;
        float s = 0.5f;
        float[] w = Harness.random(5, (out + r) * ldw, 1f);
        float[] a = Harness.random(6, r * in, 1f);
        float[] b = Harness.random(7, out * r, 1f);
        Tensor W = h.upload(w, DType.BF16, out + r, ldw);
        Tensor A = h.upload(a, DType.F32, r, in);
        Tensor B = h.upload(b, DType.F32, out, r);
        h.launch("lora_margin_fwd_kernel1", Harness.grid1d((long) out * r + (long) r * in, 256), Dim3.of(256),
                h.addr(A), h.addr(B), s, h.addr(W), ldw, out, in, r);
        float[] got = h.download(W);
        float[] want = Harness.bf16(w);
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < r; j++) {
                want[o * ldw + in + j] = Harness.bf16(s * b[o * r + j]);
            }
        }
        for (int j = 0; j < r; j++) {
            for (int k = 0; k < in; k++) {
                want[(out + j) * ldw + k] = Harness.bf16(a[j * in + k]);
            }
        }
        return check(Tolerance.F32, "Wm after lora_margin_fwd_kernel1", got, want);
    }

    /** Y = [x|S][W|sB]^T by one cuBLAS GEMM (K = in + r) vs x W^T + s (x A^T) B^T on the host. */
    private String kconcat(int n, int in, int out, int r) {
        int ldx = in + r;
        int ldw = in + r;
        float s = 2f;
        float[] xm = Harness.random(31, n * ldx, 1f);
        float[] w = Harness.random(32, (out + r) * ldw, 0.05f);
        float[] a = Harness.random(33, r * in, 0.05f);
        float[] b = Harness.random(34, out * r, 0.1f);
        Tensor X = h.upload(xm, DType.BF16, n, ldx);
        Tensor W = h.upload(w, DType.BF16, out + r, ldw);
        Tensor A = h.upload(a, DType.F32, r, in);
        Tensor B = h.upload(b, DType.F32, out, r);
        Tensor Y = h.zeros(DType.F32, n, out);
        h.poison(Y);
        h.launch("lora_margin_fwd_kernel1", Harness.grid1d((long) out * r + (long) r * in, 256), Dim3.of(256),
                h.addr(A), h.addr(B), s, h.addr(W), ldw, out, in, r);
        h.launch("lora_shrink_fwd_kernel2", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                h.addr(X), ldx, h.addr(W, out, 0, ldw), ldw, 0L, h.addr(X, 0, in, ldx), ldx, 0L, 0, n, in, r);
        h.gemm(false, true, n, out, in + r, 1f, h.addr(X), DType.BF16, ldx, h.addr(W), DType.BF16, ldw,
                0f, h.addr(Y), DType.F32, out);
        float[] got = h.download(Y);
        float[] xb = Harness.bf16(xm);
        float[] wb = Harness.bf16(w);
        double[] ref = new double[n * out];
        for (int i = 0; i < n; i++) {
            double[] u = new double[r];
            for (int j = 0; j < r; j++) {
                for (int k = 0; k < in; k++) {
                    u[j] += (double) xb[i * ldx + k] * a[j * in + k];
                }
            }
            for (int o = 0; o < out; o++) {
                double y = 0;
                for (int k = 0; k < in; k++) {
                    y += (double) xb[i * ldx + k] * wb[o * ldw + k];
                }
                for (int j = 0; j < r; j++) {
                    y += s * u[j] * b[o * r + j];
                }
                ref[i * out + o] = y;
            }
        }
        return check(Tolerance.BF16, "Y = [x|S][W|sB]^T", got, ref);
    }

    /**
     * du = dY sB, dS = bf16(du) into the margin of the gradient buffer dYm, dB += s dY^T S, against the host on the
     * same bf16 inputs. pack = false: dY already lives in dYm (dY = dYm, no dYc). pack = true: dY is dense [n, out]
     * and the kernel packs it into dYm (dYc = dYm, dS = dYm + out), which has 8 padding columns and one row past n:
     * those, and dY itself, must stay untouched.
     */
    private String backward(int n, int out, int r, boolean pack, long seed) {
        int ldm = pack ? (out + r + 7) / 8 * 8 + 8 : out + r;   // dYm's row pitch
        int rowsM = pack ? n + 1 : n;
        int ldy = pack ? out : ldm;
        int ldb = 16 + r;       // sB lives at column 16 of a [out, 16 + r] buffer (as in Wm, at column in)
        int lds = 8 + r;        // S at column 8 of [n, 8 + r]
        float s = 0.75f;
        float[] dy = Harness.random(seed, n * ldy, 1f);
        float[] sbm = Harness.random(seed + 1, out * ldb, 0.1f);
        float[] sm = Harness.random(seed + 2, n * lds, 1f);
        float[] db0 = Harness.random(seed + 3, out * r, 1f);
        float[] dyb = Harness.bf16(dy);
        float[] dym0 = pack ? Harness.bf16(Harness.random(seed + 4, rowsM * ldm, 1f)) : dyb;   // dYm before
        Tensor dY = h.upload(dy, DType.BF16, n, ldy);
        Tensor dYm = pack ? h.upload(dym0, DType.BF16, rowsM, ldm) : dY;
        Tensor SB = h.upload(sbm, DType.BF16, out, ldb);
        Tensor S = h.upload(sm, DType.BF16, n, lds);
        Tensor du = h.zeros(DType.F32, n, r);
        Tensor dB = h.upload(db0, DType.F32, out, r);
        h.poison(du);
        h.launch("lora_linear_bwd_x_kernel1", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                h.addr(dY), ldy, out, h.addr(SB, 0, 16, ldb), ldb, h.addr(S, 0, 8, lds), lds, s,
                h.addr(du), h.addr(dYm, 0, out, ldm), ldm, pack ? h.addr(dYm) : 0L, pack ? ldm : 0, h.addr(dB), n, r);
        float[] gotDu = h.download(du);
        float[] gotDb = h.download(dB);
        float[] dymAfter = h.download(dYm);
        float[] sbb = Harness.bf16(sbm);
        float[] sb = Harness.bf16(sm);
        double[] refDu = new double[n * r];
        double[] refDb = new double[out * r];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r; j++) {
                double acc = 0;
                for (int o = 0; o < out; o++) {
                    acc += (double) dyb[i * ldy + o] * sbb[o * ldb + 16 + j];
                }
                refDu[i * r + j] = acc;
            }
        }
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < r; j++) {
                double acc = 0;
                for (int i = 0; i < n; i++) {
                    acc += (double) dyb[i * ldy + o] * sb[i * lds + 8 + j];
                }
                refDb[o * r + j] = db0[o * r + j] + s * acc;
            }
        }
        float[] margin = Harness.cols(dymAfter, n, ldm, out, r);
        float[] marginRef = new float[n * r];
        for (int i = 0; i < marginRef.length; i++) {
            marginRef[i] = Harness.bf16((float) refDu[i]);
        }
        return first(check(Tolerance.BF16, "du = dY sB", gotDu, refDu),
                check(Tolerance.BF16, "dB += s dY^T S", gotDb, refDb),
                check(Tolerance.BF16, "dS in dYm's margin", margin, marginRef),
                check(Tolerance.F32, pack ? "dY packed into dYm" : "dY untouched",
                        Harness.cols(dymAfter, n, ldm, 0, out), Harness.cols(dyb, n, ldy, 0, out)),
                pack ? check(Tolerance.F32, "dense dY untouched", h.download(dY), dyb) : null,
                pack ? check(Tolerance.F32, "dYm outside [0:n, 0:out+r] untouched",
                        outside(dymAfter, rowsM, ldm, n, out + r), outside(dym0, rowsM, ldm, n, out + r)) : null);
    }

    // ---------------------------------------------------------------- DoRA

    private String gram(int r, int in) {
        float[] a = Harness.random(41, r * in, 1f);
        Tensor A = h.upload(a, DType.F32, r, in);
        Tensor G = h.zeros(DType.F32, r, r);
        h.poison(G);
        h.launch("dora_gram_fwd_kernel1", Dim3.of(r, r), Dim3.of(256), h.addr(A), in, in, r, h.addr(G));
        double[] ref = new double[r * r];
        for (int i = 0; i < r; i++) {
            for (int j = 0; j < r; j++) {
                for (int k = 0; k < in; k++) {
                    ref[i * r + j] += (double) a[i * in + k] * a[j * in + k];
                }
            }
        }
        return check(Tolerance.F32, "G = A A^T", h.download(G), ref);
    }

    private String doraNorm(int out, int in, int r) {
        int ldw = in + r;
        float s = 1.5f;
        float[] w = Harness.random(51, out * ldw, 0.05f);
        float[] a = Harness.random(52, r * in, 0.05f);
        float[] b = Harness.random(53, out * r, 0.2f);
        float[] m = Harness.random(54, out, 1f);
        float[] ab = Harness.bf16(a);
        Tensor W = h.upload(w, DType.BF16, out, ldw);
        Tensor Ab = h.upload(a, DType.BF16, r, in);
        Tensor Af = h.upload(a, DType.F32, r, in);
        Tensor B = h.upload(b, DType.F32, out, r);
        Tensor M = h.upload(m, DType.F32, out);
        Tensor G = h.zeros(DType.F32, r, r);
        Tensor nrm = h.zeros(DType.F32, out);
        Tensor g = h.zeros(DType.F32, out);
        h.poison(nrm);
        h.poison(g);
        h.launch("dora_gram_fwd_kernel1", Dim3.of(r, r), Dim3.of(256), h.addr(Af), in, in, r, h.addr(G));
        h.launch("dora_norm_fwd_kernel2", Dim3.of(1, Harness.ceilDiv(out, 128)), Dim3.of(256),
                h.addr(W), ldw, h.addr(Ab), in, h.addr(B), h.addr(G), s, h.addr(M), h.addr(nrm), h.addr(g), out, in, r);
        float[] wb = Harness.bf16(w);
        double[] refN = new double[out];
        double[] refG = new double[out];
        for (int o = 0; o < out; o++) {
            double sq = 0;
            for (int k = 0; k < in; k++) {
                double v = wb[o * ldw + k];
                for (int j = 0; j < r; j++) {
                    v += s * (double) b[o * r + j] * ab[j * in + k];
                }
                sq += v * v;
            }
            refN[o] = Math.sqrt(sq);
            refG[o] = m[o] / refN[o];
        }
        return first(check(Tolerance.BF16, "n = ||W + sBA|| per row", h.download(nrm), refN),
                check(Tolerance.BF16, "g = m / n", h.download(g), refG));
    }

    /** n of W [in, ldw] (fan-in-fan-out, first out columns) with the fp32 A: fp32 math on bf16 W, F32 tolerance. */
    private String doraNormFifo(int out, int in, int r) {
        int ldw = out + 3;
        float s = 1.5f;
        float[] w = Harness.random(71, in * ldw, 0.05f);
        float[] a = Harness.random(72, r * in, 0.05f);
        float[] b = Harness.random(73, out * r, 0.2f);
        Tensor W = h.upload(w, DType.BF16, in, ldw);
        Tensor A = h.upload(a, DType.F32, r, in);
        Tensor B = h.upload(b, DType.F32, out, r);
        Tensor nrm = h.zeros(DType.F32, out);
        h.poison(nrm);
        h.launch("dora_norm_fifo_fwd_kernel1", Dim3.of(Harness.ceilDiv(out, 32)), Dim3.of(256),
                h.addr(W), ldw, h.addr(A), in, h.addr(B), s, h.addr(nrm), out, in, r);
        float[] wb = Harness.bf16(w);
        double[] refN = new double[out];
        for (int o = 0; o < out; o++) {
            double sq = 0;
            for (int k = 0; k < in; k++) {
                double v = wb[k * ldw + o];
                for (int j = 0; j < r; j++) {
                    v += s * (double) b[o * r + j] * a[j * in + k];
                }
                sq += v * v;
            }
            refN[o] = Math.sqrt(sq);
        }
        return check(Tolerance.F32, "n = ||W + s(BA)^T|| per column", h.download(nrm), refN);
    }

    private String doraScale(int n, int out) {
        float[] z = Harness.random(61, n * out, 2f);
        float[] g = Harness.random(62, out, 1.5f);
        float[] bias = Harness.random(63, out, 1f);
        Tensor Z = h.upload(z, DType.BF16, n, out);
        Tensor Y = h.zeros(DType.BF16, n, out);
        Tensor G = h.upload(g, DType.F32, out);
        Tensor Bi = h.upload(bias, DType.F32, out);
        h.poison(Y);
        h.launch("dora_scale_fwd_kernel1", Harness.grid1d((long) n * out / 8 + 1, 256), Dim3.of(256),
                h.addr(Z), out, h.addr(Y), out, h.addr(G), h.addr(Bi), n, out);
        float[] zb = Harness.bf16(z);
        double[] ref = new double[n * out];
        for (int i = 0; i < n; i++) {
            for (int o = 0; o < out; o++) {
                ref[i * out + o] = (double) g[o] * zb[i * out + o] + bias[o];
            }
        }
        return check(Tolerance.BF16, "y = g∘Z + bias", h.download(Y), ref);
    }

    private String doraScaleBwd(int n, int out) {
        float[] dy = Harness.random(71, n * out, 1f);
        float[] z = Harness.random(72, n * out, 1f);
        float[] g = Harness.random(73, out, 1.5f);
        float[] nrm = new float[out];
        float[] dm0 = Harness.random(74, out, 1f);
        for (int o = 0; o < out; o++) {
            nrm[o] = 0.5f + (o % 5);
        }
        Tensor dY = h.upload(dy, DType.BF16, n, out);
        Tensor Z = h.upload(z, DType.BF16, n, out);
        Tensor G = h.upload(g, DType.F32, out);
        Tensor Nn = h.upload(nrm, DType.F32, out);
        Tensor dZ = h.zeros(DType.BF16, n, out);
        Tensor dm = h.upload(dm0, DType.F32, out);
        h.poison(dZ);
        h.launch("dora_scale_bwd_x_kernel1", Dim3.of(Harness.ceilDiv(out, 256), 3), Dim3.of(256),
                h.addr(dY), out, h.addr(Z), out, h.addr(G), h.addr(Nn), h.addr(dZ), out, h.addr(dm), n, out);
        float[] dyb = Harness.bf16(dy);
        float[] zb = Harness.bf16(z);
        double[] refDz = new double[n * out];
        double[] refDm = new double[out];
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int i = 0; i < n; i++) {
                refDz[i * out + o] = (double) g[o] * dyb[i * out + o];
                acc += (double) dyb[i * out + o] * zb[i * out + o];
            }
            refDm[o] = dm0[o] + acc / nrm[o];
        }
        return first(check(Tolerance.BF16, "dZ = g∘dY", h.download(dZ), refDz),
                check(Tolerance.BF16, "dm += sum dY∘Z / n", h.download(dm), refDm));
    }

    // ---------------------------------------------------------------- VeRA

    private String veraShrink(int n, int in, int r) {
        int ldx = in + r;
        float[] xm = Harness.random(81, n * ldx, 1f);
        float[] a = Harness.random(82, r * in, 0.1f);
        float[] ld = Harness.random(83, r, 1f);
        Tensor X = h.upload(xm, DType.BF16, n, ldx);
        Tensor A = h.upload(a, DType.BF16, r, in);
        Tensor Ld = h.upload(ld, DType.F32, r);
        Tensor u = h.zeros(DType.F32, n, r);
        h.poison(u);
        h.launch("vera_shrink_fwd_kernel1", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                h.addr(X), ldx, h.addr(A), in, h.addr(Ld), h.addr(u), h.addr(X, 0, in, ldx), ldx, n, in, r);
        float[] xb = Harness.bf16(xm);
        float[] ab = Harness.bf16(a);
        double[] ref = new double[n * r];
        double[] refV = new double[n * r];
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < r; j++) {
                double acc = 0;
                for (int k = 0; k < in; k++) {
                    acc += (double) xb[i * ldx + k] * ab[j * in + k];
                }
                ref[i * r + j] = acc;
                refV[i * r + j] = ld[j] * acc;
            }
        }
        float[] xAfter = h.download(X);
        return first(check(Tolerance.BF16, "u = x A^T", h.download(u), ref),
                check(Tolerance.BF16, "V = λd∘u in X's margin", Harness.cols(xAfter, n, ldx, in, r), refV));
    }

    // ---------------------------------------------------------------- Delta-LoRA

    private String deltaLora(int out, int in, int r, String mode, boolean fan) {
        int rows = fan ? in : out;
        int cols = fan ? out : in;
        float c = 0.37f;
        float[] w = Harness.random(121, rows * cols, 1f);
        float[] aNew = Harness.random(122, r * in, 1f);
        float[] aOld = Harness.random(123, r * in, 1f);
        float[] bNew = Harness.random(124, out * r, 1f);
        float[] bOld = Harness.random(125, out * r, 1f);
        float[] wb = Harness.bf16(w);
        Tensor W = h.upload(wb, DType.BF16, rows, cols);
        Tensor master = mode.equals("master") ? h.upload(wb, DType.F32, rows, cols) : null;
        Tensor comp = mode.equals("comp") ? h.zeros(DType.BF16, rows, cols) : null;
        Tensor An = h.upload(aNew, DType.F32, r, in);
        Tensor Ao = h.upload(aOld, DType.F32, r, in);
        Tensor Bn = h.upload(bNew, DType.F32, out, r);
        Tensor Bo = h.upload(bOld, DType.F32, out, r);
        h.launch("delta_lora_update_fwd_kernel1", Dim3.of(Harness.ceilDiv(cols, 128), Harness.ceilDiv(rows, 64)),
                Dim3.of(256), h.addr(W), cols, master == null ? 0L : h.addr(master), cols,
                comp == null ? 0L : h.addr(comp), cols, fan ? 1 : 0, c, h.addr(An), h.addr(Ao), h.addr(Bn),
                h.addr(Bo), out, in, r);
        double[] ref = new double[rows * cols];
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                double d = 0;
                for (int j = 0; j < r; j++) {
                    d += (double) bNew[o * r + j] * aNew[j * in + k] - (double) bOld[o * r + j] * aOld[j * in + k];
                }
                int idx = fan ? k * cols + o : o * cols + k;
                ref[idx] = wb[idx] + c * d;
            }
        }
        float[] gotW = h.download(W);
        return switch (mode) {
            case "master" -> first(check(Tolerance.F32, "fp32 master", h.download(master), ref),
                    check(Tolerance.BF16, "W = bf16(master)", gotW, ref));
            case "comp" -> {
                float[] rsd = h.download(comp);
                float[] sum = new float[gotW.length];
                for (int i = 0; i < sum.length; i++) {
                    sum[i] = gotW[i] + rsd[i];
                }
                // W + R carries ~16 significant bits: much tighter than bf16 alone
                yield first(check(new Tolerance(1e-4, 1e-4), "W + residual", sum, ref),
                        check(Tolerance.BF16, "W", gotW, ref));
            }
            default -> check(Tolerance.BF16, "W", gotW, ref);
        };
    }

    // ---------------------------------------------------------------- AdamW

    private static final float B1 = 0.9f;
    private static final float B2 = 0.999f;
    private static final float EPS = 1e-8f;

    /** The host-folded scalars of adamw.kc: decay, step_size, bc2_sqrt (in double, then float). */
    private static float[] scalars(float lr, float wd, int step) {
        return new float[] {(float) (1.0 - (double) lr * wd), (float) (lr / (1.0 - Math.pow(B1, step))),
                (float) Math.sqrt(1.0 - Math.pow(B2, step))};
    }

    private String adamw(int n) {
        float[] p = Harness.random(131, n, 1f);
        float[] g = Harness.random(132, n, 1f);
        float[] m = Harness.random(133, n, 0.1f);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = Math.abs(g[i]) * 0.01f;
        }
        float[] sc = scalars(1e-3f, 0.01f, 3);
        Tensor[] fast = {h.upload(p, DType.F32, n), h.upload(g, DType.F32, n), h.upload(m, DType.F32, n),
                h.upload(v, DType.F32, n)};
        Tensor[] twin = {h.upload(p, DType.F32, n), h.upload(g, DType.F32, n), h.upload(m, DType.F32, n),
                h.upload(v, DType.F32, n)};
        h.launch("adamw_fwd_kernel2", Harness.grid1d((n + 3) / 4, 256), Dim3.of(256), h.addr(fast[0]), h.addr(fast[1]),
                h.addr(fast[2]), h.addr(fast[3]), (long) n, B1, B2, EPS, sc[0], sc[1], sc[2]);
        // an unaligned tail start: elements 1.. of a copy, to take the scalar path
        h.launch("adamw_fwd_kernel1", Harness.grid1d(n, 256), Dim3.of(256), h.addr(twin[0]), 0, h.addr(twin[1]), 0,
                h.addr(twin[2]), 0, h.addr(twin[3]), 0, (long) n, B1, B2, EPS, sc[0], sc[1], sc[2]);
        Tensor[] odd = {h.upload(p, DType.F32, n), h.upload(g, DType.F32, n), h.upload(m, DType.F32, n),
                h.upload(v, DType.F32, n)};
        h.launch("adamw_fwd_kernel2", Harness.grid1d(n, 256), Dim3.of(256), h.addr(odd[0]) + 4, h.addr(odd[1]) + 4,
                h.addr(odd[2]) + 4, h.addr(odd[3]) + 4, (long) (n - 1), B1, B2, EPS, sc[0], sc[1], sc[2]);
        float[] twinP = h.download(twin[0]);
        float[] oddP = h.download(odd[0]);
        float[] oddRef = twinP.clone();
        oddRef[0] = p[0];
        return first(check(Tolerance.F32, "p vs adamw_fwd_kernel1", h.download(fast[0]), twinP),
                check(Tolerance.F32, "m vs adamw_fwd_kernel1", h.download(fast[2]), h.download(twin[2])),
                check(Tolerance.F32, "v vs adamw_fwd_kernel1", h.download(fast[3]), h.download(twin[3])),
                check(Tolerance.F32, "p, unaligned start", oddP, oddRef));
    }

    private String adamwMulti() {
        int[] sizes = {1000, 4099, 70001};
        int[] group = {0, 1, 1};
        boolean[] frozen = {false, false, true};
        float[] lr = {1e-3f, 1.6e-2f};
        float wd = 0.01f;
        int step = 5;
        int chunk = 4096;
        List<Tensor[]> fast = new ArrayList<>();
        List<Tensor[]> twin = new ArrayList<>();
        List<float[]> p0 = new ArrayList<>();
        for (int t = 0; t < sizes.length; t++) {
            int n = sizes[t];
            float[] p = Harness.random(140 + t, n, 1f);
            float[] g = Harness.random(150 + t, n, 1f);
            float[] m = Harness.random(160 + t, n, 0.1f);
            float[] v = new float[n];
            for (int i = 0; i < n; i++) {
                v[i] = Math.abs(g[i]) * 0.01f;
            }
            p0.add(p);
            fast.add(new Tensor[] {h.upload(p, DType.F32, n), h.upload(g, DType.F32, n), h.upload(m, DType.F32, n),
                    h.upload(v, DType.F32, n)});
            twin.add(new Tensor[] {h.upload(p, DType.F32, n), h.upload(g, DType.F32, n), h.upload(m, DType.F32, n),
                    h.upload(v, DType.F32, n)});
        }
        long[] ptrs = new long[sizes.length * 4];
        long[] numel = new long[sizes.length];
        List<Integer> cTensor = new ArrayList<>();
        List<Long> cStart = new ArrayList<>();
        List<Integer> cGroup = new ArrayList<>();
        int[] frozenFlags = new int[sizes.length];
        for (int t = 0; t < sizes.length; t++) {
            for (int q = 0; q < 4; q++) {
                ptrs[4 * t + q] = h.addr(fast.get(t)[q]);
            }
            numel[t] = sizes[t];
            frozenFlags[t] = frozen[t] ? 1 : 0;
            for (long s = 0; s < sizes[t]; s += chunk) {
                cTensor.add(t);
                cStart.add(s);
                cGroup.add(group[t]);
            }
        }
        float[] gDecay = new float[lr.length];
        float[] gStep = new float[lr.length];
        for (int g = 0; g < lr.length; g++) {
            float[] sc = scalars(lr[g], wd, step);
            gDecay[g] = sc[0];
            gStep[g] = sc[1];
        }
        float bc2 = scalars(lr[0], wd, step)[2];
        Tensor tPtrs = h.longs(ptrs);
        Tensor tNumel = h.longs(numel);
        Tensor tCT = h.ints(cTensor.stream().mapToInt(Integer::intValue).toArray());
        Tensor tCS = h.longs(cStart.stream().mapToLong(Long::longValue).toArray());
        Tensor tCG = h.ints(cGroup.stream().mapToInt(Integer::intValue).toArray());
        Tensor tGD = h.upload(gDecay, DType.F32, gDecay.length);
        Tensor tGS = h.upload(gStep, DType.F32, gStep.length);
        Tensor tFz = h.ints(frozenFlags);
        Tensor tHy = h.upload(new float[] {bc2, 1f}, DType.F32, 2);
        h.launch("adamw_multi_fwd_kernel1", Dim3.of(cTensor.size()), Dim3.of(256), h.addr(tPtrs), h.addr(tNumel),
                h.addr(tCT), h.addr(tCS), h.addr(tCG), h.addr(tGD), h.addr(tGS), h.addr(tFz), h.addr(tHy), chunk,
                B1, B2, EPS);
        String fail = null;
        for (int t = 0; t < sizes.length && fail == null; t++) {
            Tensor[] tw = twin.get(t);
            if (!frozen[t]) {
                float[] sc = scalars(lr[group[t]], wd, step);
                h.launch("adamw_fwd_kernel1", Harness.grid1d(sizes[t], 256), Dim3.of(256), h.addr(tw[0]), 0,
                        h.addr(tw[1]), 0, h.addr(tw[2]), 0, h.addr(tw[3]), 0, (long) sizes[t], B1, B2, EPS, sc[0], sc[1],
                        sc[2]);
            }
            float[] want = frozen[t] ? p0.get(t) : h.download(tw[0]);
            fail = first(check(Tolerance.F32, "tensor " + t + " p", h.download(fast.get(t)[0]), want),
                    check(Tolerance.F32, "tensor " + t + " v", h.download(fast.get(t)[3]), h.download(tw[3])));
        }
        return fail;
    }
}
