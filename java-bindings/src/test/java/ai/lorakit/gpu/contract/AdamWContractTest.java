package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static ai.lorakit.gpu.contract.Ref.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Backend#adamw against the formula in {@link AdamW}'s Javadoc (torch.optim.AdamW) evaluated in double, for
 * steps t = 1..3 with and without weight decay, on every backend in {@link ContractBackends}; a mismatched
 * moment buffer is rejected before the parameter is touched; and the {@link AdamW} record refuses every
 * hyper-parameter outside its range (NaN and infinities included), naming it.
 */
class AdamWContractTest {

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void threeStepsMatchTheFormula(Supplier<Backend> f) {
        for (float wd : new float[] {0f, 0.1f}) {
            long seed = wd == 0f ? 314 : 2718;
            int n = 130;
            float[] p0 = Ref.random(seed, n);
            try (Backend be = f.get(); Tensor p = be.upload(p0, 10, 13); Tensor m = be.zeros(ai.lorakit.gpu.DType.F32, 10, 13);
                 Tensor v = be.zeros(ai.lorakit.gpu.DType.F32, 130)) {
                double[] rp = Ref.toDouble(p0), rm = new double[n], rv = new double[n];
                for (int t = 1; t <= 3; t++) {
                    AdamW hp = new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, wd, t);
                    float[] g = Ref.random(seed + t, n);
                    g[0] = 0f;   // a zero gradient: only decay moves it
                    try (Tensor gt = be.upload(g, 10, 13)) {
                        be.adamw(p, gt, m, v, hp);
                    }
                    double lr = hp.lr(), b1 = hp.beta1(), b2 = hp.beta2();
                    for (int i = 0; i < n; i++) {
                        rp[i] -= lr * hp.weightDecay() * rp[i];
                        rm[i] = b1 * rm[i] + (1 - b1) * g[i];
                        rv[i] = b2 * rv[i] + (1 - b2) * (double) g[i] * g[i];
                        double mh = rm[i] / (1 - Math.pow(b1, t));
                        double vh = rv[i] / (1 - Math.pow(b2, t));
                        rp[i] -= lr * mh / (Math.sqrt(vh) + hp.eps());
                    }
                    String what = "adamw t=" + t + " wd=" + wd + " seed=" + seed;
                    assertClose(Tolerance.F32, what + " param", be.download(p), rp);
                    assertClose(Tolerance.F32, what + " m", be.download(m), rm);
                    assertClose(Tolerance.F32, what + " v", be.download(v), rv);
                }
                try (Tensor g = be.upload(Ref.ones(n), n); Tensor bad = be.zeros(ai.lorakit.gpu.DType.F32, n - 1)) {
                    float[] before = be.download(p);
                    assertThrows(ShapeException.class,
                            () -> be.adamw(p, g, bad, v, new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1)));
                    assertArrayEquals(before, be.download(p), "adamw wrote before failing");
                }
            }
        }
    }

    @Test
    void hyperParametersAreValidated() {
        float nan = Float.NaN;
        float inf = Float.POSITIVE_INFINITY;
        Object[][] bad = {
                {"lr", -1f, 0.9f, 0.999f, 1e-8f, 0f, 1}, {"lr", inf, 0.9f, 0.999f, 1e-8f, 0f, 1},
                {"beta1", 1e-3f, 1f, 0.999f, 1e-8f, 0f, 1}, {"beta1", 1e-3f, nan, 0.999f, 1e-8f, 0f, 1},
                {"beta2", 1e-3f, 0.9f, -0.1f, 1e-8f, 0f, 1}, {"eps", 1e-3f, 0.9f, 0.999f, 0f, 0f, 1},
                {"eps", 1e-3f, 0.9f, 0.999f, inf, 0f, 1}, {"weightDecay", 1e-3f, 0.9f, 0.999f, 1e-8f, -0.1f, 1},
                {"weightDecay", 1e-3f, 0.9f, 0.999f, 1e-8f, inf, 1}, {"step", 1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 0}};
        for (Object[] c : bad) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> new AdamW((float) c[1],
                    (float) c[2], (float) c[3], (float) c[4], (float) c[5], (int) c[6]), "bad " + c[0]);
            assertTrue(e.getMessage().startsWith(c[0] + " "), e.getMessage());
        }
    }
}
