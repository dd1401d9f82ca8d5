package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that an allocation made by {@link RankAllocator} saves as PEFT's pruned AdaLoRA adapter and loads back
 * to identical layer outputs: the file's rank_pattern equals the allocator's, lora_A/lora_E/lora_B have the pruned
 * shapes (kept-triplet count per layer), and layers built from the saved config (pruned ranks) as well as full-rank
 * layers loaded from the file reproduce the trained layers' outputs.
 */
class AdaLoraPrunedSaveLoadTest {

    private static final int IN = 7;
    private static final int OUT = 5;
    private static final int N = 4;

    @Test
    void prunedAdapterRoundTripsToIdenticalOutputs(@TempDir Path dir) throws Exception {
        AdaLoraConfig c = new AdaLoraConfig(4, 2, 0, 1, 1, 0.85f, 0.85f, 0.5f, 6, 8f, 0f, List.of("proj"), null);
        try (Backend be = new CpuBackend(); Layers trained = new Layers(be); Layers fresh = new Layers(be);
             Layers full = new Layers(be)) {
            String[] names = {"h.0.proj", "h.1.proj", "h.2.proj"};
            for (int i = 0; i < names.length; i++) {
                trained.add(names[i], IN, OUT, c, 20 + i);
            }
            Random rnd = new Random(11);
            // non-zero Λ (as after training), then a full schedule with random gradients: steps 0..5, final at 5
            for (AdaptedLinear m : trained.modules) {
                Layers.set(m.parameter(Parameter.Role.LORA_E), Layers.uniform(rnd, 4, 1));
            }
            try (RankAllocator ra = RankAllocator.create(c, trained.modules)) {
                for (int step = 0; step < 6; step++) {
                    for (AdaptedLinear m : trained.modules) {
                        for (Parameter p : m.parameters()) {
                            Layers.setGrad(p, Layers.uniform(rnd, (int) p.value().numel(), 1));
                        }
                    }
                    ra.afterOptimizerStep(step);
                    ra.afterStep(step);
                }
                AdaLoraConfig saved = ra.adapterConfig();
                Map<String, boolean[]> rp = saved.rankPattern();
                PeftAdapterIO.save(dir, saved, trained.modules, null, "test-base");

                AdaLoraConfig read = assertInstanceOf(AdaLoraConfig.class, PeftAdapterIO.readConfig(dir));
                assertEquals(rp.keySet(), read.rankPattern().keySet());
                int total = 0;
                try (SafetensorsFile sf = SafetensorsFile.open(dir.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
                    for (String n : names) {
                        boolean[] kept = rp.get(n + ".lora_E");
                        assertArrayEquals(kept, read.rankPattern().get(n + ".lora_E"));
                        int k = 0;
                        for (boolean b : kept) {
                            k += b ? 1 : 0;
                        }
                        total += k;
                        String pre = PeftAdapterIO.PREFIX + n;
                        assertArrayEquals(new long[] {k, IN}, sf.info(pre + ".lora_A").shape(), n + " lora_A");
                        assertArrayEquals(new long[] {k, 1}, sf.info(pre + ".lora_E").shape(), n + " lora_E");
                        assertArrayEquals(new long[] {OUT, k}, sf.info(pre + ".lora_B").shape(), n + " lora_B");
                    }
                }
                assertTrue(total <= ra.targetBudget(), "kept " + total + " of budget " + ra.targetBudget());

                for (int i = 0; i < names.length; i++) {
                    // same W and bias as the trained layer (same seed), adapter at the pruned rank / at init_r
                    AdaptedLinear small = fresh.add(names[i], IN, OUT, read, 20 + i);
                    full.add(names[i], IN, OUT, c, 20 + i);
                    assertEquals(trained.modules.get(i).scaling(), small.scaling());
                }
                PeftAdapterIO.load(dir, fresh.modules, null);
                PeftAdapterIO.load(dir, full.modules, null);
                float[] x = Layers.uniform(rnd, N * IN, 1);
                for (int i = 0; i < names.length; i++) {
                    float[] want = Layers.forward(trained.modules.get(i), x, N);
                    Layers.assertClose(names[i] + " pruned-rank layer", Layers.forward(fresh.modules.get(i), x, N), want);
                    Layers.assertClose(names[i] + " full-rank layer", Layers.forward(full.modules.get(i), x, N), want);
                }
            }
        }
    }
}
