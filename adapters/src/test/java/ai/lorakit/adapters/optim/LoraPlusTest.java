package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.Parameter.Role;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.function.Executable;

import java.util.List;
import java.util.Random;

import static ai.lorakit.adapters.optim.Fixture.assertClose;
import static ai.lorakit.adapters.optim.Fixture.param;
import static ai.lorakit.adapters.optim.Fixture.random;
import static ai.lorakit.adapters.optim.Fixture.setGrad;
import static ai.lorakit.adapters.optim.Fixture.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * LoRA+ builds PEFT's four groups (groupA, embedding, groupB, groupB_no_decay) with learning rates
 * [lr, lrEmbedding, lr·ratio, lr·ratio], sorts A, B, 1-D vectors, biases/norms and embeddings into them, moves B
 * ratio times as far as A in the first step, keeps the ratios under setLearningRate, and validates its config.
 */
class LoraPlusTest {
    private final CpuBackend be = new CpuBackend();
    private final Random rnd = new Random(21);

    @AfterEach
    void tearDown() {
        be.close();
    }

    private Parameter p(String name, Role role, boolean trainable, int... shape) {
        int n = 1;
        for (int d : shape) {
            n *= d;
        }
        return param(be, name, role, trainable, random(rnd, n, 1), shape);
    }

    /**
     * PEFT's embedding group is for a LoRA Embedding layer's adapter tensors only: GPT-2's full wte / wpe tables,
     * trained as they are (role EMBEDDING), follow the generic rules (2-D -> groupA at lr), not lr_embedding.
     */
    @Test
    void fullEmbeddingTablesAreNotInTheEmbeddingGroup() {
        Parameter wte = p("transformer.wte.weight", Role.EMBEDDING, true, 10, 4);
        Parameter wpe = p("transformer.wpe.weight", Role.EMBEDDING, true, 8, 4);
        Parameter embA = p("transformer.wte.lora_embedding_A", Role.OTHER, true, 2, 10);
        Parameter b = p("transformer.h.0.attn.c_attn.lora_B", Role.LORA_B, true, 6, 2);
        try (Optimizer opt = Optimizer.create(LoraPlusPolicy.defaults(), OptimizerConfig.defaults(),
                List.of(wte, wpe, embA, b), List.of())) {
            List<ParamGroup> g = opt.groups();
            assertEquals(List.of(wte, wpe), g.get(0).params(), "full tables: groupA");
            assertEquals(List.of(embA), g.get(1).params(), "LoRA embedding adapter tensors: embedding group");
            assertEquals(List.of(b), g.get(2).params());
        }
        assertTrue(Grouping.isLoraEmbedding(embA));
        assertFalse(Grouping.isLoraEmbedding(wte));
        assertFalse(Grouping.isLoraEmbedding(p("x.lora_embedding_Ax", Role.OTHER, true, 2)));
    }

    @Test
    void fourGroupsInPeftOrderWithTheirMembers() {
        Parameter a = p("h.0.attn.c_attn.lora_A", Role.LORA_A, true, 2, 4);
        Parameter b = p("h.0.attn.c_attn.lora_B", Role.LORA_B, true, 6, 2);
        Parameter mag = p("h.0.attn.c_attn.lora_magnitude_vector", Role.MAGNITUDE, true, 6);
        Parameter lb = p("h.0.mlp.c_fc.vera_lambda_b", Role.VERA_LAMBDA_B, true, 6);
        Parameter ld = p("h.0.mlp.c_fc.vera_lambda_d", Role.VERA_LAMBDA_D, true, 2);
        Parameter e = p("h.0.mlp.c_proj.lora_E", Role.LORA_E, true, 2, 1);
        Parameter bias = p("h.0.attn.c_attn.bias", Role.BIAS, true, 6);
        Parameter loraBias = p("h.0.attn.c_proj.lora_B.bias", Role.LORA_B, true, 6);
        Parameter ln = p("h.0.ln_1.weight", Role.WEIGHT, true, 4);
        Parameter embA = p("wte.lora_embedding_A", Role.EMBEDDING, true, 2, 10);
        Parameter embB = p("wte.lora_embedding_B", Role.EMBEDDING, true, 4, 2);
        Parameter frozen = p("h.0.attn.c_attn.base_layer.weight", Role.WEIGHT, false, 4, 6);
        Parameter head = p("score.weight", Role.WEIGHT, true, 3, 4);
        List<Parameter> all = List.of(a, b, mag, lb, ld, e, bias, loraBias, ln, embA, embB, frozen, head);
        float lr = 2e-4f;
        OptimizerConfig cfg = OptimizerConfig.defaults().withLr(lr);
        LoraPlusPolicy policy = new LoraPlusPolicy(8f, 5e-6f);
        try (Optimizer opt = Optimizer.create(policy, cfg, all, List.of())) {
            List<ParamGroup> g = opt.groups();
            assertEquals(List.of("groupA", "embedding", "groupB", "groupB_no_decay"),
                    g.stream().map(ParamGroup::name).toList());
            assertEquals(List.of(lr, 5e-6f, lr * 8f, lr * 8f), g.stream().map(ParamGroup::lr).toList());
            assertEquals(List.of(0.01f, 0.01f, 0.01f, 0f), g.stream().map(ParamGroup::weightDecay).toList());
            assertEquals(List.of(a, e, head), g.get(0).params(), "A, AdaLoRA's [r,1] Λ and 2-D others");
            assertEquals(List.of(embA, embB), g.get(1).params());
            assertEquals(List.of(b, mag, lb, ld), g.get(2).params(), "B and 1-D vectors (DoRA m, VeRA λ)");
            assertEquals(List.of(bias, loraBias, ln), g.get(3).params(), "biases and LayerNorm weights");

            opt.setLearningRate(lr / 4);
            assertEquals(List.of(lr / 4, 5e-6f / 4, lr * 2f, lr * 2f), opt.groups().stream().map(ParamGroup::lr)
                    .toList(), "setLearningRate keeps every group's ratio to the base lr");
        }
    }

    @Test
    void firstStepMovesBRatioTimesFurtherThanA() {
        float lr = 1e-3f;
        float ratio = 16f;
        OptimizerConfig cfg = OptimizerConfig.defaults().withLr(lr).withWeightDecay(0f);
        Parameter a = p("m.lora_A", Role.LORA_A, true, 3, 5);
        Parameter b = p("m.lora_B", Role.LORA_B, true, 4, 3);
        float[] a0 = values(a);
        float[] b0 = values(b);
        float[] ga = random(rnd, 15, 1);
        float[] gb = random(rnd, 12, 1);
        // keep every |g| >> eps
        for (int i = 0; i < ga.length; i++) {
            ga[i] = Math.copySign(Math.max(0.05f, Math.abs(ga[i])), ga[i]);
        }
        for (int i = 0; i < gb.length; i++) {
            gb[i] = Math.copySign(Math.max(0.05f, Math.abs(gb[i])), gb[i]);
        }
        try (Optimizer opt = Optimizer.create(LoraPlusPolicy.ofRatio(ratio), cfg, List.of(a, b), List.of())) {
            setGrad(a, ga);
            setGrad(b, gb);
            opt.step();
            // first Adam step: Δp = −lr·g/(|g| + eps) ≈ −lr·sign(g)
            double[] da = new double[15];
            double[] wantA = new double[15];
            for (int i = 0; i < 15; i++) {
                da[i] = (double) values(a)[i] - a0[i];
                wantA[i] = -lr * Math.signum(ga[i]);
            }
            double[] db = new double[12];
            double[] wantB = new double[12];
            for (int i = 0; i < 12; i++) {
                db[i] = (double) values(b)[i] - b0[i];
                wantB[i] = -lr * ratio * Math.signum(gb[i]);
            }
            // ≈: the step is lr·g/(|g| + eps), and Δ is read back from fp32 values near 1 (spacing 6e-8)
            Tolerance step = new Tolerance(1e-7, 1e-3);
            Tolerance.Result ra = step.compare("ΔA", toFloat(da), wantA);
            Tolerance.Result rb = step.compare("ΔB", toFloat(db), wantB);
            assertTrue(ra.ok(), ra.describe());
            assertTrue(rb.ok(), rb.describe());
            double meanA = 0;
            double meanB = 0;
            for (double x : da) {
                meanA += Math.abs(x) / da.length;
            }
            for (double x : db) {
                meanB += Math.abs(x) / db.length;
            }
            assertEquals(ratio, meanB / meanA, ratio * 1e-3, "mean |ΔB| / mean |ΔA|");
        }
    }

    @Test
    void groupsUseTheirOwnLearningRateAndDecayInTheUpdate() {
        OptimizerConfig cfg = new OptimizerConfig(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f);
        Parameter bias = p("m.bias", Role.BIAS, true, 4);
        Parameter b = p("m.lora_B", Role.LORA_B, true, 4, 2);
        Fixture.RefAdamW refBias = new Fixture.RefAdamW(values(bias));
        Fixture.RefAdamW refB = new Fixture.RefAdamW(values(b));
        try (Optimizer opt = Optimizer.create(new LoraPlusPolicy(4f, 1e-6f), cfg, List.of(bias, b), List.of())) {
            for (int t = 0; t < 2; t++) {
                float[] g1 = random(rnd, 4, 1);
                float[] g2 = random(rnd, 8, 1);
                setGrad(bias, g1);
                setGrad(b, g2);
                opt.step();
                refBias.step(g1, 4 * 1e-2f, cfg, 0);       // no-decay ratio group
                refB.step(g2, 4 * 1e-2f, cfg, 0.1f);       // ratio group with decay
            }
            assertClose("bias", values(bias), refBias.p);
            assertClose("B", values(b), refB.p);
        }
    }

    @Test
    void decayParameterRuleFollowsHfTrainer() {
        assertTrue(Grouping.isDecayParameter(p("h.0.attn.c_attn.lora_B", Role.LORA_B, true, 2, 2)));
        assertTrue(Grouping.isDecayParameter(p("h.0.attn.c_attn.lora_magnitude_vector", Role.MAGNITUDE, true, 2)));
        assertTrue(Grouping.isDecayParameter(p("h.0.kiln_x.weight", Role.WEIGHT, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("h.0.attn.c_attn.bias", Role.BIAS, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("anything", Role.BIAS, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("m.lora_B.bias", Role.LORA_B, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("transformer.ln_f.weight", Role.WEIGHT, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("model.layers.0.input_layernorm.weight", Role.WEIGHT, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("model.norm.weight", Role.WEIGHT, true, 2)));
        assertFalse(Grouping.isDecayParameter(p("encoder.LayerNorm.weight", Role.WEIGHT, true, 2)));
    }

    @Test
    void configValidationNamesTheField() {
        assertNames("loraplus_lr_ratio", "0.0", () -> new LoraPlusPolicy(0f, 1e-6f));
        assertNames("loraplus_lr_ratio", "NaN", () -> new LoraPlusPolicy(Float.NaN, 1e-6f));
        assertNames("loraplus_lr_ratio", "Infinity", () -> new LoraPlusPolicy(Float.POSITIVE_INFINITY, 1e-6f));
        assertNames("loraplus_lr_embedding", "-1.0", () -> new LoraPlusPolicy(16f, -1f));
        assertNames("lr", "0.0", () -> new OptimizerConfig(0f, 0.9f, 0.999f, 1e-8f, 0f));
        assertNames("beta1", "1.0", () -> new OptimizerConfig(1e-3f, 1f, 0.999f, 1e-8f, 0f));
        assertNames("beta2", "-0.5", () -> new OptimizerConfig(1e-3f, 0.9f, -0.5f, 1e-8f, 0f));
        assertNames("eps", "0.0", () -> new OptimizerConfig(1e-3f, 0.9f, 0.999f, 0f, 0f));
        assertNames("weight_decay", "-0.01", () -> new OptimizerConfig(1e-3f, 0.9f, 0.999f, 1e-8f, -0.01f));
        assertEquals(new LoraPlusPolicy(16f, 1e-6f), LoraPlusPolicy.defaults());
    }

    private static void assertNames(String field, String value, Executable ctor) {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, ctor);
        assertTrue(e.getMessage().startsWith(field + " ") && e.getMessage().contains(value), e.getMessage());
    }

    private static float[] toFloat(double[] x) {
        float[] f = new float[x.length];
        for (int i = 0; i < x.length; i++) {
            f[i] = (float) x[i];
        }
        return f;
    }
}
