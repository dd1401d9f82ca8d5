package ai.lorakit.gpu;

import ai.lorakit.gpu.contract.RefDump;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@link RopeTables} computes Hugging Face's rotary tables: the inverse frequencies (plain and with
 * rope_scaling type llama3, at Llama 3.1's published settings) and cos/sin at window and long positions agree
 * with ci/reference/llama_ops/rope_tables.safetensors, written by llama_ops_reference.py from HF's documented
 * fp32 formula in PyTorch; also that factor 1 is the identity, the three frequency bands behave as the formula
 * says, and bad settings are refused with a message naming the setting.
 */
class RopeTablesTest {

    private static RopeTables.Llama3Scaling llama3(RefDump f) {
        return new RopeTables.Llama3Scaling((float) f.metaDouble("factor"), (float) f.metaDouble("low_freq_factor"),
                (float) f.metaDouble("high_freq_factor"), f.metaInt("original_max_position_embeddings"));
    }

    @Test
    void matchesHuggingFaceTablesFromPyTorch() {
        RefDump f = RefDump.open("rope_tables");
        int d = f.metaInt("head_dim");
        double theta = f.metaDouble("rope_theta");
        float[] pos = f.get("positions");
        int[] positions = new int[pos.length];
        for (int i = 0; i < pos.length; i++) {
            positions[i] = (int) pos[i];
        }
        for (boolean scaled : new boolean[] {false, true}) {
            String sfx = scaled ? "_llama3" : "";
            RopeTables.Llama3Scaling s = scaled ? llama3(f) : null;
            float[] inv = RopeTables.inverseFrequencies(d, theta, s);
            float[] want = f.get("inv_freq" + sfx);
            double worstUlps = 0;
            for (int i = 0; i < inv.length; i++) {
                worstUlps = Math.max(worstUlps, Math.abs(inv[i] - want[i]) / Math.ulp(want[i]));
            }
            assertTrue(worstUlps <= 1, "inv_freq" + sfx + " within 1 ulp of HF's fp32 values, worst " + worstUlps);
            RopeTables t = RopeTables.forPositions(positions, d, theta, s);
            float[] cos = f.get("cos" + sfx), sin = f.get("sin" + sfx);
            double worst = 0;
            for (int p = 0; p < positions.length; p++) {
                for (int i = 0; i < d / 2; i++) {
                    int j = p * (d / 2) + i;
                    // cos/sin of the same fp32 angle: allow 1 ulp of the angle p*inv (HF's fp32 product), plus 2e-7
                    double tol = 2e-7 + 2 * Math.ulp((float) positions[p] * want[i]);
                    worst = Math.max(worst, Math.max(Math.abs(t.cos()[j] - cos[j]), Math.abs(t.sin()[j] - sin[j])) / tol);
                }
            }
            assertTrue(worst <= 1, "cos/sin" + sfx + " vs HF within the angle's rounding, worst share " + worst);
            System.out.printf("rope tables%s: inv_freq worst %.2f ulp, cos/sin worst %.3f of tolerance%n", sfx,
                    worstUlps, worst);
        }
    }

    @Test
    void llama3BandsAndIdentity() {
        int d = 128;
        float[] plain = RopeTables.inverseFrequencies(d, 500000.0, null);
        assertArrayEquals(plain, RopeTables.inverseFrequencies(d, 500000.0,
                new RopeTables.Llama3Scaling(1f, 1f, 4f, 8192)), "factor 1 changes nothing");
        float[] scaled = RopeTables.inverseFrequencies(d, 500000.0, new RopeTables.Llama3Scaling(8f, 1f, 4f, 8192));
        assertEquals(plain[0], scaled[0], 0f, "the highest frequency (wavelength 2 pi < 8192/4) is kept");
        assertEquals(plain[d / 2 - 1] / 8f, scaled[d / 2 - 1], 0f, "the lowest (wavelength > 8192) is divided by 8");
        int medium = 0;
        for (int i = 0; i < d / 2; i++) {
            double wavelen = 2 * Math.PI / plain[i];
            if (wavelen >= 8192 / 4.0 && wavelen <= 8192) {
                medium++;
                assertTrue(scaled[i] < plain[i] && scaled[i] > plain[i] / 8f, "medium band blends, i=" + i);
            }
        }
        assertTrue(medium > 0, "Llama 3.1's settings have a medium band");
        RopeTables w = RopeTables.forWindow(3, 4, 10000.0, null);
        assertArrayEquals(new float[] {1f, 1f}, java.util.Arrays.copyOf(w.cos(), 2), "position 0: cos = 1");
        assertEquals((float) Math.cos(1.0), w.cos()[2], 0f, "position 1, i = 0: angle 1");
        assertEquals((float) Math.sin(0.01f * 2f), w.sin()[5], 1e-7f, "position 2, i = 1: angle 2 / 10000^(1/2)");
    }

    @Test
    void badSettingsAreRefused() {
        assertThrows(IllegalArgumentException.class, () -> RopeTables.inverseFrequencies(7, 10000.0, null));
        assertThrows(IllegalArgumentException.class, () -> RopeTables.inverseFrequencies(8, 0.5, null));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new RopeTables.Llama3Scaling(8f, 4f, 1f, 8192));
        assertTrue(e.getMessage().contains("high_freq_factor"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> RopeTables.forPositions(new int[] {-1}, 8, 1e4, null));
    }
}
