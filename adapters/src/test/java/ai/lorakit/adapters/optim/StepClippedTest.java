package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.Parameter.Role;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;

import static ai.lorakit.adapters.optim.Fixture.assertBitIdentical;
import static ai.lorakit.adapters.optim.Fixture.param;
import static ai.lorakit.adapters.optim.Fixture.random;
import static ai.lorakit.adapters.optim.Fixture.setGrad;
import static ai.lorakit.adapters.optim.Fixture.values;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * {@link Optimizer#stepClipped} (one multi-tensor AdamW, clipped by the device norm) is bit-identical on the CPU to
 * what the Trainer did before: every gradient scaled by min(1, maxNorm/(norm+1e-6)) from the host, then
 * {@link Optimizer#step()}; for LoRA+'s groups (B at ratio × A's lr) over three steps, clipping active and not.
 */
class StepClippedTest {
    private final CpuBackend be = new CpuBackend();

    @AfterEach
    void tearDown() {
        be.close();
    }

    private static List<Parameter> params(CpuBackend be) {
        Random rnd = new Random(4);
        return List.of(param(be, "m.lora_A", Role.LORA_A, true, random(rnd, 12, 1), 3, 4),
                param(be, "m.lora_B", Role.LORA_B, true, random(rnd, 15, 1), 5, 3),
                param(be, "m.bias", Role.OTHER, true, random(rnd, 5, 1), 5));
    }

    @Test
    void equalsTheHostClipThenStep() {
        for (float maxNorm : new float[] {0.5f, 100f}) {
            List<Parameter> a = params(be), b = params(be);
            Random g = new Random(9);
            try (Optimizer oa = Optimizer.create(LoraPlusPolicy.defaults(), OptimizerConfig.defaults(), a, List.of());
                 Optimizer ob = Optimizer.create(LoraPlusPolicy.defaults(), OptimizerConfig.defaults(), b, List.of());
                 Tensor stats = be.zeros(DType.F32, 2)) {
                for (int step = 0; step < 3; step++) {
                    double sq = 0;
                    for (int i = 0; i < a.size(); i++) {
                        float[] grad = random(g, (int) a.get(i).value().numel(), 2);
                        setGrad(a.get(i), grad);
                        setGrad(b.get(i), grad);
                        sq += be.dot(a.get(i).grad(), a.get(i).grad());
                    }
                    double coef = DeviceSums.clipCoefficient(Math.sqrt(sq), maxNorm);
                    if (coef < 1) {
                        for (Parameter p : a) {
                            be.scale(p.grad(), (float) coef, p.grad());
                        }
                    }
                    oa.step();
                    List<Tensor> grads = new ArrayList<>();
                    b.forEach(p -> grads.add(p.grad()));
                    be.sumSquaresTo(grads, stats, 0);
                    ob.stepClipped(stats, 0, maxNorm);
                    for (int i = 0; i < a.size(); i++) {
                        String what = "maxNorm " + maxNorm + " step " + step + " " + a.get(i).name();
                        assertBitIdentical(what, values(a.get(i)), values(b.get(i)));
                        assertBitIdentical(what + " grad", values(a.get(i).grad()), values(b.get(i).grad()));
                        assertBitIdentical(what + " m", values(oa.state().get(a.get(i).name()).m()),
                                values(ob.state().get(b.get(i).name()).m()));
                    }
                    oa.zeroGrad();
                    ob.zeroGrad();
                }
                assertEquals(oa.stepCount(), ob.stepCount());
            }
        }
    }
}
