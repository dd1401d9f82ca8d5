package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.DoubleSupplier;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The finite-difference harness of the layer tests: for loss = sum(G ∘ y) with a random G, checks a layer's dx
 * and every trainable parameter's gradient against (L(θ+h) - L(θ-h)) / 2h at every coordinate. The forward runs
 * in fp32 and the loss is summed in double, so h = 1e-2 and the tolerance is 1e-2 relative with a floor of 1e-3 of
 * the largest entry (a wrong transpose, cache or accumulation is off by O(1)). Batches are B=2, T=3. Owns the
 * tensors it makes; close it after the test.
 */
final class LayerCheck implements AutoCloseable {

    static final int B = 2;
    static final int T = 3;
    private static final double H = 1e-2;

    /** The layer under test as a map from x [B,T,in] to y, and its backward from dy to dx. */
    interface Layer {
        Tensor forward(Buffers buf, Tensor x);

        void backward(Buffers buf, Tensor dy, Tensor dx);
    }

    final Backend be;
    private final Random rnd;
    private final List<Tensor> owned = new ArrayList<>();

    LayerCheck(Backend be, long seed) {
        this.be = be;
        this.rnd = new Random(seed);
    }

    /** Runs forward and backward once, then checks dx and every parameter in ps by central differences. */
    void check(String what, int in, Layer layer, List<Parameter> ps) {
        try (Buffers buf = new Buffers(be, B, T)) {
            float[] xv = uniform(B * T * in, 1);
            Tensor x = keep(be.upload(xv, B, T, in));
            Tensor y = layer.forward(buf, x);
            float[] g = uniform((int) y.numel(), 1);
            Tensor dx = keep(be.zeros(DType.F32, B, T, in));
            try (Tensor dy = be.upload(g, y.shape())) {
                layer.backward(buf, dy, dx);
            }
            float[] got = be.download(dx);
            double[] fd = new double[xv.length];
            for (int i = 0; i < xv.length; i++) {
                float old = xv[i];
                xv[i] = old + (float) H;
                set(x, xv);
                double up = dot(g, be.download(layer.forward(buf, x)));
                xv[i] = old - (float) H;
                set(x, xv);
                double down = dot(g, be.download(layer.forward(buf, x)));
                xv[i] = old;
                set(x, xv);
                fd[i] = (up - down) / (2 * H);
            }
            assertClose(what + " dx", got, fd);
            for (Parameter p : ps) {
                compareGrad(what + " d" + p.name(), p, () -> dot(g, be.download(layer.forward(buf, x))));
            }
        }
    }

    /** Checks p's gradient against central differences of {@code loss} in p's values. */
    void compareGrad(String what, Parameter p, DoubleSupplier loss) {
        assertNotNull(p.grad(), what + ": trainable but no gradient");
        float[] got = be.download(p.grad());
        float[] v = be.download(p.value());
        double[] fd = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            float old = v[i];
            v[i] = old + (float) H;
            set(p.value(), v);
            double up = loss.getAsDouble();
            v[i] = old - (float) H;
            set(p.value(), v);
            double down = loss.getAsDouble();
            v[i] = old;
            set(p.value(), v);
            fd[i] = (up - down) / (2 * H);
        }
        assertClose(what, got, fd);
    }

    private static void assertClose(String what, float[] got, double[] fd) {
        double max = 0;
        for (double d : fd) {
            max = Math.max(max, Math.abs(d));
        }
        assertTrue(max > 1e-3, what + ": the reference gradient is ~0, the check would be vacuous");
        Tolerance.Result r = new Tolerance(1e-3 * max, 1e-2).compare(what, got, fd);
        assertTrue(r.ok(), r.describe());
    }

    /** A Linear as a Layer (its output in a test buffer). */
    Layer linear(Linear lin) {
        return new Layer() {
            Tensor x;

            public Tensor forward(Buffers buf, Tensor in) {
                x = in;
                Tensor y = buf.shared("test.y." + lin.out(), B, T, lin.out());
                lin.forward(in, y);
                return y;
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                lin.backward(x, dy, dx);
            }
        };
    }

    /** A Norm as a Layer. */
    Layer norm(Norm n) {
        return new Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                return n.forward(buf, x);
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                n.backward(buf, dy, dx);
            }
        };
    }

    /** A Sublayer of width c as a Layer. */
    Layer sublayer(Sublayer s, int c) {
        return new Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                Tensor y = buf.shared("test.y." + c, B, T, c);
                s.forward(buf, x, y);
                return y;
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                s.backward(buf, dy, dx);
            }
        };
    }

    /** A trainable linear in -> out (with bias when asked), its parameters appended to ps. */
    Linear linear(String name, int in, int out, Linear.Layout layout, boolean bias, List<Parameter> ps) {
        int[] shape = layout == Linear.Layout.IN_OUT ? new int[] {in, out} : new int[] {out, in};
        Parameter w = param(name + ".weight", shape);
        ps.add(w);
        Parameter b = null;
        if (bias) {
            b = param(name + ".bias", out);
            ps.add(b);
        }
        return new Linear(name, w, b, layout);
    }

    /** A trainable parameter with U(±0.5) values (those named g*, norm gains, around 1). */
    Parameter param(String name, int... shape) {
        int n = (int) Tensor.numel(shape);
        float[] v = uniform(n, 0.5);
        if (shape.length == 1 && name.startsWith("g")) {
            for (int i = 0; i < n; i++) {
                v[i] += 1f;
            }
        }
        return new Parameter(name, shape.length == 1 ? Parameter.Role.BIAS : Parameter.Role.WEIGHT,
                keep(be.upload(v, shape)), true);
    }

    Tensor keep(Tensor t) {
        owned.add(t);
        return t;
    }

    void set(Tensor dst, float[] v) {
        try (Tensor src = be.upload(v, dst.shape())) {
            be.copy(src, dst);
        }
    }

    float[] uniform(int n, double bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return v;
    }

    static double dot(float[] g, float[] y) {
        double s = 0;
        for (int i = 0; i < g.length; i++) {
            s += (double) g[i] * y[i];
        }
        return s;
    }

    /** Closes the tensors this harness made (parameters, inputs). */
    @Override
    public void close() {
        owned.forEach(Tensor::close);
        owned.clear();
    }
}
