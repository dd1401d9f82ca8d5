package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Initialisation, naming and scaling as VARIANTS.md sections 1, 5, 6 (and section 11 item 2): LoRA's Kaiming /
 * Gaussian / NONE draws and B = 0, DoRA's m = ||W + s B A||_row, AdaLoRA's E = 0 and N(0, 0.02^2) factors and
 * pruned ranks from rank_pattern, parameter names and roles, s = alpha/r, alpha/sqrt(r) and per-layer patterns;
 * and the dropout stream: deterministic per seed and step, different between steps, restorable.
 */
class AdapterInitTest {
    private static final String NAME = "model.layers.1.mlp.up_proj";
    private static final int IN = 256;
    private static final int OUT = 96;
    private Backend be;
    private Tensor w;

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        w = be.upload(VariantCase.uniform(new Random(9), OUT * IN, 0.1), OUT, IN);
    }

    @AfterEach
    void tearDown() {
        w.close();
        be.close();
    }

    private static LoraConfig lora(int r, float alpha, LoraConfig.Init init) {
        return new LoraConfig(r, alpha, 0f, false, init, false, List.of("up_proj"), Map.of(), Map.of());
    }

    private float[] values(AdaptedLinear l, Parameter.Role role) {
        return be.download(l.parameter(role).value());
    }

    /** Mean ~ 0 and standard deviation within 7 % of the expected one; every value within the bound if given. */
    private static void distribution(String what, float[] v, double std, double bound) {
        double sum = 0;
        double sq = 0;
        for (float x : v) {
            if (bound > 0) {
                assertTrue(Math.abs(x) <= bound, what + ": " + x + " outside ±" + bound);
            }
            sum += x;
            sq += (double) x * x;
        }
        double mean = sum / v.length;
        double sd = Math.sqrt(sq / v.length - mean * mean);
        assertTrue(Math.abs(mean) < 5 * std / Math.sqrt(v.length), what + " mean " + mean);
        assertEquals(std, sd, 0.07 * std, what + " standard deviation");
    }

    @Test
    void loraInitsFollowPeft() {
        double bound = 1 / Math.sqrt(IN);
        try (AdaptedLinear k = AdaptedLinear.create(NAME, w, null, false, lora(8, 16, LoraConfig.Init.KAIMING), null, 1);
             AdaptedLinear g = AdaptedLinear.create(NAME, w, null, false, lora(8, 16, LoraConfig.Init.GAUSSIAN), null, 1);
             AdaptedLinear n = AdaptedLinear.create(NAME, w, null, false, lora(8, 16, LoraConfig.Init.NONE), null, 1)) {
            distribution("Kaiming A", values(k, Parameter.Role.LORA_A), bound / Math.sqrt(3), bound);
            assertArrayEquals(new float[OUT * 8], values(k, Parameter.Role.LORA_B), "B = 0");
            distribution("Gaussian A", values(g, Parameter.Role.LORA_A), 1.0 / 8, 0);
            assertArrayEquals(new float[OUT * 8], values(g, Parameter.Role.LORA_B), "B = 0");
            distribution("NONE A", values(n, Parameter.Role.LORA_A), bound / Math.sqrt(3), bound);
            distribution("NONE B", values(n, Parameter.Role.LORA_B), 1 / Math.sqrt(8) / Math.sqrt(3), 1 / Math.sqrt(8));
            assertEquals(2f, k.scaling());
            assertEquals(8, k.rank());
            assertEquals(List.of(NAME + ".lora_A", NAME + ".lora_B"), k.parameters().stream().map(Parameter::name).toList());
            assertEquals(List.of(Parameter.Role.LORA_A, Parameter.Role.LORA_B),
                    k.parameters().stream().map(Parameter::role).toList());
            assertTrue(k.parameters().stream().allMatch(Parameter::trainable));
            assertArrayEquals(new int[] {8, IN}, k.parameter(Parameter.Role.LORA_A).value().shape());
            assertArrayEquals(new int[] {OUT, 8}, k.parameter(Parameter.Role.LORA_B).value().shape());
        }
        try (AdaptedLinear a = AdaptedLinear.create(NAME, w, null, false, lora(8, 16, LoraConfig.Init.KAIMING), null, 1);
             AdaptedLinear b = AdaptedLinear.create(NAME, w, null, false, lora(8, 16, LoraConfig.Init.KAIMING), null, 2)) {
            assertFalse(java.util.Arrays.equals(values(a, Parameter.Role.LORA_A), values(b, Parameter.Role.LORA_A)),
                    "the seed drives the init");
        }
    }

    @Test
    void scalingFollowsRsLoraAndPerLayerPatterns() {
        LoraConfig rs = lora(16, 8, LoraConfig.Init.KAIMING).withRslora(true);
        LoraConfig pat = new LoraConfig(8, 8, 0f, false, LoraConfig.Init.KAIMING, false, List.of("up_proj"),
                Map.of("layers\\.1\\.mlp\\.up_proj", 4), Map.of("up_proj", 32f));
        try (AdaptedLinear a = AdaptedLinear.create(NAME, w, null, false, rs, null, 1);
             AdaptedLinear b = AdaptedLinear.create(NAME, w, null, false, pat, null, 1)) {
            assertEquals(8f / 4f, a.scaling(), 1e-7f, "rsLoRA: alpha / sqrt(r)");
            assertEquals(4, b.rank(), "rank_pattern");
            assertArrayEquals(new int[] {4, IN}, b.parameter(Parameter.Role.LORA_A).value().shape());
            assertEquals(32f / 4f, b.scaling(), "alpha_pattern / rank_pattern");
        }
    }

    @Test
    void doraMagnitudeIsTheRowNormOfTheAdaptedWeight() {
        for (boolean fifo : new boolean[] {false, true}) {
            try (Tensor wf = be.zeros(DType.F32, IN, OUT)) {
                be.transpose(w, wf);
                Tensor weight = fifo ? wf : w;
                for (LoraConfig.Init init : LoraConfig.Init.values()) {
                    LoraConfig c = lora(4, 8, init).withDora(true);
                    try (AdaptedLinear l = AdaptedLinear.create(NAME, weight, null, fifo, c, null, 3)) {
                        float[] wv = be.download(w);                            // torch layout [out,in]
                        float[] av = values(l, Parameter.Role.LORA_A);
                        float[] bv = values(l, Parameter.Role.LORA_B);
                        double[] norm = new double[OUT];
                        for (int o = 0; o < OUT; o++) {
                            double acc = 0;
                            for (int i = 0; i < IN; i++) {
                                double ba = 0;
                                for (int k = 0; k < 4; k++) {
                                    ba += bv[o * 4 + k] * av[k * IN + i];
                                }
                                double v = wv[o * IN + i] + 2.0 * ba;              // s = 8/4
                                acc += v * v;
                            }
                            norm[o] = Math.sqrt(acc);
                        }
                        Parameter m = l.parameter(Parameter.Role.MAGNITUDE);
                        assertEquals(NAME + ".lora_magnitude_vector", m.name());
                        assertTrue(m.trainable());
                        Tolerance.Result r = Tolerance.F32.compare("m, " + init + (fifo ? " fifo" : ""),
                                be.download(m.value()), norm);
                        assertTrue(r.ok(), r.describe());
                    }
                }
            }
        }
    }

    @Test
    void adaloraInitAndPrunedRank() {
        AdaLoraConfig c = new AdaLoraConfig(12, 8, 0, 0, 1, 0.85f, 0.85f, 0.5f, 100, 24f, 0f, List.of("up_proj"), null);
        try (AdaptedLinear l = AdaptedLinear.create(NAME, w, null, false, c, null, 4)) {
            assertEquals(List.of(NAME + ".lora_A", NAME + ".lora_B", NAME + ".lora_E"),
                    l.parameters().stream().map(Parameter::name).toList());
            assertArrayEquals(new float[12], values(l, Parameter.Role.LORA_E), "E = 0");
            assertArrayEquals(new int[] {12, 1}, l.parameter(Parameter.Role.LORA_E).value().shape());
            distribution("AdaLoRA A", values(l, Parameter.Role.LORA_A), 0.02, 0);
            distribution("AdaLoRA B", values(l, Parameter.Role.LORA_B), 0.02, 0);
            assertEquals((float) (24 / (12 + 1e-5)), l.scaling());
        }
        boolean[] kept = new boolean[12];
        kept[0] = kept[5] = kept[11] = true;
        AdaLoraConfig pruned = new AdaLoraConfig(12, 8, 0, 0, 1, 0.85f, 0.85f, 0.5f, 100, 24f, 0f,
                List.of("up_proj"), Map.of(NAME + ".lora_E", kept));
        try (AdaptedLinear l = AdaptedLinear.create(NAME, w, null, false, pruned, null, 4)) {
            assertEquals(3, l.rank(), "rank = kept triplets of rank_pattern");
            assertArrayEquals(new int[] {OUT, 3}, l.parameter(Parameter.Role.LORA_B).value().shape());
            assertEquals((float) (24 / (12 + 1e-5)), l.scaling(), "scaling keeps init_r (PEFT's ranknum)");
        }
    }

    @Test
    void dropoutMasksAreDeterministicPerSeedAndStep() {
        LoraConfig c = lora(4, 8, LoraConfig.Init.NONE).withDropout(0.5f);
        try (AdaptedLinear a = AdaptedLinear.create(NAME, w, null, false, c, null, 77);
             AdaptedLinear b = AdaptedLinear.create(NAME, w, null, false, c, null, 77);
             Tensor x = be.upload(VariantCase.uniform(new Random(4), 3 * IN, 1), 3, IN)) {
            a.setTraining(true);
            b.setTraining(true);
            float[] a0 = out(a, x);
            float[] a1 = out(a, x);
            assertEquals(2, a.dropoutStep());
            assertFalse(java.util.Arrays.equals(a0, a1), "each step draws a new mask");
            assertNotEquals(a.dropoutSeed(0), a.dropoutSeed(1));
            assertArrayEquals(a0, out(b, x), "same seed and step -> same mask");
            a.setDropoutStep(0);
            assertArrayEquals(a0, out(a, x), "a restored counter reproduces the mask");
            a.setTraining(false);
            float[] eval1 = out(a, x);
            assertArrayEquals(eval1, out(a, x), "no dropout in eval mode");
            assertEquals(1, a.dropoutStep(), "eval forwards draw no mask");
        }
    }

    private float[] out(AdaptedLinear l, Tensor x) {
        try (Tensor y = Fresh.forward(l, x)) {
            return be.download(y);
        }
    }
}
