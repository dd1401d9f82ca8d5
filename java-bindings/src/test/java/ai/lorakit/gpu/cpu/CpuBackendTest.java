package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.Ref;
import org.junit.jupiter.api.Test;

import java.util.concurrent.atomic.AtomicInteger;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * CPU-backend specifics the contract cannot see: the {@code lorakit.cpu.naive} flag, the fast GEMM against
 * the naive one (and both against a double reference) on shapes that exercise every blocking edge (k > KC,
 * n > NC, partial tiles, the swapped skinny-n path, the multithreaded row/column/batch splits), storage
 * being dropped on close, the thread pool's error propagation, and the ops split across threads (elementwise,
 * broadcasts, transpose, strided copy, dropout mask, embedding backward; with sumRows beside them) matching plain
 * scalar loops bit for bit.
 */
class CpuBackendTest {

    @Test
    void naiveFlagSelectsTheReferencePath() {
        String old = System.getProperty(CpuBackend.NAIVE_PROPERTY);
        try {
            System.setProperty(CpuBackend.NAIVE_PROPERTY, "true");
            assertTrue(new CpuBackend().naive());
            System.setProperty(CpuBackend.NAIVE_PROPERTY, "false");
            assertFalse(new CpuBackend().naive());
        } finally {
            if (old == null) {
                System.clearProperty(CpuBackend.NAIVE_PROPERTY);
            } else {
                System.setProperty(CpuBackend.NAIVE_PROPERTY, old);
            }
        }
        assertEquals("cpu", new CpuBackend(true).name());
    }

    /** {batch, m, n, k}: edges of MR/NR/KC/NC, skinny n (swapped), skinny m, large enough to run threaded. */
    static final int[][] SHAPES = {
            {1, 1, 1, 1}, {1, 1, 300, 5}, {1, 300, 1, 5}, {1, 500, 8, 300}, {1, 13, 2100, 40}, {1, 97, 95, 600},
            {1, 256, 320, 257}, {3, 70, 66, 90}, {8, 64, 64, 64}, {2, 200, 33, 520}, {1, 40, 3, 0}, {2, 3, 40, 0}};

    @Test
    void fastAndNaiveGemmAgree() {
        long seed = 20240601;
        for (int[] s : SHAPES) {
            int batch = s[0], m = s[1], n = s[2], k = s[3];
            for (int t = 0; t < 4; t++) {
                boolean tA = (t & 1) != 0, tB = (t & 2) != 0;
                for (float beta : new float[] {0f, 0.5f}) {
                    long sd = seed + 131L * m + 17L * n + k + t;
                    int lda = (tA ? m : k) + 1, ldb = (tB ? k : n) + 2, ldc = n + 3;
                    long sA = (long) (tA ? k : m) * lda, sB = (long) (tB ? n : k) * ldb, sC = (long) m * ldc + 1;
                    float[] a = Ref.random(sd, (int) (sA * batch));
                    float[] b = Ref.random(sd + 1, (int) (sB * batch));
                    float[] c0 = Ref.random(sd + 2, (int) (sC * batch));
                    if (beta == 0f) {
                        for (int i = 0; i < c0.length; i += 3) {
                            c0[i] = Float.NaN;   // must not leak through beta = 0
                        }
                    }
                    float[] cf = c0.clone(), cn = c0.clone();
                    CpuGemm.fast(batch, tA, tB, m, n, k, 1.5f, a, 0, lda, sA, b, 0, ldb, sB, beta, cf, 0, ldc, sC);
                    CpuGemm.naive(batch, tA, tB, m, n, k, 1.5f, a, 0, lda, sA, b, 0, ldb, sB, beta, cn, 0, ldc, sC);
                    double[] ref = Ref.gemmBatched(batch, tA, tB, m, n, k, 1.5, a, 0, lda, sA, b, 0, ldb, sB,
                            beta, c0, 0, ldc, sC);
                    // both paths only write C's regions: outside them the NaN poison stays (and compares equal)
                    String what = "gemm batch=" + batch + " " + m + "x" + n + "x" + k + " tA=" + tA + " tB=" + tB
                            + " beta=" + beta + " seed=" + sd;
                    Tolerance tol = new Tolerance(2e-6 * Math.sqrt(k), 1e-4);
                    Tolerance.Result rf = tol.compare(what + " fast", cf, ref);
                    Tolerance.Result rn = tol.compare(what + " naive", cn, ref);
                    assertTrue(rf.ok(), rf.describe());
                    assertTrue(rn.ok(), rn.describe());
                }
            }
        }
    }

    @Test
    void backendsWithEitherPathAgreeThroughTheApi() {
        int m = 130, n = 65, k = 300;
        float[] a = Ref.random(1, m * k), b = Ref.random(2, n * k);
        float[][] out = new float[2][];
        for (int i = 0; i < 2; i++) {
            try (Backend be = new CpuBackend(i == 1); Tensor at = be.upload(a, m, k); Tensor bt = be.upload(b, n, k);
                 Tensor ct = be.upload(Ref.nans(m * n), DType.BF16, m, n)) {
                be.matmul(at, false, bt, true, ct, 1f, 0f);
                out[i] = be.download(ct);
            }
        }
        double[] ref = Ref.matmul(a, false, b, true, m, n, k);
        Ref.assertClose(Tolerance.BF16, "fast path, BF16 C", out[0], ref);
        Ref.assertClose(Tolerance.BF16, "naive path, BF16 C", out[1], ref);
    }

    /**
     * Ops split across threads by {@link CpuParallel#forRange} (tensors over {@link CpuParallel#MIN_PARALLEL}
     * elements, odd sizes so that ranges and vector tails are uneven) give exactly the scalar loops' bits.
     */
    @Test
    void largeOpsSplitAcrossThreadsMatchScalarLoops() {
        int rows = 521, cols = 257, n = rows * cols;
        assertTrue(n > CpuParallel.MIN_PARALLEL, "large enough to split");
        float[] a = Ref.random(31, n), b = Ref.random(32, n), rv = Ref.random(33, cols), cv = Ref.random(34, rows);
        float[] add = new float[n], mulBf = new float[n], axpby = new float[n], addRow = new float[n],
                mulRow = new float[n], mulCol = new float[n], tr = new float[n], scaled = new float[n];
        double[] colSum = new double[cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                int i = r * cols + c;
                add[i] = a[i] + b[i];
                mulBf[i] = DType.BF16.round(a[i] * b[i]);
                axpby[i] = 0.3f * a[i] + 0.7f * b[i];
                scaled[i] = -1.5f * a[i];
                addRow[i] = a[i] + rv[c];
                mulRow[i] = a[i] * rv[c];
                mulCol[i] = a[i] * cv[r];
                tr[c * rows + r] = a[i];
                colSum[c] += a[i];
            }
        }
        float[] sumRows = new float[cols];
        for (int c = 0; c < cols; c++) {
            sumRows[c] = (float) (0.5f * rv[c] + colSum[c]);
        }
        try (Backend be = new CpuBackend(); Tensor at = be.upload(a, rows, cols); Tensor bt = be.upload(b, rows, cols);
             Tensor rt = be.upload(rv, cols); Tensor ct = be.upload(cv, rows);
             Tensor o = be.upload(Ref.nans(n), rows, cols); Tensor obf = be.upload(Ref.nans(n), DType.BF16, rows, cols);
             Tensor ot = be.upload(Ref.nans(n), cols, rows); Tensor s = be.upload(rv, cols)) {
            be.add(at, bt, o);
            assertArrayEquals(add, be.download(o), 0f, "add");
            be.mul(at, bt, obf);
            assertArrayEquals(mulBf, be.download(obf), 0f, "mul into BF16");
            be.scale(at, -1.5f, o);
            assertArrayEquals(scaled, be.download(o), 0f, "scale");
            be.copy(bt, o);
            be.axpby(0.3f, at, 0.7f, o);
            assertArrayEquals(axpby, be.download(o), 0f, "axpby");
            be.addRowVector(at, rt, o);
            assertArrayEquals(addRow, be.download(o), 0f, "addRowVector");
            be.mulRowVector(at, rt, o);
            assertArrayEquals(mulRow, be.download(o), 0f, "mulRowVector");
            be.mulColVector(at, ct, o);
            assertArrayEquals(mulCol, be.download(o), 0f, "mulColVector");
            be.transpose(at, ot);
            assertArrayEquals(tr, be.download(ot), 0f, "transpose");
            be.sumRows(at, 0.5f, s);
            assertArrayEquals(sumRows, be.download(s), 0f, "sumRows (each column summed in row order)");
            be.dropoutMask(o, 0.25f, 99);
            float[] mask = be.download(o);
            for (int i = 0; i < n; i++) {
                assertEquals(ai.lorakit.gpu.Dropout.maskValue(99, i, 0.25f), mask[i], 0f, "dropout mask at " + i);
            }
        }
    }

    /**
     * copyStrided split by rows across threads (over {@link CpuParallel#MIN_PARALLEL} elements): a pitched pack into
     * BF16 and a transpose into a margin give exactly the scalar loops' values, and the margins stay untouched.
     */
    @Test
    void largeCopyStridedSplitsByRows() {
        int rows = 521, cols = 257, ld = cols + 9, n = rows * cols;
        assertTrue(n > CpuParallel.MIN_PARALLEL, "large enough to split");
        float[] a = Ref.random(35, n);
        float[] pack = Ref.filled(rows * ld, -3f), tr = Ref.filled(cols * (rows + 2), -3f);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                pack[r * ld + 5 + c] = DType.BF16.round(a[r * cols + c]);
                tr[c * (rows + 2) + 2 + r] = a[r * cols + c];
            }
        }
        try (Backend be = new CpuBackend(); Tensor at = be.upload(a, rows, cols);
             Tensor p = be.upload(Ref.filled(rows * ld, -3f), DType.BF16, rows, ld);
             Tensor t = be.upload(Ref.filled(cols * (rows + 2), -3f), cols, rows + 2)) {
            be.copyStrided(at, 0, cols, 1, p, 5, ld, rows, cols);
            assertArrayEquals(pack, be.download(p), 0f, "pack into BF16 [rows, cols+9] at column 5");
            be.copyStrided(at, 0, 1, cols, t, 2, rows + 2, cols, rows);
            assertArrayEquals(tr, be.download(t), 0f, "transpose into [cols, rows+2] at column 2");
        }
    }

    /** embeddingBackward's column ranges (N*C over MIN_PARALLEL) accumulate every element's tokens in order. */
    @Test
    void largeEmbeddingBackwardMatchesSequentialAccumulation() {
        int bsz = 4, t = 128, c = 260, v = 37, n = bsz * t;
        assertTrue((long) n * c > CpuParallel.MIN_PARALLEL, "large enough to split");
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (i * 7) % v;
        }
        float[] dout = Ref.random(41, n * c), wte0 = Ref.random(42, v * c), wpe0 = Ref.random(43, t * c);
        float[] wte = wte0.clone(), wpe = wpe0.clone();
        for (int i = 0; i < n; i++) {
            for (int j = 0; j < c; j++) {
                wte[ids[i] * c + j] += dout[i * c + j];
                wpe[(i % t) * c + j] += dout[i * c + j];
            }
        }
        float[] gotTe = wte0.clone(), gotPe = wpe0.clone();
        CpuTransformerOps.embeddingBackward(dout, ids, gotTe, gotPe, bsz, t, c);
        assertArrayEquals(wte, gotTe, 0f, "dwte");
        assertArrayEquals(wpe, gotPe, 0f, "dwpe");
    }

    @Test
    void closeDropsTheStorage() {
        CpuBackend be = new CpuBackend();
        Tensor t = be.upload(Ref.ones(5), 5);
        Tensor u = be.uploadInts(new int[] {1, 2}, 2);
        Tensor open = be.zeros(DType.F32, 3);
        CpuStorage st = (CpuStorage) t.handle(), su = (CpuStorage) u.handle(), so = (CpuStorage) open.handle();
        t.close();
        u.close();
        assertNull(st.f, "released tensor keeps its array");
        assertNull(su.i, "released I32 tensor keeps its array");
        be.close();
        assertNull(so.f, "backend close keeps an open tensor's array");
        assertThrows(ai.lorakit.gpu.GpuException.class, () -> be.download(open));
    }

    @Test
    void parallelLoopsRunEveryChunkOnceAndRethrow() {
        AtomicInteger sum = new AtomicInteger();
        CpuParallel.forEachChunk(5, c -> sum.addAndGet(c + 1));
        assertEquals(15, sum.get());
        IllegalStateException e = assertThrows(IllegalStateException.class, () -> CpuParallel.forEachChunk(3, c -> {
            if (c == 2) {
                throw new IllegalStateException("chunk " + c);
            }
        }));
        assertEquals("chunk 2", e.getMessage());
        assertTrue(CpuParallel.threads() >= 1);
        for (int n : new int[] {0, 5, 1000, CpuParallel.MIN_PARALLEL + 3, 3 * CpuParallel.MIN_PARALLEL + 17}) {
            int[] seen = new int[n];
            CpuParallel.forRange(n, 1, (lo, hi) -> {
                assertTrue(lo % 16 == 0 && lo < hi, "range [" + lo + "," + hi + ")");
                for (int i = lo; i < hi; i++) {
                    seen[i]++;
                }
            });
            for (int i = 0; i < n; i++) {
                assertEquals(1, seen[i], "forRange(" + n + ") visits " + i + " once");
            }
        }
    }
}
