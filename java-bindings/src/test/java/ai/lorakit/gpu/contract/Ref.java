package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Tolerance;

import java.util.Arrays;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Naive double-precision references and input generators for the backend contract tests. */
public final class Ref {
    private Ref() {
    }

    // ---------------------------------------------------------------- inputs

    /** n values uniform in [-1, 1) from {@code seed}. */
    public static float[] random(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (r.nextDouble() * 2 - 1);
        }
        return x;
    }

    /** Structured values: small integers (i mod 7) - 3 times {@code scale} (exact in every dtype for scale 1). */
    public static float[] arange(int n, float scale) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = ((i % 7) - 3) * scale;
        }
        return x;
    }

    public static float[] ones(int n) {
        return filled(n, 1f);
    }

    public static float[] filled(int n, float v) {
        float[] x = new float[n];
        Arrays.fill(x, v);
        return x;
    }

    public static float[] nans(int n) {
        return filled(n, Float.NaN);
    }

    public static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    // ---------------------------------------------------------------- assertions

    public static void assertClose(Tolerance tol, String what, float[] actual, double[] ref) {
        Tolerance.Result r = tol.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    public static void assertClose(Tolerance tol, String what, float[] actual, float[] ref) {
        assertClose(tol, what, actual, toDouble(ref));
    }

    // ---------------------------------------------------------------- GEMM

    /**
     * Reference strided batched GEMM (row-major, as Backend#gemmBatched) on a copy of c, in double: returns the
     * whole of c with every C_i region replaced; beta == 0 ignores the old C.
     */
    public static double[] gemmBatched(int batch, boolean transA, boolean transB, int m, int n, int k, double alpha,
                                       float[] a, long offA, int lda, long strideA,
                                       float[] b, long offB, int ldb, long strideB,
                                       double beta, float[] c, long offC, int ldc, long strideC) {
        double[] out = toDouble(c);
        for (int bi = 0; bi < batch; bi++) {
            for (int i = 0; i < m; i++) {
                for (int j = 0; j < n; j++) {
                    double s = 0;
                    for (int p = 0; p < k; p++) {
                        double av = transA ? a[(int) (offA + bi * strideA + (long) p * lda + i)]
                                : a[(int) (offA + bi * strideA + (long) i * lda + p)];
                        double bv = transB ? b[(int) (offB + bi * strideB + (long) j * ldb + p)]
                                : b[(int) (offB + bi * strideB + (long) p * ldb + j)];
                        s += av * bv;
                    }
                    int ci = (int) (offC + bi * strideC + (long) i * ldc + j);
                    out[ci] = alpha * s + (beta == 0 ? 0 : beta * c[ci]);
                }
            }
        }
        return out;
    }

    /** Dense [m,k] x [k,n] (optionally transposed operands as stored), double result [m,n]. */
    public static double[] matmul(double[] a, boolean transA, double[] b, boolean transB, int m, int n, int k) {
        double[] c = new double[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    s += (transA ? a[p * m + i] : a[i * k + p]) * (transB ? b[j * k + p] : b[p * n + j]);
                }
                c[i * n + j] = s;
            }
        }
        return c;
    }

    public static double[] matmul(float[] a, boolean transA, float[] b, boolean transB, int m, int n, int k) {
        return matmul(toDouble(a), transA, toDouble(b), transB, m, n, k);
    }

    /** x [R,C] -> [C,R]. */
    public static double[] transpose(double[] x, int rows, int cols) {
        double[] t = new double[x.length];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                t[c * rows + r] = x[r * cols + c];
            }
        }
        return t;
    }
}
