package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.llama.TinyLlama;
import org.junit.jupiter.api.Test;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the loss on instruction targets ({@code trainStep/evalLoss(inputs, targets)} with
 * {@link CrossEntropy#IGNORE}): the loss is the mean over the unmasked targets of -log softmax(logits), computed here
 * from the model's logits with a direct log-softmax (GPT-2 and Llama); a fully masked row adds nothing to the
 * gradient; every gradient of the masked loss equals central differences of an independent double forward; with no
 * ignored target the new form is bit for bit the windows form; and malformed targets are refused.
 */
class MaskedLossTest {

    private static final Gpt2Config CFG = new Gpt2Config(11, 8, 8, 2, 2, 1e-5f);
    private static final int T = 5;

    /** Two rows, row 0 with a prompt part (first 2 targets ignored), row 1 with only its last target counted. */
    private static int[][] targets(Random rnd, int v) {
        int[][] y = new int[2][T];
        for (int[] row : y) {
            for (int j = 0; j < T; j++) {
                row[j] = rnd.nextInt(v);
            }
        }
        y[0][0] = CrossEntropy.IGNORE;
        y[0][1] = CrossEntropy.IGNORE;
        for (int j = 0; j < T - 1; j++) {
            y[1][j] = CrossEntropy.IGNORE;
        }
        return y;
    }

    private static int[][] inputs(Random rnd, int b, int v) {
        int[][] x = new int[b][T];
        for (int[] row : x) {
            for (int j = 0; j < T; j++) {
                row[j] = rnd.nextInt(v);
            }
        }
        return x;
    }

    /** Mean over the unmasked targets of logsumexp(logits) - logit[target], from model.logits row by row. */
    private static double handLoss(DecoderModel m, int[][] x, int[][] y) {
        int v = m.vocabSize();
        double sum = 0;
        int counted = 0;
        for (int b = 0; b < x.length; b++) {
            float[] lg = m.logits(x[b]);                       // [T,V]
            for (int t = 0; t < T; t++) {
                if (y[b][t] == CrossEntropy.IGNORE) {
                    continue;
                }
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < v; j++) {
                    max = Math.max(max, lg[t * v + j]);
                }
                double se = 0;
                for (int j = 0; j < v; j++) {
                    se += Math.exp(lg[t * v + j] - max);
                }
                sum += max + Math.log(se) - lg[t * v + y[b][t]];
                counted++;
            }
        }
        assertEquals(3 + 1, counted, "the test's mask");
        return sum / counted;
    }

    @Test
    void maskedLossIsTheMeanOverUnmaskedTargets() {
        try (Backend be = new CpuBackend()) {
            List<DecoderModel> models = List.of(DecoderModel.random(CFG, be, 3),
                    TinyLlama.random(be, LlamaFamily.LLAMA, 4));
            for (DecoderModel m : models) {
                try (m) {
                    Random rnd = new Random(5);
                    int[][] x = inputs(rnd, 2, m.vocabSize());
                    int[][] y = targets(rnd, m.vocabSize());
                    double want = handLoss(m, x, y);
                    assertEquals(want, m.evalLoss(x, y), 1e-5, m + ": evalLoss");
                    m.setTraining(true);
                    assertEquals(want, m.trainStep(x, y, 1f), 1e-5, m + ": trainStep loss");
                    // the unmasked mean (over all 10 targets) differs: the check above can fail
                    int[][] all = new int[2][];
                    for (int b = 0; b < 2; b++) {
                        all[b] = y[b].clone();
                        for (int t = 0; t < T; t++) {
                            all[b][t] = all[b][t] == CrossEntropy.IGNORE ? 1 : all[b][t];
                        }
                    }
                    assertTrue(Math.abs(m.evalLoss(x, all) - want) > 1e-4, "masking changes the loss");
                }
            }
        }
    }

    @Test
    void fullyMaskedRowAddsNoGradient() {
        try (Backend be = new CpuBackend(); DecoderModel m = DecoderModel.random(CFG, be, 7)) {
            Random rnd = new Random(8);
            Gpt2GradientCheckTest.randomize(be, m, rnd);
            m.setFullFineTune(true);
            int[][] x = inputs(rnd, 2, CFG.vocabSize());
            int[][] y = targets(rnd, CFG.vocabSize());
            Arrays.fill(y[1], CrossEntropy.IGNORE);               // row 1 fully masked
            double both = m.trainStep(x, y, 1f);
            Map<String, float[]> withMasked = grads(be, m);
            m.parameters().forEach(Parameter::zeroGrad);
            double alone = m.trainStep(new int[][] {x[0]}, new int[][] {y[0]}, 1f);
            Map<String, float[]> rowZero = grads(be, m);
            assertEquals(alone, both, 1e-6, "a fully masked row adds no loss");
            for (String name : rowZero.keySet()) {
                Tolerance.Result r = new Tolerance(1e-7, 1e-5).compare("d" + name, withMasked.get(name),
                        toDouble(rowZero.get(name)));
                assertTrue(r.ok(), "a fully masked row changes the gradient: " + r.describe());
            }
        }
    }

    @Test
    void maskedGradientsMatchFiniteDifferences() {
        try (Backend be = new CpuBackend(); DecoderModel m = DecoderModel.random(CFG, be, 9)) {
            Random rnd = new Random(10);
            DoubleGpt2 ref = Gpt2GradientCheckTest.randomize(be, m, rnd);
            m.setFullFineTune(true);
            int[][] x = inputs(rnd, 2, CFG.vocabSize());
            int[][] y = targets(rnd, CFG.vocabSize());
            assertEquals(ref.maskedLoss(x, y), m.trainStep(x, y, 1f), 1e-5, "masked loss vs the double forward");
            int checked = 0;
            for (Parameter p : m.parameters()) {
                assertNotNull(p.grad(), p.name());
                float[] got = be.download(p.grad());
                double[] fd = new double[got.length];
                double max = 0;
                for (int i = 0; i < fd.length; i++) {
                    fd[i] = ref.maskedFiniteDifference(x, y, p.name(), i, 1e-5);
                    max = Math.max(max, Math.abs(fd[i]));
                }
                assertTrue(max > 1e-6, p.name() + ": the reference gradient is ~0, the check would be vacuous");
                Tolerance.Result r = new Tolerance(1e-4 * max + 1e-7, 1e-3).compare("d" + p.name(), got, fd);
                assertTrue(r.ok(), r.describe());
                checked++;
            }
            assertEquals(m.baseParameters().size(), checked);
        }
    }

    @Test
    void withoutIgnoredTargetsTheTwoFormsAreBitIdentical() {
        try (Backend be = new CpuBackend(); DecoderModel m = DecoderModel.random(CFG, be, 11)) {
            m.setFullFineTune(true);
            Random rnd = new Random(12);
            int[][] w = inputs(rnd, 3, CFG.vocabSize());
            int[][] windows = new int[3][];
            int[][] x = new int[3][];
            int[][] y = new int[3][];
            for (int b = 0; b < 3; b++) {
                windows[b] = Arrays.copyOf(w[b], T + 1);
                windows[b][T] = rnd.nextInt(CFG.vocabSize());
                x[b] = Arrays.copyOfRange(windows[b], 0, T);
                y[b] = Arrays.copyOfRange(windows[b], 1, T + 1);
            }
            double a = m.trainStep(windows, 0.5f);
            Map<String, float[]> ga = grads(be, m);
            m.parameters().forEach(Parameter::zeroGrad);
            double b = m.trainStep(x, y, 0.5f);
            assertEquals(a, b, 0.0, "loss");
            Map<String, float[]> gb = grads(be, m);
            for (String name : ga.keySet()) {
                assertTrue(Arrays.equals(ga.get(name), gb.get(name)), name);
            }
            assertEquals(m.evalLoss(windows), m.evalLoss(x, y), 0.0, "evalLoss");
        }
    }

    @Test
    void malformedTargetsAreRefused() {
        try (Backend be = new CpuBackend(); DecoderModel m = DecoderModel.random(CFG, be, 13)) {
            Random rnd = new Random(14);
            int[][] x = inputs(rnd, 2, CFG.vocabSize());
            int[][] masked = {fill(CrossEntropy.IGNORE), fill(CrossEntropy.IGNORE)};
            var e = assertThrows(IllegalArgumentException.class, () -> m.evalLoss(x, masked));
            assertTrue(e.getMessage().contains("ignored"), e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> m.trainStep(x, masked, 1f));
            int[][] bad = {fill(1), fill(1)};
            bad[1][2] = CFG.vocabSize();
            e = assertThrows(IllegalArgumentException.class, () -> m.evalLoss(x, bad));
            assertTrue(e.getMessage().contains("row 1 position 2"), e.getMessage());
            int[][] neg = {fill(1), fill(-1)};
            assertThrows(IllegalArgumentException.class, () -> m.evalLoss(x, neg));
            assertThrows(IllegalArgumentException.class, () -> m.evalLoss(x, new int[][] {fill(1)}));
            assertThrows(IllegalArgumentException.class, () -> m.evalLoss(x, new int[][] {fill(1), new int[T - 1]}));
            int[][] badIn = {fill(CrossEntropy.IGNORE), fill(1)};
            assertThrows(IllegalArgumentException.class, () -> m.evalLoss(badIn, new int[][] {fill(1), fill(1)}),
                    "IGNORE is allowed only in targets");
        }
    }

    private static int[] fill(int v) {
        int[] r = new int[T];
        Arrays.fill(r, v);
        return r;
    }

    private static Map<String, float[]> grads(Backend be, DecoderModel m) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Parameter p : m.parameters()) {
            if (p.grad() != null) {
                out.put(p.name(), be.download(p.grad()));
            }
        }
        assertTrue(!out.isEmpty());
        return out;
    }

    private static double[] toDouble(float[] v) {
        return Gpt2GradientCheckTest.toDouble(v);
    }
}
