package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.VectorSpecies;

/** Elementwise loops of {@link CpuBackend} over flat arrays, vectorised with the Vector API. */
final class CpuElementwise {
    private static final VectorSpecies<Float> S = FloatVector.SPECIES_PREFERRED;

    private CpuElementwise() {
    }

    /** out = a + b over [0, n). */
    static void add(float[] a, float[] b, float[] out, int n) {
        int i = 0;
        for (int up = S.loopBound(n); i < up; i += S.length()) {
            FloatVector.fromArray(S, a, i).add(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < n; i++) {
            out[i] = a[i] + b[i];
        }
    }

    /** out = a * b over [0, n). */
    static void mul(float[] a, float[] b, float[] out, int n) {
        int i = 0;
        for (int up = S.loopBound(n); i < up; i += S.length()) {
            FloatVector.fromArray(S, a, i).mul(FloatVector.fromArray(S, b, i)).intoArray(out, i);
        }
        for (; i < n; i++) {
            out[i] = a[i] * b[i];
        }
    }

    /** out = alpha * x over [0, n). */
    static void scale(float[] x, float alpha, float[] out, int n) {
        int i = 0;
        for (int up = S.loopBound(n); i < up; i += S.length()) {
            FloatVector.fromArray(S, x, i).mul(alpha).intoArray(out, i);
        }
        for (; i < n; i++) {
            out[i] = alpha * x[i];
        }
    }

    /** y = alpha * x + beta * y over [0, n); beta == 0 does not read y (BLAS convention). */
    static void axpby(float alpha, float[] x, float beta, float[] y, int n) {
        if (beta == 0f) {
            scale(x, alpha, y, n);
            return;
        }
        int i = 0;
        for (int up = S.loopBound(n); i < up; i += S.length()) {
            FloatVector xv = FloatVector.fromArray(S, x, i);
            FloatVector yv = FloatVector.fromArray(S, y, i);
            xv.mul(alpha).add(yv.mul(beta)).intoArray(y, i);
        }
        for (; i < n; i++) {
            y[i] = alpha * x[i] + beta * y[i];
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
