package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Dropout;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.OpChecks;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.WorkPool;

import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.WeakHashMap;

/**
 * The pure-Java reference backend (ARCHITECTURE.md, layer 2): every op in plain Java over {@code float[]}
 * ({@code int[]} for I32), fp32 math, BF16/F16 tensors stored as fp32 values rounded to their dtype on every
 * write. It is the numerical oracle the device backends are tested against.
 *
 * <p>GEMM has two paths (STYLE.md 12.1, reference first): {@link CpuGemm#naive} (a double-accumulated triple
 * loop) and {@link CpuGemm#fast} (Vector API, packed panels, register blocking, multithreaded). The system
 * property {@code lorakit.cpu.naive=true} (read at construction) selects the naive path.
 *
 * <p>Every op checks owner, open state, dtypes and shapes before it writes anything; a tensor of another
 * backend instance or a bad shape throws {@link ShapeException}, a closed tensor or backend
 * {@link GpuException}. Where a BLAS-style {@code beta} is 0 (gemm, sumRows, axpby) the old output is not read,
 * so NaN there does not propagate.
 *
 * <p>Large elementwise ops, broadcasts, transposes, row dots, dropout masks and the optimizer updates run on
 * {@link CpuParallel#forRange} (ranges fixed by the shape; no value is combined across ranges). Every op gives
 * the same bits on every call at every JIT tier (see {@link CpuMath}); sumRows, sum and dot stay sequential.
 */
public final class CpuBackend implements Backend {

    /** System property that selects the naive (reference) GEMM. */
    public static final String NAIVE_PROPERTY = "lorakit.cpu.naive";

    /** Work per element of GELU (an exp and a division) for CpuParallel.forRange. */
    private static final int GELU_WORK = 8;

    private final boolean naive;
    private volatile boolean closed;
    /** Storage of every open tensor (weak keys: an unreachable tensor's memory is collected as usual). */
    private final Map<Tensor, CpuStorage> live = new WeakHashMap<>();
    /** Returned work tensors of the default compositions ({@link #borrowWork}). */
    private final WorkPool work = new WorkPool();

    /** A backend whose GEMM path follows {@code -Dlorakit.cpu.naive} (default: the fast path). */
    public CpuBackend() {
        this(Boolean.getBoolean(NAIVE_PROPERTY));
    }

    /** A backend with an explicit GEMM path: {@code naive} selects the reference triple loop. */
    public CpuBackend(boolean naive) {
        this.naive = naive;
    }

    /** Whether this instance uses the naive GEMM. */
    public boolean naive() {
        return naive;
    }

    @Override
    public String name() {
        return "cpu";
    }

    @Override
    public String toString() {
        return "CpuBackend[" + (naive ? "naive" : "fast") + "]";
    }

    // ================================================================ validation helpers

    private CpuStorage storage(String op, Tensor t) {
        OpChecks.backendOpen(op, this, closed);
        OpChecks.tensor(op, this, t);
        CpuStorage s = (CpuStorage) t.handle();
        if (s.f == null && s.i == null) {
            throw new GpuException(op + ": use of released tensor " + t);
        }
        return s;
    }

    /** The values of a math (F32/BF16/F16) tensor. */
    private float[] f(String op, Tensor t) {
        CpuStorage s = storage(op, t);
        OpChecks.math(op, t);
        return s.f;
    }

    /** The values of an I32 tensor. */
    private int[] ints(String op, Tensor t) {
        CpuStorage s = storage(op, t);
        OpChecks.ints(op, t);
        return s.i;
    }

    private static int checkedSize(long numel, int... shape) {
        if (numel > Integer.MAX_VALUE - 8) {
            throw new ShapeException("cpu: tensor of shape " + Arrays.toString(shape) + " has " + numel
                    + " elements; the CPU backend holds at most 2^31-9 per tensor");
        }
        return (int) numel;
    }

    /** Rounds out[from, to) to t's dtype (no-op for F32). */
    static void round(DType dt, float[] out, int from, int to) {
        if (dt == DType.F32) {
            return;
        }
        for (int i = from; i < to; i++) {
            out[i] = dt.round(out[i]);
        }
    }

    /** Rounds all of out to t's dtype (no-op for F32), in parallel for large tensors. */
    private static void round(Tensor t, float[] out) {
        DType dt = t.dtype();
        if (dt != DType.F32) {
            CpuParallel.forRange(out.length, 1, (lo, hi) -> round(dt, out, lo, hi));
        }
    }

    /** A loop over [lo, hi) of two inputs into an output (the arrays may alias elementwise). */
    @FunctionalInterface
    private interface Map2 {
        void apply(float[] a, float[] b, float[] out, int lo, int hi);
    }

    /** A loop over [lo, hi) of one input into an output (the arrays may alias elementwise). */
    @FunctionalInterface
    private interface Map1 {
        void apply(float[] x, float[] out, int lo, int hi);
    }

    /**
     * out = k(a, b) elementwise: a, b, out with the same numel; out rounded to its dtype (same pass);
     * unitWork sizes the work per element for {@link CpuParallel#forRange}.
     */
    private void elementwise(String op, Tensor a, Tensor b, Tensor out, int unitWork, Map2 k) {
        float[] av = f(op, a), bv = f(op, b), ov = f(op, out);
        OpChecks.sameNumel(op, a, b);
        OpChecks.sameNumel(op, a, out);
        DType dt = out.dtype();
        CpuParallel.forRange(av.length, unitWork, (lo, hi) -> {
            k.apply(av, bv, ov, lo, hi);
            round(dt, ov, lo, hi);
        });
    }

    /** As the two-input elementwise: out = k(x), x and out with the same numel. */
    private void elementwise(String op, Tensor x, Tensor out, int unitWork, Map1 k) {
        float[] xv = f(op, x), ov = f(op, out);
        OpChecks.sameNumel(op, x, out);
        DType dt = out.dtype();
        CpuParallel.forRange(xv.length, unitWork, (lo, hi) -> {
            k.apply(xv, ov, lo, hi);
            round(dt, ov, lo, hi);
        });
    }

    /**
     * out = a (+ or *) v broadcast over a [rows, cols] seen as a matrix: v has one value per column ({@code perColumn},
     * v [C]) or per row (v [N]); out rounded to its dtype.
     */
    private void broadcast(String op, Tensor a, Tensor v, Tensor out, boolean perColumn, boolean multiply) {
        float[] av = f(op, a), vv = f(op, v), ov = f(op, out);
        OpChecks.sameNumel(op, a, out);
        int rows = a.rows(), cols = a.cols();
        OpChecks.numelIs(op, v, perColumn ? cols : rows, (perColumn ? "one per column of " : "one per row of ") + a);
        // out may alias v (a [1,C] row): read v from a snapshot
        float[] vs = vv == ov ? vv.clone() : vv;
        DType dt = out.dtype();
        CpuParallel.forRange(rows, cols, (r0, r1) -> {
            CpuElementwise.broadcast(av, vs, ov, cols, perColumn, multiply, r0, r1);
            round(dt, ov, r0 * cols, r1 * cols);
        });
    }

    // ================================================================ memory

    @Override
    public Tensor zeros(DType dtype, int... shape) {
        OpChecks.backendOpen("zeros", this, closed);
        if (dtype == null) {
            throw new ShapeException("zeros: dtype is null");
        }
        int n = checkedSize(Tensor.numel(shape), shape);
        CpuStorage s = dtype == DType.I32 ? new CpuStorage(null, new int[n]) : new CpuStorage(new float[n], null);
        return register(dtype, shape, s);
    }

    @Override
    public Tensor upload(float[] data, DType dtype, int... shape) {
        OpChecks.backendOpen("upload", this, closed);
        if (dtype == null || data == null) {
            throw new ShapeException("upload: data and dtype must not be null");
        }
        int n = checkedSize(Tensor.numel(shape), shape);
        OpChecks.dataLength("upload", data.length, n, shape);
        CpuStorage s;
        if (dtype == DType.I32) {
            int[] v = new int[n];
            for (int i = 0; i < n; i++) {
                v[i] = (int) data[i];
            }
            s = new CpuStorage(null, v);
        } else {
            float[] v = data.clone();
            round(dtype, v, 0, n);
            s = new CpuStorage(v, null);
        }
        return register(dtype, shape, s);
    }

    @Override
    public Tensor uploadInts(int[] data, int... shape) {
        OpChecks.backendOpen("uploadInts", this, closed);
        if (data == null) {
            throw new ShapeException("uploadInts: data must not be null");
        }
        int n = checkedSize(Tensor.numel(shape), shape);
        OpChecks.dataLength("uploadInts", data.length, n, shape);
        return register(DType.I32, shape, new CpuStorage(null, data.clone()));
    }

    @Override
    public void write(Tensor dst, int[] data) {
        int[] d = ints("write", dst);
        if (data == null) {
            throw new ShapeException("write: data must not be null");
        }
        OpChecks.dataLength("write", data.length, dst.numel(), dst.shape());
        System.arraycopy(data, 0, d, 0, data.length);
    }

    @Override
    public void write(Tensor dst, float[] data) {
        CpuStorage d = storage("write", dst);
        OpChecks.math("write", dst);
        if (data == null) {
            throw new ShapeException("write: data must not be null");
        }
        OpChecks.dataLength("write", data.length, dst.numel(), dst.shape());
        System.arraycopy(data, 0, d.f, 0, data.length);
        round(dst.dtype(), d.f, 0, data.length);
    }

    @Override
    public float[] download(Tensor t) {
        CpuStorage s = storage("download", t);
        if (s.i != null) {
            float[] out = new float[s.i.length];
            for (int i = 0; i < out.length; i++) {
                out[i] = s.i[i];
            }
            return out;
        }
        return s.f.clone();
    }

    @Override
    public int[] downloadInts(Tensor t) {
        return ints("downloadInts", t).clone();
    }

    @Override
    public void copy(Tensor src, Tensor dst) {
        CpuStorage s = storage("copy", src);
        CpuStorage d = storage("copy", dst);
        OpChecks.sameNumel("copy", src, dst);
        int n = (int) src.numel();
        if (d.i != null) {
            if (s.i != null) {
                System.arraycopy(s.i, 0, d.i, 0, n);
            } else {
                for (int i = 0; i < n; i++) {
                    d.i[i] = (int) s.f[i];
                }
            }
        } else {
            if (s.i != null) {
                for (int i = 0; i < n; i++) {
                    d.f[i] = s.i[i];
                }
            } else {
                System.arraycopy(s.f, 0, d.f, 0, n);
            }
            round(dst, d.f);
        }
    }

    @Override
    public void copyStrided(Tensor src, long srcOff, int srcRowStride, int srcColStride,
                            Tensor dst, long dstOff, int dstLd, int rows, int cols) {
        String op = "copyStrided";
        float[] sv = f(op, src), dv = f(op, dst);
        OpChecks.copyStrided(op, src, srcOff, srcRowStride, srcColStride, dst, dstOff, dstLd, rows, cols);
        if (rows == 0 || cols == 0) {
            return;
        }
        float[] from = sv == dv ? sv.clone() : sv;   // shared storage: read src as it was before the call
        DType dt = dst.dtype();
        // every index below is inside its tensor (checked above), so it fits an int
        CpuParallel.forRange(rows, cols, (r0, r1) -> {
            for (int i = r0; i < r1; i++) {
                int s = (int) (srcOff + (long) i * srcRowStride);
                int d = (int) (dstOff + (long) i * dstLd);
                for (int j = 0; j < cols; j++, s += srcColStride) {
                    dv[d + j] = from[s];
                }
                round(dt, dv, d, d + cols);
            }
        });
    }

    @Override
    public void fill(Tensor t, float value) {
        CpuStorage s = storage("fill", t);
        if (s.i != null) {
            Arrays.fill(s.i, (int) value);
        } else {
            Arrays.fill(s.f, t.dtype().round(value));
        }
    }

    @Override
    public void release(Tensor t) {
        // Tensor.close() marks t closed before calling here, so t.handle() would throw: find the storage in
        // the weak registry and drop its array.
        CpuStorage s;
        synchronized (live) {
            s = live.remove(t);
        }
        if (s != null) {
            s.f = null;
            s.i = null;
        }
    }

    @Override
    public WorkPool workPool() {
        return work;
    }

    /** Marks the backend closed and drops every live tensor's array; later use of any of them throws. */
    @Override
    public void close() {
        closed = true;
        work.clear();
        synchronized (live) {
            for (CpuStorage s : live.values()) {
                s.f = null;
                s.i = null;
            }
            live.clear();
        }
    }

    private Tensor register(DType dtype, int[] shape, CpuStorage s) {
        Tensor t = new Tensor(this, dtype, shape, s);
        synchronized (live) {
            live.put(t, s);
        }
        return t;
    }

    // ================================================================ GEMM

    @Override
    public void gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, float alpha,
                            Tensor a, long offA, int lda, long strideA,
                            Tensor b, long offB, int ldb, long strideB,
                            float beta, Tensor c, long offC, int ldc, long strideC) {
        String op = "gemmBatched";
        float[] av = f(op, a);
        float[] bv = f(op, b);
        float[] cv = f(op, c);
        OpChecks.gemmSizes(op, batch, m, n, k, a, b, c);
        OpChecks.gemmOperand(op, "A", a, transA, m, k, offA, lda, strideA, batch);
        OpChecks.gemmOperand(op, "B", b, transB, k, n, offB, ldb, strideB, batch);
        OpChecks.gemmOperand(op, "C", c, false, m, n, offC, ldc, strideC, batch);
        if (batch == 0 || m == 0 || n == 0) {
            return;
        }
        // BLAS forbids C aliasing A or B; be safe and read from a snapshot.
        if (av == cv) {
            av = av.clone();
        }
        if (bv == cv) {
            bv = bv.clone();
        }
        if (naive) {
            CpuGemm.naive(batch, transA, transB, m, n, k, alpha, av, (int) offA, lda, strideA,
                    bv, (int) offB, ldb, strideB, beta, cv, (int) offC, ldc, strideC);
        } else {
            CpuGemm.fast(batch, transA, transB, m, n, k, alpha, av, (int) offA, lda, strideA,
                    bv, (int) offB, ldb, strideB, beta, cv, (int) offC, ldc, strideC);
        }
        if (c.dtype() != DType.F32) {
            for (int bi = 0; bi < batch; bi++) {
                for (int i = 0; i < m; i++) {
                    int row = (int) (offC + bi * strideC + (long) i * ldc);
                    round(c.dtype(), cv, row, row + n);
                }
            }
        }
    }

    // ================================================================ elementwise

    @Override
    public void add(Tensor a, Tensor b, Tensor out) {
        elementwise("add", a, b, out, 1, CpuElementwise::add);
    }

    @Override
    public void mul(Tensor a, Tensor b, Tensor out) {
        elementwise("mul", a, b, out, 1, CpuElementwise::mul);
    }

    @Override
    public void divide(Tensor a, Tensor b, Tensor out) {
        elementwise("divide", a, b, out, 1, CpuElementwise::divide);
    }

    @Override
    public void sqrt(Tensor x, Tensor out) {
        elementwise("sqrt", x, out, 1, CpuElementwise::sqrt);
    }

    @Override
    public void reciprocal(Tensor x, Tensor out) {
        elementwise("reciprocal", x, out, 1, CpuElementwise::reciprocal);
    }

    @Override
    public void scale(Tensor x, float alpha, Tensor out) {
        elementwise("scale", x, out, 1, (xv, ov, lo, hi) -> CpuElementwise.scale(xv, alpha, ov, lo, hi));
    }

    @Override
    public void axpby(float alpha, Tensor x, float beta, Tensor y) {
        elementwise("axpby", x, y, 1, (xv, yv, lo, hi) -> CpuElementwise.axpby(alpha, xv, beta, yv, lo, hi));
    }

    @Override
    public void addRowVector(Tensor a, Tensor v, Tensor out) {
        broadcast("addRowVector", a, v, out, true, false);
    }

    @Override
    public void mulRowVector(Tensor a, Tensor v, Tensor out) {
        broadcast("mulRowVector", a, v, out, true, true);
    }

    @Override
    public void mulColVector(Tensor a, Tensor v, Tensor out) {
        broadcast("mulColVector", a, v, out, false, true);
    }

    @Override
    public void transpose(Tensor a, Tensor out) {
        String op = "transpose";
        float[] av = f(op, a), ov = f(op, out);
        OpChecks.transposeShape(op, a, out);
        int rows = a.rows(), cols = a.cols();
        if (av == ov) {
            av = av.clone();
        }
        float[] src = av;
        final int tile = 32;
        CpuParallel.forRange(rows, cols, (lo, hi) -> {
            for (int r0 = lo; r0 < hi; r0 += tile) {
                int r1 = Math.min(hi, r0 + tile);
                for (int c0 = 0; c0 < cols; c0 += tile) {
                    int c1 = Math.min(cols, c0 + tile);
                    for (int r = r0; r < r1; r++) {
                        for (int c = c0; c < c1; c++) {
                            ov[c * rows + r] = src[r * cols + c];
                        }
                    }
                }
            }
        });
        round(out, ov);
    }

    @Override
    public void dropoutMask(Tensor mask, float p, long seed) {
        String op = "dropoutMask";
        float[] mv = f(op, mask);
        OpChecks.probability(op, p);
        DType dt = mask.dtype();
        CpuParallel.forRange(mv.length, 1, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                mv[i] = Dropout.maskValue(seed, i, p);
            }
            round(dt, mv, lo, hi);
        });
    }

    // ================================================================ reductions

    @Override
    public void sumRows(Tensor a, float beta, Tensor out) {
        String op = "sumRows";
        float[] av = f(op, a), ov = f(op, out);
        OpChecks.numelIs(op, out, a.cols(), "one per column of " + a);
        int rows = a.rows(), cols = a.cols();
        // one sequential pass (rows in order, C2 vectorises the column loop): splitting columns across threads
        // measured slower (strided partial rows), splitting rows would change the summation order
        double[] acc = new double[cols];
        for (int r = 0; r < rows; r++) {
            int base = r * cols;
            for (int c = 0; c < cols; c++) {
                acc[c] += av[base + c];
            }
        }
        for (int c = 0; c < cols; c++) {
            ov[c] = beta == 0f ? (float) acc[c] : (float) (beta * ov[c] + acc[c]);
        }
        round(out, ov);
    }

    @Override
    public void rowDot(Tensor a, Tensor b, Tensor out) {
        String op = "rowDot";
        float[] av = f(op, a), bv = f(op, b), ov = f(op, out);
        OpChecks.sameRows(op, a, b);
        OpChecks.numelIs(op, out, a.rows(), "one per row of " + a);
        int rows = a.rows(), cols = a.cols();
        float[] res = new float[rows];
        CpuParallel.forRange(rows, cols, (lo, hi) -> {
            for (int r = lo; r < hi; r++) {
                res[r] = (float) CpuElementwise.dot(av, bv, r * cols, cols);
            }
        });
        System.arraycopy(res, 0, ov, 0, rows);
        round(out, ov);
    }

    @Override
    public double sum(Tensor a) {
        float[] av = f("sum", a);
        double s = 0;
        for (float x : av) {
            s += x;
        }
        return s;
    }

    @Override
    public double dot(Tensor a, Tensor b) {
        String op = "dot";
        float[] av = f(op, a), bv = f(op, b);
        OpChecks.sameNumel(op, a, b);
        return CpuElementwise.dot(av, bv, 0, av.length);
    }

    @Override
    public long countNonFinite(Tensor a) {
        float[] av = f("countNonFinite", a);
        long n = 0;
        for (float x : av) {
            if (!Float.isFinite(x)) {
                n++;
            }
        }
        return n;
    }

    @Override
    public void sumTo(Tensor a, Tensor out, int at) {
        String op = "sumTo";
        f(op, a);
        float[] ov = f(op, out);
        DeviceSums.checkSlot(op, out, at);
        DeviceSums.put(ov, at, sum(a));
    }

    @Override
    public void sumSquaresTo(List<Tensor> xs, Tensor out, int at) {
        String op = "sumSquaresTo";
        float[] ov = f(op, out);
        DeviceSums.checkSlot(op, out, at);
        double sq = 0;   // the order and precision of Σ dot(g, g) over the tensors
        for (Tensor x : xs) {
            sq += dot(x, x);
        }
        DeviceSums.put(ov, at, sq);
    }

    // ================================================================ transformer ops (GPT-2)

    @Override
    public void layerNormForward(Tensor x, Tensor gamma, Tensor beta, float eps, Tensor out, Tensor mean,
                                 Tensor rstd) {
        String op = "layerNormForward";
        float[] xv = f(op, x), gv = f(op, gamma), bv = f(op, beta), ov = f(op, out), mv = f(op, mean),
                rv = f(op, rstd);
        int rows = x.rows(), cols = x.cols();
        OpChecks.layerNormShapes(op, x, mean, rstd, new Tensor[]{out}, gamma, beta);
        CpuTransformerOps.layerNormForward(xv, gv, bv, eps, ov, mv, rv, rows, cols);
        round(out, ov);
        round(mean, mv);
        round(rstd, rv);
    }

    @Override
    public void layerNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor mean, Tensor rstd,
                                  Tensor dx, Tensor dgamma, Tensor dbeta) {
        String op = "layerNormBackward";
        float[] dov = f(op, dout), xv = f(op, x), gv = f(op, gamma), mv = f(op, mean), rv = f(op, rstd),
                dxv = f(op, dx), dgv = f(op, dgamma), dbv = f(op, dbeta);
        int rows = x.rows(), cols = x.cols();
        OpChecks.layerNormShapes(op, x, mean, rstd, new Tensor[]{dout, dx}, gamma, dgamma, dbeta);
        CpuTransformerOps.layerNormBackward(dov, xv, gv, mv, rv, dxv, dgv, dbv, rows, cols);
        round(dx, dxv);
        round(dgamma, dgv);
        round(dbeta, dbv);
    }

    @Override
    public void geluForward(Tensor x, Tensor out) {
        elementwise("geluForward", x, out, GELU_WORK, CpuTransformerOps::geluForward);
    }

    @Override
    public void geluBackward(Tensor x, Tensor dout, Tensor dx) {
        elementwise("geluBackward", x, dout, dx, GELU_WORK, CpuTransformerOps::geluBackward);
    }

    /** {B, T, C} of an attention call, after checking qkv [B,T,3C], out/dout [B,T,C], att [B,nHead,T,T]. */
    private static int[] attentionDims(String op, Tensor qkv, int nHead, Tensor btc, Tensor att) {
        if (qkv.rank() != 3 || qkv.dim(2) % 3 != 0) {
            throw new ShapeException(op + ": qkv " + qkv + " must be [B,T,3C]");
        }
        int b = qkv.dim(0), t = qkv.dim(1), c = qkv.dim(2) / 3;
        if (nHead <= 0 || c % nHead != 0) {
            throw new ShapeException(op + ": nHead " + nHead + " must be > 0 and divide C=" + c + " of " + qkv);
        }
        OpChecks.numelIs(op, btc, (long) b * t * c, "[B,T,C] of " + qkv);
        OpChecks.numelIs(op, att, (long) b * nHead * t * t, "[B,nHead,T,T] of " + qkv);
        return new int[] {b, t, c};
    }

    @Override
    public void attentionForward(Tensor qkv, int nHead, Tensor out, Tensor att) {
        String op = "attentionForward";
        float[] qv = f(op, qkv), ov = f(op, out), av = f(op, att);
        int[] d = attentionDims(op, qkv, nHead, out, att);
        CpuTransformerOps.attentionForward(qv, ov, av, d[0], d[1], d[2], nHead);
        round(out, ov);
        round(att, av);
    }

    @Override
    public void attentionBackward(Tensor dout, Tensor qkv, Tensor att, int nHead, Tensor dqkv) {
        String op = "attentionBackward";
        float[] dov = f(op, dout), qv = f(op, qkv), av = f(op, att), dqv = f(op, dqkv);
        int[] d = attentionDims(op, qkv, nHead, dout, att);
        OpChecks.sameNumel(op, qkv, dqkv);
        CpuTransformerOps.attentionBackward(dov, qv, av, dqv, d[0], d[1], d[2], nHead);
        round(dqkv, dqv);
    }

    @Override
    public void crossEntropyForward(Tensor logits, Tensor targets, Tensor probs, Tensor losses) {
        String op = "crossEntropyForward";
        float[] lv = f(op, logits), pv = f(op, probs), lossv = f(op, losses);
        int[] tv = ints(op, targets);
        int rows = logits.rows(), v = logits.cols();
        OpChecks.sameNumel(op, logits, probs);
        OpChecks.numelIs(op, targets, rows, "N of " + logits);
        OpChecks.numelIs(op, losses, rows, "N of " + logits);
        OpChecks.targets(op, targets, tv, v, "vocabulary size V of " + logits);
        CpuTransformerOps.crossEntropyForward(lv, tv, pv, lossv, rows, v);
        round(probs, pv);
        round(losses, lossv);
    }

    @Override
    public void crossEntropyBackward(Tensor probs, Tensor targets, float scale, Tensor dlogits) {
        String op = "crossEntropyBackward";
        float[] pv = f(op, probs), dv = f(op, dlogits);
        int[] tv = ints(op, targets);
        int rows = probs.rows(), v = probs.cols();
        OpChecks.sameNumel(op, probs, dlogits);
        OpChecks.numelIs(op, targets, rows, "N of " + probs);
        OpChecks.targets(op, targets, tv, v, "vocabulary size V of " + probs);
        CpuTransformerOps.crossEntropyBackward(pv, tv, scale, dv, rows, v);
        round(dlogits, dv);
    }

    @Override
    public void embeddingForward(Tensor ids, Tensor wte, Tensor wpe, Tensor out) {
        String op = "embeddingForward";
        int[] iv = ints(op, ids);
        float[] tev = f(op, wte), pev = wpe == null ? null : f(op, wpe), ov = f(op, out);
        int[] d = OpChecks.embeddingDims(op, ids, iv, wte, wpe, out);
        CpuTransformerOps.embeddingForward(iv, tev, pev, ov, d[0], d[1], d[2]);
        round(out, ov);
    }

    @Override
    public void embeddingBackward(Tensor dout, Tensor ids, Tensor dwte, Tensor dwpe) {
        String op = "embeddingBackward";
        int[] iv = ints(op, ids);
        float[] dov = f(op, dout), tev = f(op, dwte), pev = dwpe == null ? null : f(op, dwpe);
        int[] d = OpChecks.embeddingDims(op, ids, iv, dwte, dwpe, dout);
        CpuTransformerOps.embeddingBackward(dov, iv, tev, pev, d[0], d[1], d[2]);
        round(dwte, tev);
        if (dwpe != null) {
            round(dwpe, pev);
        }
    }

    // ================================================================ transformer ops (Llama family)

    @Override
    public void rmsNormForward(Tensor x, Tensor gamma, float eps, Tensor out, Tensor rstd) {
        String op = "rmsNormForward";
        float[] xv = f(op, x), gv = f(op, gamma), ov = f(op, out), rv = f(op, rstd);
        OpChecks.rmsNormShapes(op, x, rstd, new Tensor[]{out}, gamma);
        CpuLlamaOps.rmsNormForward(xv, gv, eps, ov, rv, x.rows(), x.cols());
        round(out, ov);
        round(rstd, rv);
    }

    @Override
    public void rmsNormBackward(Tensor dout, Tensor x, Tensor gamma, Tensor rstd, Tensor dx, Tensor dgamma) {
        String op = "rmsNormBackward";
        float[] dov = f(op, dout), xv = f(op, x), gv = f(op, gamma), rv = f(op, rstd), dxv = f(op, dx),
                dgv = f(op, dgamma);
        OpChecks.rmsNormShapes(op, x, rstd, new Tensor[]{dout, dx}, gamma, dgamma);
        CpuLlamaOps.rmsNormBackward(dov, xv, gv, rv, dxv, dgv, x.rows(), x.cols());
        round(dx, dxv);
        round(dgamma, dgv);
    }

    @Override
    public void ropeForward(Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out) {
        rope("ropeForward", x, nHead, cos, sin, out, 1f);
    }

    @Override
    public void ropeBackward(Tensor dout, int nHead, Tensor cos, Tensor sin, Tensor dx) {
        rope("ropeBackward", dout, nHead, cos, sin, dx, -1f);
    }

    /** out = R x (sign +1) or R^T x (sign -1); see {@link CpuLlamaOps#rope}. */
    private void rope(String op, Tensor x, int nHead, Tensor cos, Tensor sin, Tensor out, float sign) {
        float[] xv = f(op, x), cv = f(op, cos), sv = f(op, sin), ov = f(op, out);
        int[] d = OpChecks.ropeDims(op, x, nHead, cos, sin, out);
        CpuLlamaOps.rope(xv, cv, sv, ov, sign, d[0] * d[1], d[1], nHead, d[2]);
        round(out, ov);
    }

    @Override
    public void swigluForward(Tensor gate, Tensor up, Tensor out) {
        elementwise("swigluForward", gate, up, out, GELU_WORK, CpuLlamaOps::swigluForward);
    }

    @Override
    public void swigluBackward(Tensor dout, Tensor gate, Tensor up, Tensor dgate, Tensor dup) {
        String op = "swigluBackward";
        float[] dov = f(op, dout), gv = f(op, gate), uv = f(op, up), dgv = f(op, dgate), duv = f(op, dup);
        for (Tensor t : new Tensor[] {gate, up, dgate, dup}) {
            OpChecks.sameNumel(op, dout, t);
        }
        DType dgt = dgate.dtype(), dut = dup.dtype();
        CpuParallel.forRange(dov.length, GELU_WORK, (lo, hi) -> {
            CpuLlamaOps.swigluBackward(dov, gv, uv, dgv, duv, lo, hi);
            round(dgt, dgv, lo, hi);
            round(dut, duv, lo, hi);
        });
    }

    @Override
    public void gqaAttentionForward(Tensor q, Tensor k, Tensor v, int nHead, int nKvHead, Tensor out, Tensor att) {
        String op = "gqaAttentionForward";
        float[] qv = f(op, q), kv = f(op, k), vv = f(op, v), ov = f(op, out), av = f(op, att);
        int[] d = OpChecks.gqaDims(op, q, k, v, nHead, nKvHead, att, new Tensor[]{out});
        CpuLlamaOps.gqaForward(qv, kv, vv, ov, av, d[0], d[1], d[2], nHead, nKvHead);
        round(out, ov);
        round(att, av);
    }

    @Override
    public void gqaAttentionBackward(Tensor dout, Tensor q, Tensor k, Tensor v, Tensor att, int nHead, int nKvHead,
                                     Tensor dq, Tensor dk, Tensor dv) {
        String op = "gqaAttentionBackward";
        float[] dov = f(op, dout), qv = f(op, q), kv = f(op, k), vv = f(op, v), av = f(op, att), dqv = f(op, dq),
                dkv = f(op, dk), dvv = f(op, dv);
        int[] d = OpChecks.gqaDims(op, q, k, v, nHead, nKvHead, att, new Tensor[]{dout, dq}, dk, dv);
        CpuLlamaOps.gqaBackward(dov, qv, kv, vv, av, dqv, dkv, dvv, d[0], d[1], d[2], nHead, nKvHead);
        round(dq, dqv);
        round(dk, dkv);
        round(dv, dvv);
    }

    // ================================================================ optimizer

    @Override
    public void adamw(Tensor param, Tensor grad, Tensor m, Tensor v, AdamW hp) {
        String op = "adamw";
        float[] pv = f(op, param), gv = f(op, grad), mv = f(op, m), vv = f(op, v);
        if (hp == null) {
            throw new IllegalArgumentException(op + ": hyper-parameters are null");
        }
        OpChecks.sameNumel(op, param, grad);
        OpChecks.sameNumel(op, param, m);
        OpChecks.sameNumel(op, param, v);
        // torch.optim.AdamW (single-tensor path): decoupled decay, then bias-corrected Adam.
        float decay = 1f - hp.lr() * hp.weightDecay();
        float b1 = hp.beta1(), b2 = hp.beta2();
        double bc1 = 1.0 - Math.pow(b1, hp.step());
        double bc2 = 1.0 - Math.pow(b2, hp.step());
        float stepSize = (float) (hp.lr() / bc1);
        float bc2Sqrt = (float) Math.sqrt(bc2);
        DType pd = param.dtype(), md = m.dtype(), vd = v.dtype();
        float eps = hp.eps();
        CpuParallel.forRange(pv.length, 4, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float g = gv[i];
                float p = pv[i] * decay;
                float mi = md.round(b1 * mv[i] + (1f - b1) * g);
                float vi = vd.round(b2 * vv[i] + (1f - b2) * g * g);
                float denom = (float) Math.sqrt(vi) / bc2Sqrt + eps;
                mv[i] = mi;
                vv[i] = vi;
                pv[i] = pd.round(p - stepSize * mi / denom);
            }
        });
    }

    // ================================================================ AdaLoRA

    @Override
    public void adaloraSensitivity(Tensor p, Tensor grad, Tensor expAvgIpt, Tensor expAvgUnc, float beta1,
                                   float beta2) {
        String op = "adaloraSensitivity";
        float[] pv = f(op, p), gv = f(op, grad), iv = f(op, expAvgIpt), uv = f(op, expAvgUnc);
        OpChecks.sameNumel(op, p, grad);
        OpChecks.sameNumel(op, p, expAvgIpt);
        OpChecks.sameNumel(op, p, expAvgUnc);
        DType id = expAvgIpt.dtype(), ud = expAvgUnc.dtype();
        CpuParallel.forRange(pv.length, 4, (lo, hi) -> {
            for (int i = lo; i < hi; i++) {
                float ipt = Math.abs(pv[i] * gv[i]);                        // I = |p ∘ g|
                float ibar = id.round(beta1 * iv[i] + (1f - beta1) * ipt);  // Ī ← β1 Ī + (1-β1) I
                iv[i] = ibar;
                uv[i] = ud.round(beta2 * uv[i] + (1f - beta2) * Math.abs(ipt - ibar));  // Ū with the new Ī
            }
        });
    }

    @Override
    public void maskWhereAtMost(Tensor target, Tensor scores, float threshold) {
        String op = "maskWhereAtMost";
        float[] tv = f(op, target), sv = f(op, scores);
        OpChecks.sameNumel(op, target, scores);
        for (int i = 0; i < tv.length; i++) {
            if (sv[i] <= threshold) {
                tv[i] = 0f;
            }
        }
    }
}
