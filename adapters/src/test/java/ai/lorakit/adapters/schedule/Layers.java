package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertTrue;

/** Test fixture: adapted layers on random frozen weights, owning W, bias and the layers. */
final class Layers implements AutoCloseable {
    final Backend be;
    final List<AdaptedLinear> modules = new ArrayList<>();
    final List<Tensor> owned = new ArrayList<>();

    Layers(Backend be) {
        this.be = be;
    }

    /** A layer named {@code name} with W [out,in] ~ U(±0.5), bias ~ U(±0.1). */
    AdaptedLinear add(String name, int in, int out, AdapterConfig cfg, long seed) {
        Random rnd = new Random(seed);
        Tensor w = be.upload(uniform(rnd, out * in, 0.5), out, in);
        Tensor b = be.upload(uniform(rnd, out, 0.1), out);
        owned.add(w);
        owned.add(b);
        AdaptedLinear m = AdaptedLinear.create(name, w, b, false, cfg, null, seed);
        modules.add(m);
        return m;
    }

    static float[] uniform(Random rnd, int n, double bound) {
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) ((2 * rnd.nextDouble() - 1) * bound);
        }
        return x;
    }

    static void set(Parameter p, float[] v) {
        Backend be = p.value().backend();
        try (Tensor t = be.upload(v, p.value().shape())) {
            be.copy(t, p.value());
        }
    }

    static void setGrad(Parameter p, float[] g) {
        Backend be = p.value().backend();
        try (Tensor t = be.upload(g, p.value().shape())) {
            be.copy(t, p.gradForAccumulation());
        }
    }

    static float[] values(Parameter p) {
        return p.value().backend().download(p.value());
    }

    /** Eval-mode output of m for x [N,in]. */
    static float[] forward(AdaptedLinear m, float[] x, int n) {
        Backend be = m.weight().backend();
        try (Tensor xt = be.upload(x, n, m.inFeatures()); Tensor y = Fresh.forward(m, xt)) {
            return be.download(y);
        }
    }

    static void assertClose(String what, float[] actual, float[] ref) {
        Tolerance.Result r = Tolerance.F32.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    static void assertClose(String what, float[] actual, double[] ref) {
        Tolerance.Result r = Tolerance.F32.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }

    @Override
    public void close() {
        modules.forEach(AdaptedLinear::close);
        owned.forEach(Tensor::close);
    }
}
