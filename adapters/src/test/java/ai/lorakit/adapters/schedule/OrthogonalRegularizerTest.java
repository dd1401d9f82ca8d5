package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Proves the orthogonality regulariser: its value is PEFT's orth_reg_weight · mean over every A and B of the
 * NON-squared ‖C − I‖_F (and the paper's Σ‖C − I‖²_F for that form), computed here independently in double; the
 * gradients it adds to A and B equal central finite differences of that double function (both forms); the
 * RankAllocator's beforeOptimizerStep writes exactly PEFT's form into its stats slot (on the device); frozen parameters get no gradient; bad roles throw.
 */
class OrthogonalRegularizerTest {

    private static final int R = 3;
    private static final int IN = 6;
    private static final int OUT = 4;
    private static final float WEIGHT = 0.5f;

    @Test
    void valueAndGradientMatchFiniteDifferencesForBothForms() {
        for (OrthogonalRegularizer.Form form : OrthogonalRegularizer.Form.values()) {
            try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
                List<Parameter> ms = setup(ls);
                double[][] p0 = new double[ms.size()][];
                for (int i = 0; i < ms.size(); i++) {
                    p0[i] = d(Layers.values(ms.get(i)));
                }
                double want = reference(ms, p0, form);
                double got = OrthogonalRegularizer.apply(ms, WEIGHT, form, true);
                assertEquals(want, got, 1e-5 * Math.abs(want), form + " value");
                for (int i = 0; i < ms.size(); i++) {
                    double[] fd = new double[p0[i].length];
                    double h = 1e-5;
                    for (int k = 0; k < fd.length; k++) {
                        double keep = p0[i][k];
                        p0[i][k] = keep + h;
                        double up = reference(ms, p0, form);
                        p0[i][k] = keep - h;
                        double down = reference(ms, p0, form);
                        p0[i][k] = keep;
                        fd[k] = (up - down) / (2 * h);
                    }
                    Layers.assertClose(form + " gradient of " + ms.get(i).name(),
                            be.download(ms.get(i).grad()), fd);
                }
            }
        }
    }

    @Test
    void rankAllocatorAddsPeftsFormAndSkipsFrozenParameters() {
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            List<Parameter> ms = setup(ls);
            double[][] p0 = new double[ms.size()][];
            for (int i = 0; i < ms.size(); i++) {
                p0[i] = d(Layers.values(ms.get(i)));
            }
            double want = reference(ms, p0, OrthogonalRegularizer.Form.PEFT_MEAN_NORM);
            AdaLoraConfig c = (AdaLoraConfig) ls.modules.getFirst().config();
            Parameter frozen = ms.get(1);
            frozen.setTrainable(false);
            try (RankAllocator ra = RankAllocator.create(c, ls.modules); Tensor stats = be.zeros(DType.F32, 6)) {
                ra.beforeOptimizerStep(0, stats, 2);
                float[] st = be.download(stats);
                assertEquals(want, DeviceSums.at(st, 2), 1e-5 * want, "weight·R in slot 2 of the stats");
                assertArrayEquals(new float[4], Arrays.copyOf(st, 4), "the other slots are untouched");
            }
            assertEquals(null, frozen.grad(), "a frozen B gets no gradient");
            assertThrows(IllegalArgumentException.class, () -> OrthogonalRegularizer.apply(
                    List.of(ls.modules.getFirst().parameter(Parameter.Role.LORA_E)), 1f,
                    OrthogonalRegularizer.Form.PEFT_MEAN_NORM, true));
            float[] before = Layers.values(ms.getFirst());
            assertEquals(0.0, OrthogonalRegularizer.apply(ms, 0f, OrthogonalRegularizer.Form.PEFT_MEAN_NORM, true));
            assertArrayEquals(before, Layers.values(ms.getFirst()), "weight 0 touches nothing");
        }
    }

    /** Two AdaLoRA layers with random A, B (non-orthogonal); returns A0, B0, A1, B1 with zeroed gradients. */
    private static List<Parameter> setup(Layers ls) {
        AdaLoraConfig c = new AdaLoraConfig(R, 2, 0, 0, 1, 0.85f, 0.85f, WEIGHT, 10, 8f, 0f, List.of("proj"), null);
        Random rnd = new Random(17);
        List<Parameter> ms = new ArrayList<>();
        for (int i = 0; i < 2; i++) {
            AdaptedLinear m = ls.add("h." + i + ".proj", IN, OUT, c, i);
            Parameter a = m.parameter(Parameter.Role.LORA_A);
            Parameter b = m.parameter(Parameter.Role.LORA_B);
            Layers.set(a, Layers.uniform(rnd, R * IN, 0.8));
            Layers.set(b, Layers.uniform(rnd, OUT * R, 0.8));
            Layers.setGrad(a, new float[R * IN]);
            Layers.setGrad(b, new float[OUT * R]);
            ms.add(a);
            ms.add(b);
        }
        return ms;
    }

    /** weight·R in double: C = A Aᵀ or Bᵀ B, D = C − I, PEFT: mean of ‖D‖_F; paper: Σ‖D‖²_F. */
    private static double reference(List<Parameter> ms, double[][] p, OrthogonalRegularizer.Form form) {
        double total = 0;
        for (int i = 0; i < ms.size(); i++) {
            boolean isA = ms.get(i).role() == Parameter.Role.LORA_A;
            int rows = isA ? R : OUT;
            int cols = isA ? IN : R;
            double sq = 0;
            for (int u = 0; u < R; u++) {
                for (int v = 0; v < R; v++) {
                    double cuv = 0;
                    if (isA) {
                        for (int k = 0; k < cols; k++) {
                            cuv += p[i][u * cols + k] * p[i][v * cols + k];
                        }
                    } else {
                        for (int k = 0; k < rows; k++) {
                            cuv += p[i][k * cols + u] * p[i][k * cols + v];
                        }
                    }
                    double dd = cuv - (u == v ? 1 : 0);
                    sq += dd * dd;
                }
            }
            total += form == OrthogonalRegularizer.Form.PEFT_MEAN_NORM ? Math.sqrt(sq) / ms.size() : sq;
        }
        return WEIGHT * total;
    }

    private static double[] d(float[] f) {
        double[] x = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            x[i] = f[i];
        }
        return x;
    }
}
