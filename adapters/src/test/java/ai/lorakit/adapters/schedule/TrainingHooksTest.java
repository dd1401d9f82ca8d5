package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.DeltaLoraPolicy;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link TrainingHooks#forTraining} picks the hook each variant needs (none for LoRA / LoRA+, the rank
 * allocator for AdaLoRA, the W updater for Delta-LoRA, both composed when asked) and refuses mixed AdaLoRA models;
 * that a composed hook forwards every call, writes its one regulariser's loss to the stats slot, and refuses two
 * regularisers and clashing state names; and that a trainer-style loop
 * following the documented call order drives AdaLoRA end to end (real forward/backward gradients, orthogonal
 * regulariser reported, final rank_pattern within the target budget, Λ of pruned triplets zero).
 */
class TrainingHooksTest {

    private static final int IN = 6;
    private static final int OUT = 5;

    @Test
    void forTrainingPicksWhatTheVariantNeeds() {
        try (Backend be = new CpuBackend(); Layers lora = new Layers(be); Layers ada = new Layers(be)) {
            lora.add("h.0.proj", IN, OUT, LoraConfig.of(2, 4f, "proj"), 1);
            lora.add("h.1.proj", IN, OUT, LoraConfig.of(2, 4f, "proj"), 2);
            AdaLoraConfig ac = new AdaLoraConfig(3, 2, 0, 0, 1, 0.85f, 0.85f, 0.5f, 10, 8f, 0f, List.of("proj"), null);
            ada.add("h.0.proj", IN, OUT, ac, 1);
            ada.add("h.1.proj", IN, OUT, ac, 2);
            List<Parameter> lp = LoraDrop.distinctParameters(lora.modules);
            try (Optimizer adam = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(), lp, List.of());
                 Optimizer plus = Optimizer.create(LoraPlusPolicy.defaults(), OptimizerConfig.defaults(), lp, List.of());
                 Optimizer delta = Optimizer.create(DeltaLoraPolicy.defaults(), OptimizerConfig.defaults(), lp, List.of());
                 Optimizer adaOpt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults(),
                         LoraDrop.distinctParameters(ada.modules), List.of())) {
                assertSame(TrainingHook.NONE, TrainingHooks.forTraining(lora.modules, adam));
                assertSame(TrainingHook.NONE, TrainingHooks.forTraining(lora.modules, plus));
                try (TrainingHook h = TrainingHooks.forTraining(lora.modules, delta)) {
                    assertInstanceOf(DeltaLoraUpdater.class, h);
                }
                try (TrainingHook h = TrainingHooks.forTraining(ada.modules, adaOpt)) {
                    assertInstanceOf(RankAllocator.class, h);
                }
                List<AdaptedLinear> mixed = new ArrayList<>(ada.modules);
                mixed.add(lora.modules.getFirst());
                IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                        () -> TrainingHooks.forTraining(mixed, adaOpt));
                assertTrue(e.getMessage().contains("global"), e.getMessage());
            }
        }
    }

    @Test
    void composeForwardsEveryCallAndRefusesTwoRegularisersAndClashingState() {
        try (Backend be = new CpuBackend(); Tensor t = be.zeros(DType.F32, 1); Tensor stats = be.zeros(DType.F32, 4)) {
            int[] calls = new int[4];
            TrainingHook a = new TrainingHook() {
                @Override
                public boolean hasRegulariser() {
                    return true;
                }

                @Override
                public void beforeOptimizerStep(int step, Tensor st, int at) {
                    st.backend().sumTo(t, st, at);           // its "regulariser": t's value
                }

                @Override
                public void afterOptimizerStep(int step) {
                    calls[0]++;
                }

                @Override
                public void afterStep(int step) {
                    calls[2]++;
                }

                @Override
                public Map<String, Tensor> state() {
                    return Map.of("x", t);
                }
            };
            TrainingHook b = new TrainingHook() {
                @Override
                public void afterOptimizerStep(int step) {
                    calls[1]++;
                }

                @Override
                public void afterStep(int step) {
                    calls[3]++;
                }

                @Override
                public Map<String, Tensor> state() {
                    return Map.of("x", t);
                }
            };
            be.fill(t, 1.5f);
            TrainingHook both = TrainingHooks.compose(List.of(a, b));
            assertTrue(both.hasRegulariser());
            both.beforeOptimizerStep(0, stats, 1);
            assertEquals(1.5, DeviceSums.at(be.download(stats), 1));
            assertEquals(0.0, DeviceSums.at(be.download(stats), 0));
            both.afterOptimizerStep(0);
            both.afterStep(0);
            assertArrayEquals(new int[] {1, 1, 1, 1}, calls);
            assertThrows(IllegalStateException.class, both::state);
            IllegalArgumentException two = assertThrows(IllegalArgumentException.class,
                    () -> TrainingHooks.compose(List.of(a, b, a)));
            assertTrue(two.getMessage().contains("regulariser"), two.getMessage());
            assertSame(TrainingHook.NONE, TrainingHooks.compose(List.of()));
            assertSame(a, TrainingHooks.compose(List.of(a)));
            assertFalse(TrainingHook.NONE.hasRegulariser());
        }
    }

    /**
     * The documented loop: backward, beforeOptimizerStep, step, afterOptimizerStep, zeroGrad, read, afterStep;
     * AdaLoRA to its end.
     */
    @Test
    void trainerStyleLoopDrivesAdaLoraToItsFinalAllocation() {
        AdaLoraConfig c = new AdaLoraConfig(4, 2, 2, 3, 2, 0.85f, 0.85f, 0.5f, 14, 8f, 0f, List.of("proj"), null);
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            for (int i = 0; i < 3; i++) {
                ls.add("h." + i + ".proj", IN, OUT, c, i);
            }
            Random rnd = new Random(12);
            try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults().withLr(0.05f),
                    LoraDrop.distinctParameters(ls.modules), List.of());
                 TrainingHook hook = TrainingHooks.forTraining(ls.modules, opt);
                 Tensor stats = be.zeros(DType.F32, 2)) {
                RankAllocator ra = assertInstanceOf(RankAllocator.class, hook);
                for (int step = 0; step < c.totalStep(); step++) {
                    for (AdaptedLinear m : ls.modules) {
                        m.setTraining(true);
                        try (Tensor x = be.upload(Layers.uniform(rnd, 4 * IN, 1), 4, IN);
                             Tensor y = Fresh.forward(m, x);
                             Tensor g = be.upload(Layers.uniform(rnd, 4 * OUT, 1), 4, OUT);
                             Tensor dx = Fresh.backward(m, g)) {
                            assertEquals(4 * IN, dx.numel());
                        }
                    }
                    hook.beforeOptimizerStep(step, stats, 0);
                    opt.step();
                    hook.afterOptimizerStep(step);
                    opt.zeroGrad();
                    double reg = DeviceSums.at(be.download(stats), 0);
                    assertTrue(reg > 0, "A, B ~ N(0, 0.02²) are far from orthogonal: " + reg);
                    hook.afterStep(step);
                }
                assertTrue(ra.finalized());
                int kept = 0;
                for (AdaptedLinear m : ls.modules) {
                    boolean[] k = ra.rankPattern().get(m.name() + ".lora_E");
                    float[] e = Layers.values(m.parameter(Parameter.Role.LORA_E));
                    for (int i = 0; i < k.length; i++) {
                        kept += k[i] ? 1 : 0;
                        if (!k[i]) {
                            assertEquals(0f, e[i], "pruned triplet " + i + " of " + m.name());
                        }
                    }
                }
                assertTrue(kept > 0 && kept <= ra.targetBudget(), "kept " + kept + " of " + ra.targetBudget());
            }
        }
    }
}
