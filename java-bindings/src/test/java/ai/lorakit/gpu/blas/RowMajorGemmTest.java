package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the row-major to column-major mapping used for cuBLAS is right, on the CPU: the planned column-major call,
 * run by a plain column-major GEMM (cuBLAS's definition) on the same row-major buffers, gives lorakit's row-major
 * result for every transpose combination, padded leading dimensions, offsets and batches; and the dtype table
 * matches cuBLAS's GemmEx combinations with fp32 compute.
 */
class RowMajorGemmTest {

    /** cuBLAS semantics: column-major, X(i,j) = x[off + i + j*ld]. */
    private static void colMajorGemm(boolean ta, boolean tb, int m, int n, int k, float alpha, float[] a, long offA,
                                     int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    float av = ta ? a[(int) (offA + p + (long) i * lda)] : a[(int) (offA + i + (long) p * lda)];
                    float bv = tb ? b[(int) (offB + j + (long) p * ldb)] : b[(int) (offB + p + (long) j * ldb)];
                    s += (double) av * bv;
                }
                int ci = (int) (offC + i + (long) j * ldc);
                c[ci] = (float) (alpha * s + (beta == 0 ? 0 : beta * c[ci]));
            }
        }
    }

    /** lorakit semantics: row-major, op(A) [m,k] from A [m,k] or [k,m]. */
    private static void rowMajorRef(boolean ta, boolean tb, int m, int n, int k, float alpha, float[] a, long offA,
                                    int lda, float[] b, long offB, int ldb, float beta, float[] c, long offC, int ldc) {
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    float av = ta ? a[(int) (offA + (long) p * lda + i)] : a[(int) (offA + (long) i * lda + p)];
                    float bv = tb ? b[(int) (offB + (long) j * ldb + p)] : b[(int) (offB + (long) p * ldb + j)];
                    s += (double) av * bv;
                }
                int ci = (int) (offC + (long) i * ldc + j);
                c[ci] = (float) (alpha * s + (beta == 0 ? 0 : beta * c[ci]));
            }
        }
    }

    @Test
    void thePlanComputesTheRowMajorProductForEveryTransposeAndBatch() {
        Random rnd = new Random(17);
        int m = 5, n = 7, k = 3, batch = 3;
        for (boolean ta : new boolean[] {false, true}) {
            for (boolean tb : new boolean[] {false, true}) {
                int lda = (ta ? m : k) + 2, ldb = (tb ? k : n) + 1, ldc = n + 3;
                long strideA = (long) lda * (ta ? k : m) + 4, strideB = (long) ldb * (tb ? n : k), strideC = (long) ldc * m + 1;
                long offA = 2, offB = 1, offC = 3;
                float[] a = random(rnd, (int) (offA + strideA * batch));
                float[] b = random(rnd, (int) (offB + strideB * batch));
                float[] c0 = random(rnd, (int) (offC + strideC * batch));
                float[] ref = c0.clone();
                float[] got = c0.clone();
                RowMajorGemm.Plan p = RowMajorGemm.plan(ta, tb, m, n, k, offA, lda, strideA, offB, ldb, strideB,
                        offC, ldc, strideC);
                assertEquals(n, p.m());
                assertEquals(m, p.n());
                assertEquals(tb, p.transA());
                for (int i = 0; i < batch; i++) {
                    rowMajorRef(ta, tb, m, n, k, 1.5f, a, offA + i * strideA, lda, b, offB + i * strideB, ldb, 0.5f,
                            ref, offC + i * strideC, ldc);
                    // the plan's operands are offsets into b (first) and a (second)
                    colMajorGemm(p.transA(), p.transB(), p.m(), p.n(), p.k(), 1.5f, b, p.a() + i * p.strideA(), p.lda(),
                            a, p.b() + i * p.strideB(), p.ldb(), 0.5f, got, p.c() + i * p.strideC(), p.ldc());
                }
                Tolerance.Result r = Tolerance.F32.compare("gemm ta=" + ta + " tb=" + tb, got, ref);
                assertTrue(r.ok(), r.describe());
            }
        }
    }

    @Test
    void dtypeTableMatchesCublasGemmEx() {
        assertTrue(RowMajorGemm.supports(DType.F32, DType.F32, DType.F32));
        assertTrue(RowMajorGemm.supports(DType.BF16, DType.BF16, DType.F32));
        assertTrue(RowMajorGemm.supports(DType.BF16, DType.BF16, DType.BF16));
        assertTrue(RowMajorGemm.supports(DType.F16, DType.F16, DType.F32));
        assertFalse(RowMajorGemm.supports(DType.BF16, DType.F32, DType.F32), "mixed inputs");
        assertFalse(RowMajorGemm.supports(DType.F32, DType.F32, DType.BF16), "fp32 inputs into bf16 output");
        assertFalse(RowMajorGemm.supports(DType.I32, DType.I32, DType.I32));
        assertEquals(Blas.R_16BF, RowMajorGemm.cudaType(DType.BF16));
        assertEquals(Blas.R_32F, RowMajorGemm.cudaType(DType.F32));
        assertEquals(Blas.R_16F, RowMajorGemm.cudaType(DType.F16));
        assertEquals("CUBLAS_STATUS_INVALID_VALUE", Blas.statusName(7));
    }

    @Test
    void runPassesByteAddressesAndSwappedTypes() {
        long[] seen = new long[6];
        int[] types = new int[3];
        Blas recorder = new Blas() {
            @Override
            public String description() {
                return "recorder";
            }

            @Override
            public void setStream(long stream) {
            }

            @Override
            public void setWorkspace(long address, long bytes) {
            }

            @Override
            public void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, int typeA,
                             int lda, long strideA, long b, int typeB, int ldb, long strideB, float beta, long c,
                             int typeC, int ldc, long strideC, int batch) {
                seen[0] = a;
                seen[1] = b;
                seen[2] = c;
                seen[3] = m;
                seen[4] = n;
                seen[5] = batch;
                types[0] = typeA;
                types[1] = typeB;
                types[2] = typeC;
            }

            @Override
            public void close() {
            }
        };
        RowMajorGemm.run(recorder, 2, false, true, 4, 6, 8, 1f, 1000, DType.BF16, 3, 8, 32,
                5000, DType.BF16, 5, 8, 48, 0f, 9000, DType.F32, 7, 6, 24);
        assertEquals(5000 + 5 * 2, seen[0], "first operand = lorakit's B at its byte offset");
        assertEquals(1000 + 3 * 2, seen[1]);
        assertEquals(9000 + 7 * 4, seen[2]);
        assertEquals(6, seen[3]);
        assertEquals(4, seen[4]);
        assertEquals(2, seen[5]);
        assertEquals(Blas.R_16BF, types[0]);
        assertEquals(Blas.R_32F, types[2]);
    }

    private static float[] random(Random rnd, int n) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) rnd.nextGaussian();
        }
        return x;
    }
}
