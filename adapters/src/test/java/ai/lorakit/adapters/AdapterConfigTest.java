package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The configs are validated records (issue 2, STYLE.md 12.7; VARIANTS.md section 11 item 14): every bad value of
 * LoraConfig, VeraConfig and AdaLoraConfig (non-positive ranks, NaN/infinite/negative alphas, dropout outside
 * [0,1), a schedule without a budgeting phase, bad rank/alpha patterns, null or empty target names) throws an
 * IllegalArgumentException whose message names the field and the value; AdaLoRA's rank_pattern is copied, so
 * the record cannot be changed through the caller's arrays; Parameter refuses null parts.
 */
class AdapterConfigTest {

    private static final List<String> T = List.of("q_proj");

    private static LoraConfig lora(int r, float alpha, float dropout) {
        return new LoraConfig(r, alpha, dropout, false, LoraConfig.Init.KAIMING, false, T, Map.of(), Map.of());
    }

    private static AdaLoraConfig ada(int initR, int targetR, int tinit, int tfinal, int deltaT, float beta1,
                                     float orth, int totalStep) {
        return new AdaLoraConfig(initR, targetR, tinit, tfinal, deltaT, beta1, 0.85f, orth, totalStep, 8f, 0f, T, null);
    }

    /** The call throws IllegalArgumentException whose message contains the field and the value. */
    private static void refused(String field, String value, Executable call) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, call, field + " = " + value);
        assertTrue(e.getMessage().contains(field) && e.getMessage().contains(value),
                "message must name " + field + " and " + value + ": " + e.getMessage());
    }

    @Test
    void loraConfigRefusesBadValues() {
        refused("r", "0", () -> lora(0, 8f, 0f));
        refused("lora_alpha", "NaN", () -> lora(8, Float.NaN, 0f));
        refused("lora_alpha", "Infinity", () -> lora(8, Float.POSITIVE_INFINITY, 0f));
        refused("lora_alpha", "-1.0", () -> lora(8, -1f, 0f));
        refused("lora_dropout", "1.0", () -> lora(8, 8f, 1f));
        refused("lora_dropout", "NaN", () -> lora(8, 8f, Float.NaN));
        refused("init_lora_weights", "null", () -> new LoraConfig(8, 8f, 0f, false, null, false, T, Map.of(), Map.of()));
        refused("target_modules", "[]", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING, false,
                List.of(), Map.of(), Map.of()));
        List<String> withEmpty = List.of("q_proj", "");
        refused("target_modules", "[q_proj, ]", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING,
                false, withEmpty, Map.of(), Map.of()));
        List<String> withNull = new ArrayList<>(Arrays.asList("q_proj", null));
        refused("target_modules", "[q_proj, null]", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING,
                false, withNull, Map.of(), Map.of()));
        refused("rank_pattern[v_proj]", "0", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING, false,
                T, Map.of("v_proj", 0), Map.of()));
        refused("alpha_pattern[v_proj]", "NaN", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING,
                false, T, Map.of(), Map.of("v_proj", Float.NaN)));
        // a key that is not a regular expression is refused here, not at the first rankFor()
        refused("rank_pattern key", "layers.(0", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING,
                false, T, Map.of("layers.(0", 4), Map.of()));
        refused("alpha_pattern key", "q[", () -> new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING, false,
                T, Map.of(), Map.of("q[", 4f)));
        // valid patterns keep PEFT's first-match order
        Map<String, Integer> rp = new java.util.LinkedHashMap<>();
        rp.put("layers\\.0\\..*", 2);
        rp.put("q_proj", 4);
        LoraConfig c = new LoraConfig(8, 8f, 0f, false, LoraConfig.Init.KAIMING, false, T, rp, Map.of());
        assertEquals(2, c.rankFor("model.layers.0.self_attn.q_proj"));
        assertEquals(4, c.rankFor("model.layers.1.self_attn.q_proj"));
        assertEquals(8, c.rankFor("model.layers.1.self_attn.v_proj"));
    }

    @Test
    void veraConfigRefusesBadValues() {
        refused("r", "-2", () -> new VeraConfig(-2, 0L, true, 0.1f, 0f, T));
        refused("d_initial", "NaN", () -> new VeraConfig(4, 0L, true, Float.NaN, 0f, T));
        refused("vera_dropout", "-0.1", () -> new VeraConfig(4, 0L, true, 0.1f, -0.1f, T));
        refused("target_modules", "null", () -> new VeraConfig(4, 0L, true, 0.1f, 0f, null));
    }

    @Test
    void adaLoraConfigRefusesBadValues() {
        refused("init_r", "0", () -> ada(0, 1, 0, 0, 1, 0.85f, 0.5f, 10));
        refused("target_r", "13", () -> ada(12, 13, 0, 0, 1, 0.85f, 0.5f, 10));
        refused("total_step", "0", () -> ada(12, 8, 0, 0, 1, 0.85f, 0.5f, 0));
        refused("tinit", "-1", () -> ada(12, 8, -1, 0, 1, 0.85f, 0.5f, 10));
        refused("tfinal", "-1", () -> ada(12, 8, 0, -1, 1, 0.85f, 0.5f, 10));
        // PEFT: tinit < total_step - tfinal, else there is no budgeting phase
        refused("tinit", "6", () -> ada(12, 8, 6, 4, 1, 0.85f, 0.5f, 10));
        refused("deltaT", "0", () -> ada(12, 8, 0, 0, 0, 0.85f, 0.5f, 10));
        refused("beta1", "1.0", () -> ada(12, 8, 0, 0, 1, 1f, 0.5f, 10));
        refused("orth_reg_weight", "-0.5", () -> ada(12, 8, 0, 0, 1, 0.85f, -0.5f, 10));
        refused("orth_reg_weight", "Infinity", () -> ada(12, 8, 0, 0, 1, 0.85f, Float.POSITIVE_INFINITY, 10));
        refused("rank_pattern[h.0.q.lora_E]", "[true, false]", () -> new AdaLoraConfig(4, 2, 0, 0, 1, 0.85f, 0.85f,
                0.5f, 10, 8f, 0f, T, Map.of("h.0.q.lora_E", new boolean[] {true, false})));
        Map<String, boolean[]> nullMask = new HashMap<>();
        nullMask.put("h.0.q.lora_E", null);
        refused("rank_pattern[h.0.q.lora_E]", "null", () -> new AdaLoraConfig(4, 2, 0, 0, 1, 0.85f, 0.85f, 0.5f, 10,
                8f, 0f, T, nullMask));
    }

    @Test
    void adaLoraRankPatternIsCopied() {
        boolean[] mask = {true, false, true, true};
        AdaLoraConfig c = new AdaLoraConfig(4, 2, 0, 0, 1, 0.85f, 0.85f, 0.5f, 10, 8f, 0f, T,
                Map.of("h.0.q.lora_E", mask));
        mask[0] = false;
        assertArrayEquals(new boolean[] {true, false, true, true}, c.rankPattern().get("h.0.q.lora_E"),
                "changing the caller's array must not change the config");
        assertThrows(UnsupportedOperationException.class, () -> c.rankPattern().put("x", new boolean[4]));
        assertEquals((float) (8 / (4 + 1e-5)), c.scaling(), "alpha / (init_r + 1e-5), PEFT's ranknum");
    }

    @Test
    void parameterRefusesNullParts() {
        try (Backend be = new CpuBackend(); Tensor t = be.zeros(DType.F32, 2)) {
            assertThrows(IllegalArgumentException.class, () -> new Parameter(null, Parameter.Role.OTHER, t, true));
            assertThrows(IllegalArgumentException.class, () -> new Parameter("", Parameter.Role.OTHER, t, true));
            assertThrows(IllegalArgumentException.class, () -> new Parameter("p", null, t, true));
            assertThrows(IllegalArgumentException.class, () -> new Parameter("p", Parameter.Role.OTHER, null, true));
            Tensor closed = be.zeros(DType.F32, 2);
            closed.close();
            Parameter p = new Parameter("p", Parameter.Role.OTHER, closed, true);
            assertThrows(ai.lorakit.gpu.GpuException.class, p::gradForAccumulation, "no gradient for a closed value");
        }
    }
}
