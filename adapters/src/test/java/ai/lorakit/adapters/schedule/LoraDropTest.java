package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Fresh;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves LoRA-drop: the importance Σ‖ΔW x‖² accumulated by the meter (never forming N x out) equals the naive
 * double computation over every input row, across batches and 3-d inputs; the selection keeps the shortest
 * importance-ranked prefix whose cumulative share reaches T (also when it lands exactly on T), per module and per
 * block; dropped modules of one shape really share one A and B (same Parameter objects; a backward through one
 * fills the shared gradient, an optimizer step on it changes the other's output); RESTART re-initialises the kept
 * adapters, CONTINUE keeps them; the selection round-trips through JSON; the export is a plain PEFT LoRA with the
 * shared tensors written per module that loads into untied layers with identical outputs.
 */
class LoraDropTest {

    private static final int IN = 6;
    private static final int OUT = 5;
    private static final int R = 2;

    private static LoraConfig nonZero() {
        return LoraConfig.of(R, 4f, "proj", "other").withInit(LoraConfig.Init.NONE);   // B != 0: ΔW != 0
    }

    @Test
    void importanceEqualsNaiveComputation() {
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            AdaptedLinear m0 = ls.add("h.0.proj", IN, OUT, nonZero(), 1);
            AdaptedLinear m1 = ls.add("h.1.proj", IN, OUT, nonZero(), 2);
            Random rnd = new Random(4);
            double[] naive = new double[2];
            try (ImportanceMeter meter = ImportanceMeter.attach(ls.modules)) {
                for (int batch = 0; batch < 3; batch++) {
                    int n = 3 + batch;
                    float[] x = Layers.uniform(rnd, n * IN, 1);
                    for (int i = 0; i < 2; i++) {
                        AdaptedLinear m = ls.modules.get(i);
                        int[] shape = batch == 2 ? new int[] {1, n, IN} : new int[] {n, IN};   // also [B,T,in]
                        try (Tensor xt = be.upload(x, shape); Tensor y = Fresh.forward(m, xt)) {
                            assertEquals(n * OUT, y.numel());
                        }
                        naive[i] += naive(m, x, n);
                    }
                }
                m1.setEnabled(false);                       // a disabled adapter adds nothing
                try (Tensor xt = be.upload(Layers.uniform(rnd, IN, 1), 1, IN); Tensor y = Fresh.forward(m1, xt)) {
                    assertEquals(OUT, y.numel());
                }
                Map<String, Double> imp = meter.importance();
                assertEquals(naive[0], imp.get("h.0.proj"), 1e-5 * naive[0]);
                assertEquals(naive[1], imp.get("h.1.proj"), 1e-5 * naive[1]);
                assertTrue(naive[0] > 0 && naive[1] > 0);
                assertEquals(12L, meter.tokens().get("h.0.proj"));
                assertEquals(12L, meter.tokens().get("h.1.proj"));
            }
            float[] x = Layers.uniform(rnd, 2 * IN, 1);
            m1.setEnabled(true);
            Layers.forward(m0, x, 2);                       // detached: no observer left, no error
        }
    }

    /** Σ_n ‖s B A x_n‖² with the full out-vector formed, in double. */
    private static double naive(AdaptedLinear m, float[] x, int n) {
        float[] a = Layers.values(m.parameter(Parameter.Role.LORA_A));
        float[] b = Layers.values(m.parameter(Parameter.Role.LORA_B));
        double s = m.scaling();
        double total = 0;
        for (int row = 0; row < n; row++) {
            double[] u = new double[R];
            for (int k = 0; k < R; k++) {
                for (int i = 0; i < IN; i++) {
                    u[k] += (double) a[k * IN + i] * x[row * IN + i];
                }
            }
            for (int o = 0; o < OUT; o++) {
                double y = 0;
                for (int k = 0; k < R; k++) {
                    y += s * b[o * R + k] * u[k];
                }
                total += y * y;
            }
        }
        return total;
    }

    @Test
    void selectionHitsTheThreshold() {
        LoraDropOptions perModule = LoraDropOptions.defaults().withGrouping(LoraDropOptions.Grouping.PER_MODULE);
        Map<String, Double> imp = new LinkedHashMap<>();
        imp.put("m.e", 5.0);
        imp.put("m.a", 50.0);
        imp.put("m.c", 15.0);
        imp.put("m.b", 20.0);
        imp.put("m.d", 10.0);
        LoraDropSelection s = LoraDropSelection.select(imp, perModule);      // T = 0.9
        assertEquals(List.of("m.a", "m.b", "m.c", "m.d", "m.e"), s.groups().stream().map(LoraDropSelection.Group::name).toList());
        assertEquals(Set.of("m.a", "m.b", "m.c", "m.d"), s.keptModules());
        assertEquals(Set.of("m.e"), s.droppedModules());
        assertEquals(0.95, s.keptShare(), 1e-12);
        assertEquals(0.2, s.groups().get(1).share(), 1e-12);
        // just >= T: without the last kept unit the share is below T
        List<LoraDropSelection.Group> kept = s.groups().stream().filter(LoraDropSelection.Group::kept).toList();
        assertTrue(kept.getLast().cumulativeShare() >= 0.9);
        assertTrue(kept.getLast().cumulativeShare() - kept.getLast().share() < 0.9);

        Map<String, Double> exact = new LinkedHashMap<>();
        exact.put("x", 10.0);
        exact.put("y", 60.0);
        exact.put("z", 30.0);
        LoraDropSelection e = LoraDropSelection.select(exact, perModule);
        assertEquals(Set.of("y", "z"), e.keptModules(), "a cumulative share exactly T stops the kept prefix");
        assertEquals(Set.of("x"), e.droppedModules());
        assertEquals(Set.of("y"), LoraDropSelection.select(exact, perModule.withThreshold(0.6)).keptModules());
        assertEquals(Set.of("y", "z", "x"), LoraDropSelection.select(exact, perModule.withThreshold(1.0)).keptModules());

        Map<String, Double> zero = Map.of("x", 0.0, "y", 0.0);
        IllegalArgumentException ex = assertThrows(IllegalArgumentException.class,
                () -> LoraDropSelection.select(zero, perModule));
        assertTrue(ex.getMessage().contains("stage-1"), ex.getMessage());
        assertThrows(IllegalArgumentException.class, () -> LoraDropSelection.select(Map.of("x", -1.0), perModule));
    }

    @Test
    void perBlockGroupingSumsTheBlocksModules() {
        LoraDropOptions opts = LoraDropOptions.defaults();
        assertEquals(LoraDropOptions.Grouping.PER_BLOCK, opts.grouping());
        assertEquals("transformer.h.3", opts.groupOf("transformer.h.3.attn.c_attn"));
        assertEquals("model.layers.12", opts.groupOf("model.layers.12.mlp.down_proj"));
        assertEquals("lm_head", opts.groupOf("lm_head"));
        Map<String, Double> imp = new LinkedHashMap<>();
        imp.put("transformer.h.0.attn.c_attn", 4.0);
        imp.put("transformer.h.0.mlp.c_fc", 4.0);
        imp.put("transformer.h.1.attn.c_attn", 30.0);
        imp.put("transformer.h.1.mlp.c_fc", 50.0);      // block 1: 0.8 < T, block 2 brings it to 0.92
        imp.put("transformer.h.2.attn.c_attn", 6.0);
        imp.put("transformer.h.2.mlp.c_fc", 6.0);
        LoraDropSelection s = LoraDropSelection.select(imp, opts);
        assertEquals(List.of("transformer.h.1", "transformer.h.2", "transformer.h.0"),
                s.groups().stream().map(LoraDropSelection.Group::name).toList());
        assertEquals(80.0, s.groups().getFirst().importance());
        assertEquals(0.92, s.keptShare(), 1e-12);
        assertEquals(Set.of("transformer.h.1.attn.c_attn", "transformer.h.1.mlp.c_fc",
                "transformer.h.2.attn.c_attn", "transformer.h.2.mlp.c_fc"), s.keptModules());
        assertEquals(2, s.droppedModules().size());
        assertEquals(10, opts.sampleSize(100));
        assertEquals(1, opts.sampleSize(3));
        assertThrows(IllegalArgumentException.class, () -> new LoraDropOptions(0, 0.9,
                LoraDropOptions.Grouping.PER_BLOCK, LoraDropOptions.Stage2.RESTART));
        assertThrows(IllegalArgumentException.class, () -> opts.withThreshold(1.5));
    }

    @Test
    void tiedModulesShareParametersAndGradients() {
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            for (int i = 0; i < 4; i++) {
                ls.add("h." + i + ".proj", IN, OUT, nonZero(), i);
            }
            ls.add("h.0.other", OUT, IN, nonZero(), 9);          // another shape class
            Map<String, Double> imp = new LinkedHashMap<>();
            imp.put("h.0.proj", 100.0);
            imp.put("h.1.proj", 3.0);
            imp.put("h.2.proj", 2.0);
            imp.put("h.3.proj", 1.0);
            imp.put("h.0.other", 4.0);
            LoraDropOptions opts = LoraDropOptions.defaults().withGrouping(LoraDropOptions.Grouping.PER_MODULE);
            LoraDropSelection sel = LoraDropSelection.select(imp, opts);
            assertEquals(Set.of("h.0.proj"), sel.keptModules());
            AdaptedLinear kept = ls.modules.get(0);
            AdaptedLinear x = ls.modules.get(1);
            AdaptedLinear y = ls.modules.get(3);
            AdaptedLinear other = ls.modules.get(4);
            try (LoraDrop drop = LoraDrop.apply(sel, ls.modules, 7)) {
                for (Parameter.Role role : new Parameter.Role[] {Parameter.Role.LORA_A, Parameter.Role.LORA_B}) {
                    assertSame(x.parameter(role), y.parameter(role), role + " is one object for tied modules");
                    assertSame(x.parameter(role), ls.modules.get(2).parameter(role));
                    assertNotSame(x.parameter(role), kept.parameter(role));
                    assertNotSame(x.parameter(role), other.parameter(role), "one shared adapter per shape");
                }
                assertEquals(4, drop.sharedParameters().size());
                assertEquals(drop.tiedTo().get("h.1.proj"), drop.tiedTo().get("h.3.proj"));
                assertNotEquals(drop.tiedTo().get("h.1.proj"), drop.tiedTo().get("h.0.other"));
                // the optimizer gets each tensor once; the naive concatenation has duplicate names
                List<Parameter> all = new ArrayList<>();
                ls.modules.forEach(m -> all.addAll(m.parameters()));
                assertThrows(IllegalArgumentException.class, () -> Optimizer.create(new AdamWPolicy(),
                        OptimizerConfig.defaults(), all, List.of()));
                List<Parameter> distinct = LoraDrop.distinctParameters(ls.modules);
                assertEquals(2 + 2 + 2, distinct.size());

                Random rnd = new Random(8);
                float[] probe = Layers.uniform(rnd, 3 * IN, 1);
                float[] yBefore = Layers.forward(y, probe, 3);
                float[] sharedB = Layers.values(y.parameter(Parameter.Role.LORA_B));
                // a backward through x only
                x.setTraining(true);
                try (Tensor xin = be.upload(Layers.uniform(rnd, 3 * IN, 1), 3, IN); Tensor out = Fresh.forward(x, xin);
                     Tensor g = be.upload(Layers.uniform(rnd, 3 * OUT, 1), 3, OUT); Tensor dx = Fresh.backward(x, g)) {
                    assertEquals(3 * IN, dx.numel());
                }
                x.setTraining(false);
                Tensor gradB = y.parameter(Parameter.Role.LORA_B).grad();
                assertTrue(gradB != null && be.dot(gradB, gradB) > 0, "y's B gradient is the shared one, filled by x");
                try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults().withLr(0.05f),
                        distinct, List.of())) {
                    opt.step();
                }
                assertFalse(java.util.Arrays.equals(sharedB, Layers.values(y.parameter(Parameter.Role.LORA_B))),
                        "the step on x's gradient changed the tensor y reads");
                assertFalse(java.util.Arrays.equals(yBefore, Layers.forward(y, probe, 3)), "y's output changed");
            }
        }
    }

    @Test
    void restartReinitialisesKeptAdaptersContinueKeepsThem() {
        for (LoraDropOptions.Stage2 mode : LoraDropOptions.Stage2.values()) {
            try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
                LoraConfig kaiming = LoraConfig.of(R, 4f, "proj");                 // fresh init: B = 0
                for (int i = 0; i < 3; i++) {
                    AdaptedLinear m = ls.add("h." + i + ".proj", IN, OUT, kaiming, i);
                    Layers.set(m.parameter(Parameter.Role.LORA_B), Layers.uniform(new Random(i), OUT * R, 1)); // "trained"
                }
                float[] keptA = Layers.values(ls.modules.get(0).parameter(Parameter.Role.LORA_A));
                float[] keptB = Layers.values(ls.modules.get(0).parameter(Parameter.Role.LORA_B));
                Map<String, Double> imp = new LinkedHashMap<>();
                imp.put("h.0.proj", 10.0);
                imp.put("h.1.proj", 0.5);
                imp.put("h.2.proj", 0.5);
                LoraDropSelection sel = LoraDropSelection.select(imp, LoraDropOptions.defaults().withStage2(mode));
                try (LoraDrop drop = LoraDrop.apply(sel, ls.modules, 3)) {
                    float[] a = Layers.values(ls.modules.get(0).parameter(Parameter.Role.LORA_A));
                    float[] b = Layers.values(ls.modules.get(0).parameter(Parameter.Role.LORA_B));
                    if (mode == LoraDropOptions.Stage2.RESTART) {
                        assertFalse(java.util.Arrays.equals(keptA, a), "RESTART draws a new A");
                        assertArrayEquals(new float[OUT * R], b, "RESTART: B = 0 again");
                    } else {
                        assertArrayEquals(keptA, a, "CONTINUE keeps A");
                        assertArrayEquals(keptB, b, "CONTINUE keeps B");
                    }
                    assertArrayEquals(new float[OUT * R], Layers.values(drop.sharedParameters().get(1)),
                            "the shared adapter starts fresh (B = 0)");
                }
            }
        }
    }

    @Test
    void selectionRoundTripsThroughJson(@TempDir Path dir) throws Exception {
        Map<String, Double> imp = new LinkedHashMap<>();
        imp.put("transformer.h.0.attn.c_attn", 0.123456789);
        imp.put("transformer.h.1.attn.c_attn", 7.5e-3);
        imp.put("transformer.h.1.mlp.c_fc", 2.0 / 3.0);
        LoraDropSelection s = LoraDropSelection.select(imp, LoraDropOptions.defaults());
        String json = s.toJson();
        assertTrue(json.contains("\"cumulative_share\""), json);
        assertEquals(s, LoraDropSelection.fromJson(json));
        Path f = dir.resolve(LoraDropSelection.FILE);
        s.save(f);
        assertEquals(s, LoraDropSelection.load(f));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> LoraDropSelection.fromJson("{\"options\":{}}"));
        assertTrue(e.getMessage().contains("alpha"), e.getMessage());
    }

    @Test
    void exportIsPlainLoraWithSharedTensorsWrittenPerModule(@TempDir Path dir) throws Exception {
        LoraConfig cfg = nonZero();
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be); Layers plain = new Layers(be)) {
            for (int i = 0; i < 3; i++) {
                ls.add("h." + i + ".proj", IN, OUT, cfg, i);
            }
            Map<String, Double> imp = new LinkedHashMap<>();
            imp.put("h.0.proj", 10.0);
            imp.put("h.1.proj", 0.5);
            imp.put("h.2.proj", 0.5);
            LoraDropSelection sel = LoraDropSelection.select(imp,
                    LoraDropOptions.defaults().withStage2(LoraDropOptions.Stage2.CONTINUE));
            try (LoraDrop drop = LoraDrop.apply(sel, ls.modules, 5)) {
                Layers.set(drop.sharedParameters().get(1), Layers.uniform(new Random(2), OUT * R, 1)); // trained B
                LoraDrop.export(dir, cfg, ls.modules, sel, "base");
                assertTrue(Files.isRegularFile(dir.resolve(LoraDropSelection.FILE)));
                assertEquals(sel, LoraDropSelection.load(dir.resolve(LoraDropSelection.FILE)));
                try (SafetensorsFile sf = SafetensorsFile.open(dir.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
                    assertEquals(6, sf.names().size(), "lora_A and lora_B for each of the 3 modules");
                    String k1 = PeftAdapterIO.PREFIX + "h.1.proj.lora_B.weight";
                    String k2 = PeftAdapterIO.PREFIX + "h.2.proj.lora_B.weight";
                    assertArrayEquals(sf.floats(k1), sf.floats(k2), "a shared tensor is written once per module");
                    assertTrue(sf.info(k1).begin() != sf.info(k2).begin(), "no aliasing");
                }
                assertEquals("LORA", PeftAdapterIO.readConfig(dir).peftType());
                for (int i = 0; i < 3; i++) {
                    plain.add("h." + i + ".proj", IN, OUT, cfg, i + 100);         // untied, other init
                }
                PeftAdapterIO.load(dir, plain.modules, null);
                // same W: the fixture draws W from the seed, so compare against a re-built W
                float[] x = Layers.uniform(new Random(1), 2 * IN, 1);
                for (int i = 0; i < 3; i++) {
                    AdaptedLinear t = ls.modules.get(i);
                    AdaptedLinear p = plain.modules.get(i);
                    be.copy(t.weight(), p.weight());
                    be.copy(t.bias(), p.bias());
                    Layers.assertClose("exported " + t.name(), Layers.forward(p, x, 2), Layers.forward(t, x, 2));
                }
            }
        }
    }

    @Test
    void applyValidatesModulesAgainstTheSelection() {
        try (Backend be = new CpuBackend(); Layers ls = new Layers(be)) {
            ls.add("h.0.proj", IN, OUT, nonZero(), 1);
            ls.add("h.1.proj", IN, OUT, nonZero(), 2);
            LoraDropSelection sel = LoraDropSelection.select(Map.of("h.0.proj", 1.0, "h.9.proj", 1.0),
                    LoraDropOptions.defaults());
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> LoraDrop.apply(sel, ls.modules, 1));
            assertTrue(e.getMessage().contains("h.9.proj") && e.getMessage().contains("h.1.proj"), e.getMessage());
            AdaptedLinear dora = ls.add("h.2.proj", IN, OUT, nonZero().withDora(true), 3);
            assertThrows(IllegalArgumentException.class, () -> ImportanceMeter.attach(List.of(dora)));
        }
    }
}
