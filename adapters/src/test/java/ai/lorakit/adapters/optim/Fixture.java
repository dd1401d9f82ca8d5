package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Synthetic parameters and a double-precision torch.optim.AdamW reference for the optimizer tests. */
final class Fixture {
    private Fixture() {
    }

    static Parameter param(Backend be, String name, Parameter.Role role, boolean trainable, float[] values,
                           int... shape) {
        return new Parameter(name, role, be.upload(values, shape).named(name), trainable);
    }

    static float[] random(Random rnd, int n, double bound) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
        }
        return x;
    }

    /** grad(p) = g, through the accumulation buffer. */
    static void setGrad(Parameter p, float[] g) {
        Backend be = p.value().backend();
        try (Tensor t = be.upload(g, p.value().shape())) {
            be.copy(t, p.gradForAccumulation());
        }
    }

    static float[] values(Parameter p) {
        return p.value().backend().download(p.value());
    }

    static float[] values(Tensor t) {
        return t.backend().download(t);
    }

    static void assertClose(String what, float[] actual, double[] ref) {
        Tolerance.Result r = Tolerance.F32.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    /** Bit-identical (same raw float bits). */
    static void assertBitIdentical(String what, float[] expected, float[] actual) {
        int[] e = new int[expected.length];
        int[] a = new int[actual.length];
        for (int i = 0; i < e.length; i++) {
            e[i] = Float.floatToRawIntBits(expected[i]);
        }
        for (int i = 0; i < a.length; i++) {
            a[i] = Float.floatToRawIntBits(actual[i]);
        }
        assertArrayEquals(e, a, what + " must be bit-identical");
    }

    static double[] toDouble(float[] x) {
        double[] d = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            d[i] = x[i];
        }
        return d;
    }

    /** torch.optim.AdamW in double: decay first, then the bias-corrected Adam step (eps after sqrt(v̂)). */
    static final class RefAdamW {
        final double[] p;
        final double[] m;
        final double[] v;
        int t;

        RefAdamW(float[] p0) {
            p = toDouble(p0);
            m = new double[p0.length];
            v = new double[p0.length];
        }

        void step(double[] g, double lr, OptimizerConfig c, double wd) {
            t++;
            double b1 = c.beta1();
            double b2 = c.beta2();
            for (int i = 0; i < p.length; i++) {
                p[i] -= lr * wd * p[i];
                m[i] = b1 * m[i] + (1 - b1) * g[i];
                v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.pow(b1, t));
                double vHat = v[i] / (1 - Math.pow(b2, t));
                p[i] -= lr * mHat / (Math.sqrt(vHat) + c.eps());
            }
        }

        void step(float[] g, double lr, OptimizerConfig c, double wd) {
            step(toDouble(g), lr, c, wd);
        }
    }
}
