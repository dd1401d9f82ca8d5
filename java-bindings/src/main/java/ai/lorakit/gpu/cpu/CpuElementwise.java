package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Elementwise loops of {@link CpuBackend} over ranges [lo, hi) of flat arrays, vectorised with the Vector API
 * (only correctly rounded lanewise ops, whose vector and scalar-tail results are the same bits, so a value never
 * depends on its position or on the range split). {@link CpuBackend} runs them on {@link CpuParallel#forRange}.
 */
final class CpuElementwise {
    private static final VectorSpecies<Float> S = CpuMath.S;
    private static final int L = CpuMath.L;

    private CpuElementwise() {
    }

    /** out = a + b over [lo, hi). */
    static void add(float[] a, float[] b, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.fromArray(S, a, i).add(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = a[i] + b[i];
        }
    }

    /** out = a * b over [lo, hi). */
    static void mul(float[] a, float[] b, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = a[i] * b[i];
        }
    }

    /** out = a / b over [lo, hi) (IEEE division: the lanes and the tail give the same bits). */
    static void divide(float[] a, float[] b, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.fromArray(S, a, i).div(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = a[i] / b[i];
        }
    }

    /** out = sqrt(x) over [lo, hi) (correctly rounded, as Math.sqrt rounded to float). */
    static void sqrt(float[] x, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.fromArray(S, x, i).lanewise(VectorOperators.SQRT).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = (float) Math.sqrt(x[i]);
        }
    }

    /** out = 1 / x over [lo, hi). */
    static void reciprocal(float[] x, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.broadcast(S, 1f).div(FloatVector.fromArray(S, x, i)).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = 1f / x[i];
        }
    }

    /** out = alpha * x over [lo, hi). */
    static void scale(float[] x, float alpha, float[] out, int lo, int hi) {
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector.fromArray(S, x, i).mul(alpha).intoArray(out, i);
        }
        for (; i < hi; i++) {
            out[i] = alpha * x[i];
        }
    }

    /** y = alpha * x + beta * y over [lo, hi) (no fma, as the scalar tail); beta == 0 does not read y. */
    static void axpby(float alpha, float[] x, float beta, float[] y, int lo, int hi) {
        if (beta == 0f) {
            scale(x, alpha, y, lo, hi);
            return;
        }
        int i = lo;
        for (int up = lo + S.loopBound(hi - lo); i < up; i += L) {
            FloatVector xv = FloatVector.fromArray(S, x, i);
            FloatVector yv = FloatVector.fromArray(S, y, i);
            xv.mul(alpha).add(yv.mul(beta)).intoArray(y, i);
        }
        for (; i < hi; i++) {
            y[i] = alpha * x[i] + beta * y[i];
        }
    }

    /**
     * Rows [r0, r1) of a [rows, cols] matrix: out[r, c] = a[r, c] (+ or *) v[c] ({@code perColumn}, v [cols]) or
     * (+ or *) v[r] (v [rows]).
     */
    static void broadcast(float[] a, float[] v, float[] out, int cols, boolean perColumn, boolean multiply,
                          int r0, int r1) {
        for (int r = r0; r < r1; r++) {
            int base = r * cols;
            int c = 0;
            if (perColumn) {
                for (int up = S.loopBound(cols); c < up; c += L) {
                    FloatVector x = FloatVector.fromArray(S, a, base + c);
                    FloatVector y = FloatVector.fromArray(S, v, c);
                    (multiply ? x.mul(y) : x.add(y)).intoArray(out, base + c);
                }
                for (; c < cols; c++) {
                    out[base + c] = multiply ? a[base + c] * v[c] : a[base + c] + v[c];
                }
            } else {
                float y = v[r];
                for (int up = S.loopBound(cols); c < up; c += L) {
                    FloatVector x = FloatVector.fromArray(S, a, base + c);
                    (multiply ? x.mul(y) : x.add(y)).intoArray(out, base + c);
                }
                for (; c < cols; c++) {
                    out[base + c] = multiply ? a[base + c] * y : a[base + c] + y;
                }
            }
        }
    }

    /** sum_{i<n} a[off+i] * b[off+i], accumulated in double. */
    static double dot(float[] a, float[] b, int off, int n) {
        double s0 = 0, s1 = 0;
        int i = 0;
        for (; i + 1 < n; i += 2) {
            s0 += (double) a[off + i] * b[off + i];
            s1 += (double) a[off + i + 1] * b[off + i + 1];
        }
        if (i < n) {
            s0 += (double) a[off + i] * b[off + i];
        }
        return s0 + s1;
    }
}
