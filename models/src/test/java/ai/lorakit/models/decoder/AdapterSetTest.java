package ai.lorakit.models.decoder;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.gpt2.Gpt2Config;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that the adapter set owns what attachment creates: its parameters are the adapters' plus VeRA's shared
 * projections, its PEFT save/load reproduces the adapted logits in a fresh model, a failed attach leaves no adapter
 * behind, and closing (detaching) restores the base model's logits.
 */
class AdapterSetTest {

    private static final Gpt2Config CFG = Gpt2Config.of(23, 8, 8, 2, 2);
    private static final int[] PROBE = {1, 5, 9, 22, 0, 3};

    @TempDir
    Path dir;

    @Test
    void peftRoundTripAndDetach() throws Exception {
        try (Backend be = new CpuBackend(); DecoderModel m = DecoderModel.random(CFG, be, 3);
             DecoderModel fresh = DecoderModel.random(CFG, be, 3)) {
            float[] base = m.logits(PROBE);
            AdapterSet set = m.attachAdapters(VeraConfig.of(4, "all-linear"), 11);
            assertEquals(m.linearModuleNames().size(), set.modules().size());
            assertNotNull(set.veraProjections());
            List<Parameter> ps = set.parameters();
            assertEquals("vera_B", ps.getLast().name());
            for (AdaptedLinear a : set.modules()) {
                for (Parameter p : a.parameters()) {   // move the adapter off its identity init
                    if (p.trainable()) {
                        be.fill(p.value(), 0.3f);
                    }
                }
            }
            float[] adapted = m.logits(PROBE);
            assertFalse(java.util.Arrays.equals(base, adapted), "the adapters must change the logits");
            set.savePeft(dir, "test");
            fresh.attachAdapters(VeraConfig.of(4, "all-linear"), 99).loadPeft(dir);
            assertArrayEquals(adapted, fresh.logits(PROBE), 1e-6f, "PEFT save/load reproduces the adapted model");
            m.detachAdapters();
            assertTrue(m.adaptedModules().isEmpty());
            assertArrayEquals(base, m.logits(PROBE), 0f, "detaching unmerged adapters restores the base");
            assertThrows(IllegalArgumentException.class, () -> m.attachAdapters(LoraConfig.of(2, 4f, "c_attn",
                    "nope"), 1));
            assertTrue(m.adaptedModules().isEmpty(), "a failed attach leaves nothing attached");
            m.attachAdapters(LoraConfig.of(2, 4f, "c_attn"), 1);
            assertEquals(2, m.adaptedModules().size());
        }
    }
}
