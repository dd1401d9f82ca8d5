package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static ai.lorakit.gpu.contract.Ref.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The GEMM contract (Backend#gemmBatched, gemm, matmul) on every backend in {@link ContractBackends}, against
 * a double-precision reference: all four transpose combinations over awkward sizes, padded leading dimensions
 * with offsets, batched strides (including a broadcast stride of 0), alpha/beta, beta = 0 over a NaN-poisoned
 * C, k = 0, NaN/Inf propagation, BF16 inputs and outputs, elements of C outside the written regions left
 * alone, and out-of-bounds or mismatched operands rejected before C is touched.
 */
class GemmContractTest {
    static final String SRC = BackendContractTest.SRC;

    /** {m, n, k}: tiny, odd, one-off-from-vector-width, LoRA-rank-like 1 and 64, and multi-block sizes. */
    static final int[][] SIZES = {
            {1, 1, 1}, {1, 130, 33}, {7, 33, 65}, {65, 7, 33}, {33, 130, 7}, {64, 1, 130}, {130, 65, 64},
            {17, 64, 1}, {5, 6, 0}, {200, 97, 257}};

    /** One GEMM case: layout of A, B, C inside bigger tensors, and what to compare. */
    record Case(int batch, boolean tA, boolean tB, int m, int n, int k, float alpha, float beta,
                int padA, int padB, int padC, int offA, int offB, int offC, int gapA, int gapB, int gapC,
                boolean broadcastB, int kind, long seed, DType abType, DType cType) {

        int rowsA() {
            return tA ? k : m;
        }

        int colsA() {
            return tA ? m : k;
        }

        int rowsB() {
            return tB ? n : k;
        }

        int colsB() {
            return tB ? k : n;
        }

        int lda() {
            return Math.max(1, colsA() + padA);
        }

        int ldb() {
            return Math.max(1, colsB() + padB);
        }

        int ldc() {
            return Math.max(1, n + padC);
        }

        long strideA() {
            return (long) rowsA() * lda() + gapA;
        }

        long strideB() {
            return broadcastB ? 0 : (long) rowsB() * ldb() + gapB;
        }

        long strideC() {
            return (long) m * ldc() + gapC;
        }

        int sizeA() {
            return (int) (offA + batch * strideA() + 3);
        }

        int sizeB() {
            return (int) (offB + Math.max(1, broadcastB ? 1 : batch) * ((long) rowsB() * ldb() + gapB) + 3);
        }

        int sizeC() {
            return (int) (offC + batch * strideC() + 3);
        }

        @Override
        public String toString() {
            return "gemm batch=" + batch + (tA ? " A^T" : " A") + (tB ? " B^T" : " B") + " m=" + m + " n=" + n
                    + " k=" + k + " alpha=" + alpha + " beta=" + beta + " lda=" + lda() + " ldb=" + ldb() + " ldc="
                    + ldc() + " off=" + offA + "/" + offB + "/" + offC + " strides=" + strideA() + "/" + strideB()
                    + "/" + strideC() + " " + abType + "->" + cType + " "
                    + BackendContractTest.inputName(kind, seed);
        }
    }

    static void run(Backend be, Case c) {
        float[] a = BackendContractTest.input(c.kind(), c.seed(), c.sizeA());
        float[] b = BackendContractTest.input(c.kind() == 1 ? 1 : 2, c.seed() + 1, c.sizeB());
        float[] c0 = c.beta() == 0f ? Ref.nans(c.sizeC()) : Ref.random(c.seed() + 2, c.sizeC());
        if (c.beta() == 0f) {
            // poison only the regions that must be written; the rest must be left alone
            float[] mark = Ref.random(c.seed() + 3, c.sizeC());
            for (int i = 0; i < mark.length; i++) {
                c0[i] = mark[i];
            }
            for (int bi = 0; bi < c.batch(); bi++) {
                for (int i = 0; i < c.m(); i++) {
                    for (int j = 0; j < c.n(); j++) {
                        c0[(int) (c.offC() + bi * c.strideC() + (long) i * c.ldc() + j)] = Float.NaN;
                    }
                }
            }
        }
        try (Tensor at = be.upload(a, c.abType(), c.sizeA());
             Tensor bt = be.upload(b, c.abType(), c.sizeB());
             Tensor ct = be.upload(c0, c.cType(), c.sizeC())) {
            float[] ar = be.download(at), br = be.download(bt), cr = be.download(ct);
            double[] want = Ref.gemmBatched(c.batch(), c.tA(), c.tB(), c.m(), c.n(), c.k(), c.alpha(),
                    ar, c.offA(), c.lda(), c.strideA(), br, c.offB(), c.ldb(), c.strideB(),
                    c.beta(), cr, c.offC(), c.ldc(), c.strideC());
            be.gemmBatched(c.batch(), c.tA(), c.tB(), c.m(), c.n(), c.k(), c.alpha(),
                    at, c.offA(), c.lda(), c.strideA(), bt, c.offB(), c.ldb(), c.strideB(),
                    c.beta(), ct, c.offC(), c.ldc(), c.strideC());
            float[] got = be.download(ct);
            Tolerance tol = c.cType() == DType.F32 ? Tolerance.F32 : Tolerance.of(c.cType());
            assertClose(tol, c.toString(), got, want);
            if (c.cType() != DType.F32) {
                BackendContractTest.assertRounded(c.cType(), c.toString(), got);
            }
        }
    }

    static Case simple(boolean tA, boolean tB, int[] s, float alpha, float beta, int kind, long seed) {
        return new Case(1, tA, tB, s[0], s[1], s[2], alpha, beta, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, kind, seed,
                DType.F32, DType.F32);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void allTransposesAndSizes(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int[] s : SIZES) {
                for (int t = 0; t < 4; t++) {
                    for (int kind = 1; kind < 3; kind++) {
                        long seed = 7919L * s[0] + 31L * s[1] + s[2] + 100L * t + kind;
                        run(be, simple((t & 1) != 0, (t & 2) != 0, s, 1f, 0f, kind, seed));
                    }
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void alphaBeta(Supplier<Backend> f) {
        float[][] ab = {{0.5f, -1.5f}, {2f, 1f}, {-1f, 0f}, {0f, 0.25f}};
        try (Backend be = f.get()) {
            for (float[] p : ab) {
                for (int t = 0; t < 4; t++) {
                    run(be, simple((t & 1) != 0, (t & 2) != 0, new int[] {33, 65, 7}, p[0], p[1], 2, 17 + t));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void paddedLeadingDimensionsAndOffsets(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int t = 0; t < 4; t++) {
                for (int[] s : new int[][] {{7, 33, 65}, {65, 7, 1}, {130, 64, 33}}) {
                    long seed = 400 + t + s[0];
                    run(be, new Case(1, (t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], 1.25f, 0.5f,
                            3, 5, 2, 11, 4, 9, 0, 0, 0, false, 2, seed, DType.F32, DType.F32));
                    run(be, new Case(1, (t & 1) != 0, (t & 2) != 0, s[0], s[1], s[2], 1f, 0f,
                            1, 0, 7, 1, 0, 3, 0, 0, 0, false, 2, seed + 1, DType.F32, DType.F32));
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void batchedStrides(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int t = 0; t < 4; t++) {
                boolean tA = (t & 1) != 0, tB = (t & 2) != 0;
                long seed = 900 + t;
                // attention-like: batch of small GEMMs with gaps between them
                run(be, new Case(4, tA, tB, 7, 33, 16, 1f, 0f, 0, 2, 1, 3, 0, 5, 13, 1, 6, false, 2, seed,
                        DType.F32, DType.F32));
                run(be, new Case(3, tA, tB, 65, 7, 33, 0.5f, 2f, 1, 0, 0, 0, 2, 0, 0, 0, 0, false, 2, seed + 1,
                        DType.F32, DType.F32));
                // one B for every batch entry (stride 0)
                run(be, new Case(3, tA, tB, 33, 64, 9, 1f, 0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, true, 2, seed + 2,
                        DType.F32, DType.F32));
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void reducedPrecisionStorage(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int t = 0; t < 4; t++) {
                boolean tA = (t & 1) != 0, tB = (t & 2) != 0;
                run(be, new Case(1, tA, tB, 33, 65, 64, 1f, 0f, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, 2, 50 + t,
                        DType.F32, DType.BF16));
                run(be, new Case(1, tA, tB, 33, 65, 64, 1f, 0.5f, 0, 0, 0, 0, 0, 0, 0, 0, 0, false, 2, 60 + t,
                        DType.BF16, DType.F32));
                run(be, new Case(2, tA, tB, 7, 33, 17, 1f, 1f, 1, 0, 2, 0, 0, 0, 0, 0, 0, false, 2, 70 + t,
                        DType.F16, DType.F16));
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void nonFiniteInputsPropagate(Supplier<Backend> f) {
        int m = 9, n = 37, k = 21;
        try (Backend be = f.get()) {
            for (int t = 0; t < 4; t++) {
                boolean tA = (t & 1) != 0, tB = (t & 2) != 0;
                float[] a = Ref.random(5 + t, m * k);
                float[] b = Ref.random(6 + t, k * n);
                a[3] = Float.NaN;                   // poisons one row or column of C
                a[m * k - 1] = Float.POSITIVE_INFINITY;
                b[k * n / 2] = Float.NEGATIVE_INFINITY;
                try (Tensor at = be.upload(a, tA ? k : m, tA ? m : k); Tensor bt = be.upload(b, tB ? n : k, tB ? k : n);
                     Tensor ct = be.upload(Ref.nans(m * n), m, n)) {
                    be.matmul(at, tA, bt, tB, ct, 1f, 0f);
                    double[] want = Ref.matmul(a, tA, b, tB, m, n, k);
                    float[] got = be.download(ct);
                    long nonFinite = 0;
                    for (double w : want) {
                        nonFinite += Double.isFinite(w) ? 0 : 1;
                    }
                    assertTrue(nonFinite > 0, "the case must produce non-finite values");
                    assertClose(Tolerance.F32, "gemm non-finite t=" + t, got, want);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void matmulOnWholeTensors(Supplier<Backend> f) {
        int n = 33, in = 65, out = 7;
        float[] x = Ref.random(1, n * in), w = Ref.random(2, out * in);
        try (Backend be = f.get(); Tensor xt = be.upload(x, 3, 11, in); Tensor wt = be.upload(w, out, in);
             Tensor yt = be.upload(Ref.nans(n * out), 3, 11, out)) {
            be.matmul(xt, false, wt, true, yt, 1f, 0f);
            assertClose(Tolerance.F32, "matmul y = x W^T", be.download(yt), Ref.matmul(x, false, w, true, n, out, in));
            try (Tensor bad = be.upload(Ref.nans(n * out), out, n)) {
                float[] before = be.download(yt);
                assertThrows(ShapeException.class, () -> be.matmul(xt, false, wt, true, bad, 1f, 0f));
                assertThrows(ShapeException.class, () -> be.matmul(xt, false, wt, false, yt, 1f, 0f));
                assertArrayEquals(before, be.download(yt));
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void badOperandsAreRejectedBeforeWriting(Supplier<Backend> f) {
        try (Backend be = f.get(); Backend other = f.get()) {
            int m = 4, n = 5, k = 6;
            try (Tensor a = be.upload(Ref.ones(m * k), m, k); Tensor b = be.upload(Ref.ones(k * n), k, n);
                 Tensor c = be.upload(Ref.filled(m * n, 3f), m, n); Tensor ints = be.uploadInts(new int[m * k], m, k);
                 Tensor foreign = other.upload(Ref.ones(k * n), k, n)) {
                float[] before = be.download(c);
                Executable[] bad = {
                        // A one element too short via offset
                        () -> be.gemm(false, false, m, n, k, 1f, a, 1, k, b, 0, n, 0f, c, 0, n),
                        // lda smaller than the stored row
                        () -> be.gemm(false, false, m, n, k, 1f, a, 0, k - 1, b, 0, n, 0f, c, 0, n),
                        // B^T stored [n,k] with a padded ldb = k+1 reaches past the end of the [k,n] tensor
                        () -> be.gemm(false, true, m, n, k, 1f, a, 0, k, b, 0, k + 1, 0f, c, 0, n),
                        // C ldc too large
                        () -> be.gemm(false, false, m, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n + 1),
                        // batch 2 with strides past the end
                        () -> be.gemmBatched(2, false, false, m, n, k, 1f, a, 0, k, 0, b, 0, n, 0, 0f, c, 0, n, m * n),
                        // negative sizes and offsets
                        () -> be.gemm(false, false, -1, n, k, 1f, a, 0, k, b, 0, n, 0f, c, 0, n),
                        () -> be.gemm(false, false, m, n, k, 1f, a, -1, k, b, 0, n, 0f, c, 0, n),
                        // I32 operand and a tensor of another backend instance
                        () -> be.gemm(false, false, m, n, k, 1f, ints, 0, k, b, 0, n, 0f, c, 0, n),
                        () -> be.gemm(false, false, m, n, k, 1f, a, 0, k, foreign, 0, n, 0f, c, 0, n),
                };
                for (int i = 0; i < bad.length; i++) {
                    ShapeException e = assertThrows(ShapeException.class, bad[i], "bad gemm call #" + i);
                    assertTrue(e.getMessage().contains("gemm"), "message should name the op: " + e.getMessage());
                    assertArrayEquals(before, be.download(c), "gemm call #" + i + " wrote C before failing");
                }
                Tensor closed = be.upload(Ref.ones(m * k), m, k);
                closed.close();
                GpuException e = assertThrows(GpuException.class,
                        () -> be.gemm(false, false, m, n, k, 1f, closed, 0, k, b, 0, n, 0f, c, 0, n));
                assertTrue(e.getMessage().contains("closed"), e.getMessage());
                assertArrayEquals(before, be.download(c));
                assertEquals(m * n, before.length);
            }
        }
    }
}
