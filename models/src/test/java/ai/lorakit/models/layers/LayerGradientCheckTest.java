package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves each layer's hand-written backward against central finite differences of its own forward, layer by layer
 * (the whole-model check against an independent double forward is Gpt2GradientCheckTest): for loss = sum(G ∘ y)
 * with a random G, dx and the gradient of every trainable parameter must equal (L(θ+h) - L(θ-h)) / 2h at EVERY
 * coordinate. The forward runs in fp32 and the loss is summed in double, so h = 1e-2 and the tolerance is 1e-2
 * relative with a floor of 1e-3 of the largest entry (a wrong transpose, cache or accumulation is off by O(1)).
 * Covered: Linear in both layouts, with and without bias, frozen (no gradient) or trainable; LayerNorm; GeluMlp;
 * CausalSelfAttention; PreNormBlock; Embedding with and without its position table's gradient.
 */
class LayerGradientCheckTest {

    private static final int B = 2;
    private static final int T = 3;
    private static final int C = 8;
    private static final double H = 1e-2;

    private Backend be;
    private Random rnd;
    private final List<Tensor> owned = new ArrayList<>();

    /** The layer under test as a map from x [B,T,in] to y, and its backward from dy to dx. */
    private interface Layer {
        Tensor forward(Buffers buf, Tensor x);

        void backward(Buffers buf, Tensor dy, Tensor dx);
    }

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        rnd = new Random(7);
    }

    @AfterEach
    void tearDown() {
        owned.forEach(Tensor::close);
        be.close();
    }

    @Test
    void linearBothLayoutsWithAndWithoutBias() {
        for (Linear.Layout layout : Linear.Layout.values()) {
            for (boolean withBias : new boolean[] {true, false}) {
                int out = 5;
                Parameter w = param("w", layout == Linear.Layout.IN_OUT ? new int[] {C, out} : new int[] {out, C});
                Parameter b = withBias ? param("b", out) : null;
                Linear lin = new Linear("lin", w, b, layout);
                assertEquals(C, lin.in());
                assertEquals(out, lin.out());
                check(layout + (withBias ? " + bias" : ""), C, linearLayer(lin), withBias ? List.of(w, b) : List.of(w));
            }
        }
    }

    @Test
    void frozenLinearGetsNoGradientButPassesDx() {
        Parameter w = param("w", 4, C);
        w.setTrainable(false);
        Parameter b = param("b", 4);
        b.setTrainable(false);
        check("frozen", C, linearLayer(new Linear("lin", w, b, Linear.Layout.OUT_IN)), List.of());
        assertNull(w.grad(), "a frozen W gets no gradient");
        assertNull(b.grad(), "a frozen b gets no gradient");
    }

    @Test
    void layerNorm() {
        Parameter g = param("g", C);
        Parameter bt = param("b", C);
        LayerNorm ln = new LayerNorm(g, bt, 1e-5f);
        check("LayerNorm", C, new Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                return ln.forward(buf, x);
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                ln.backward(buf, dy, dx);
            }
        }, List.of(g, bt));
    }

    @Test
    void geluMlp() {
        List<Parameter> ps = new ArrayList<>();
        GeluMlp mlp = new GeluMlp(linear("fc", C, 4 * C, ps), linear("proj", 4 * C, C, ps));
        check("GeluMlp", C, sublayer(mlp), ps);
    }

    @Test
    void causalSelfAttention() {
        List<Parameter> ps = new ArrayList<>();
        CausalSelfAttention attn = new CausalSelfAttention(linear("qkv", C, 3 * C, ps), linear("o", C, C, ps), 2);
        check("CausalSelfAttention", C, sublayer(attn), ps);
        assertThrows(IllegalArgumentException.class,
                () -> new CausalSelfAttention(linear("qkv", C, 3 * C, ps), linear("o", C, C, ps), 3),
                "C % heads != 0 is refused");
    }

    @Test
    void preNormBlock() {
        List<Parameter> ps = new ArrayList<>();
        Parameter g1 = param("g1", C);
        Parameter b1 = param("b1", C);
        Parameter g2 = param("g2", C);
        Parameter b2 = param("b2", C);
        CausalSelfAttention attn = new CausalSelfAttention(linear("qkv", C, 3 * C, ps), linear("o", C, C, ps), 2);
        GeluMlp mlp = new GeluMlp(linear("fc", C, 4 * C, ps), linear("proj", 4 * C, C, ps));
        PreNormBlock block = new PreNormBlock(new LayerNorm(g1, b1, 1e-5f), attn, new LayerNorm(g2, b2, 1e-5f), mlp,
                C, be);
        ps.addAll(List.of(g1, b1, g2, b2));
        check("PreNormBlock", C, new Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                return block.forward(buf, x);
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                be.copy(dy, dx);
                block.backward(buf, dx);     // in place: dL/d out -> dL/d x
            }
        }, ps);
    }

    @Test
    void embeddingWithAndWithoutTrainablePositions() {
        int v = 6;
        int[] ids = {0, 5, 2, 2, 1, 0};
        for (boolean posTrainable : new boolean[] {true, false}) {
            Parameter wte = param("wte", v, C);
            Parameter wpe = param("wpe", T, C);
            wpe.setTrainable(posTrainable);
            try (Embedding emb = new Embedding(wte, wpe); Buffers buf = new Buffers(be, B, T);
                 Tensor idT = be.uploadInts(ids, B, T)) {
                float[] g = uniform(B * T * C, 1);
                Tensor y = emb.forward(buf, idT);
                try (Tensor dy = be.upload(g, B, T, C)) {
                    emb.backward(buf, dy);
                }
                List<Parameter> ps = posTrainable ? List.of(wte, wpe) : List.of(wte);
                for (Parameter p : ps) {
                    compareGrad("Embedding " + p.name(), p, () -> dot(g, be.download(emb.forward(buf, idT))));
                }
                assertEquals(B * T * C, y.numel());
                if (!posTrainable) {
                    assertNull(wpe.grad(), "a frozen position table gets no gradient");
                }
            }
        }
    }

    // ---------------------------------------------------------------- harness

    /** Runs forward and backward once, then checks dx and every parameter in ps by central differences. */
    private void check(String what, int in, Layer layer, List<Parameter> ps) {
        try (Buffers buf = new Buffers(be, B, T)) {
            float[] xv = uniform(B * T * in, 1);
            Tensor x = keep(be.upload(xv, B, T, in));
            Tensor y = layer.forward(buf, x);
            float[] g = uniform((int) y.numel(), 1);
            Tensor dx = keep(be.zeros(ai.lorakit.gpu.DType.F32, B, T, in));
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

    private void compareGrad(String what, Parameter p, java.util.function.DoubleSupplier loss) {
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

    private Layer linearLayer(Linear lin) {
        return new Layer() {
            Tensor x;

            public Tensor forward(Buffers buf, Tensor in) {
                x = in;
                Tensor y = buf.shared("test.y", B, T, lin.out());
                lin.forward(in, y);
                return y;
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                lin.backward(x, dy, dx);
            }
        };
    }

    private Layer sublayer(Sublayer s) {
        return new Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                Tensor y = buf.shared("test.y", B, T, C);
                s.forward(buf, x, y);
                return y;
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                s.backward(buf, dy, dx);
            }
        };
    }

    /** A trainable Conv1D-layout linear in -> out with bias, its parameters appended to ps. */
    private Linear linear(String name, int in, int out, List<Parameter> ps) {
        Parameter w = param(name + ".weight", in, out);
        Parameter b = param(name + ".bias", out);
        ps.add(w);
        ps.add(b);
        return new Linear(name, w, b, Linear.Layout.IN_OUT);
    }

    /** A trainable parameter with U(±0.5) values (gamma-like vectors around 1). */
    private Parameter param(String name, int... shape) {
        int n = (int) Tensor.numel(shape);
        float[] v = uniform(n, 0.5);
        if (shape.length == 1 && name.startsWith("g")) {
            for (int i = 0; i < n; i++) {
                v[i] += 1f;
            }
        }
        Parameter p = new Parameter(name, shape.length == 1 ? Parameter.Role.BIAS : Parameter.Role.WEIGHT,
                keep(be.upload(v, shape)), true);
        return p;
    }

    private Tensor keep(Tensor t) {
        owned.add(t);
        return t;
    }

    private void set(Tensor dst, float[] v) {
        try (Tensor src = be.upload(v, dst.shape())) {
            be.copy(src, dst);
        }
    }

    private float[] uniform(int n, double bound) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((rnd.nextDouble() * 2 - 1) * bound);
        }
        return v;
    }

    private static double dot(float[] g, float[] y) {
        double s = 0;
        for (int i = 0; i < g.length; i++) {
            s += (double) g[i] * y[i];
        }
        return s;
    }
}
