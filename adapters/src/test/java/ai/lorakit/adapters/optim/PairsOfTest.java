package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static ai.lorakit.adapters.optim.Fixture.assertBitIdentical;
import static ai.lorakit.adapters.optim.Fixture.random;
import static ai.lorakit.adapters.optim.Fixture.values;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * {@link Optimizer#pairsOf} pairs each real {@link AdaptedLinear}'s A and B with the layer's own s (rsLoRA and a
 * rank pattern give different s per layer), LoRA-FA then trains such layers end to end (forward, backward, step:
 * A bit-identical, B moved), and a layer without A/B (VeRA) or with another ΔW (AdaLoRA) is refused by name.
 */
class PairsOfTest {
    private final CpuBackend be = new CpuBackend();

    @AfterEach
    void tearDown() {
        be.close();
    }

    @Test
    void pairsCarryEachLayersScalingAndTrainEndToEnd() {
        Random rnd = new Random(61);
        LoraConfig cfg = new LoraConfig(4, 16f, 0f, true, LoraConfig.Init.NONE, false,
                List.of("c_attn", "c_proj"), Map.of("c_proj", 2), Map.of());
        try (Tensor w1 = be.upload(random(rnd, 8 * 6, 0.3), 8, 6);
             Tensor w2 = be.upload(random(rnd, 5 * 8, 0.3), 5, 8);
             AdaptedLinear l1 = AdaptedLinear.create("h.0.attn.c_attn", w1, null, false, cfg, null, 1);
             AdaptedLinear l2 = AdaptedLinear.create("h.0.attn.c_proj", w2, null, false, cfg, null, 2)) {
            List<LoraPair> pairs = Optimizer.pairsOf(List.of(l1, l2));
            assertEquals(2, pairs.size());
            assertSame(l1.parameter(Parameter.Role.LORA_A), pairs.get(0).a());
            assertSame(l1.parameter(Parameter.Role.LORA_B), pairs.get(0).b());
            assertEquals(16f / 2f, pairs.get(0).scaling(), 1e-6f, "rsLoRA: 16/√4");
            assertEquals((float) (16 / Math.sqrt(2)), pairs.get(1).scaling(), 1e-5f, "rank pattern r=2: 16/√2");
            assertEquals("h.0.attn.c_proj", pairs.get(1).module());

            List<Parameter> params = new java.util.ArrayList<>(l1.parameters());
            params.addAll(l2.parameters());
            float[] a1 = values(pairs.get(0).a());
            float[] b1 = values(pairs.get(0).b());
            try (Optimizer opt = Optimizer.create(new LoraFaPolicy(), OptimizerConfig.defaults(), params, pairs)) {
                l1.setTraining(true);
                l2.setTraining(true);
                for (int t = 0; t < 2; t++) {
                    try (Tensor x = be.upload(random(rnd, 3 * 6, 1), 3, 6);
                         Tensor h = Fresh.forward(l1, x);
                         Tensor y = Fresh.forward(l2, h);
                         Tensor dy = be.upload(random(rnd, 3 * 5, 1), 3, 5);
                         Tensor dh = Fresh.backward(l2, dy);
                         Tensor dx = Fresh.backward(l1, dh)) {
                        opt.step();
                        opt.zeroGrad();
                    }
                }
                assertFalse(pairs.get(0).a().trainable());
                assertBitIdentical("A of c_attn", a1, values(pairs.get(0).a()));
                assertFalse(java.util.Arrays.equals(b1, values(pairs.get(0).b())), "B of c_attn moved");
                assertEquals(2, opt.state().get("h.0.attn.c_proj.lora_B").step());
            }
        }
    }

    @Test
    void aLayerWithoutAAndBIsRefused() {
        VeraConfig vc = VeraConfig.of(4, "c_fc");
        try (VeraProjections shared = VeraProjections.create(be, vc, 6, 8);
             Tensor w = be.upload(new float[8 * 6], 8, 6);
             AdaptedLinear vera = AdaptedLinear.create("h.0.mlp.c_fc", w, null, false, vc, shared, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Optimizer.pairsOf(List.of(vera)));
            assertTrue(e.getMessage().contains("h.0.mlp.c_fc"), e.getMessage());
        }
    }

    /** AdaLoRA has lora_A and lora_B, but ΔW = B·diag(E)·A is not LoRA-FA's s·B·A: refused by name. */
    @Test
    void anAdaLoraLayerIsRefused() {
        AdaLoraConfig ac = AdaLoraConfig.of(10, "q_proj");
        try (Tensor w = be.upload(new float[8 * 6], 8, 6);
             AdaptedLinear ada = AdaptedLinear.create("h.0.attn.q_proj", w, null, false, ac, null, 3)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> Optimizer.pairsOf(List.of(ada)));
            assertTrue(e.getMessage().contains("h.0.attn.q_proj") && e.getMessage().contains("ADALORA"),
                    e.getMessage());
        }
    }
}
