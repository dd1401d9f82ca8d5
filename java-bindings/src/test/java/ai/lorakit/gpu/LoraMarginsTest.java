package ai.lorakit.gpu;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves LoraMargins' geometry on hand-worked cases: the forward GEMM's K is in + r plus one column for a bias, Wm
 * has out + r rows ([out,in] W) or in + r (+ 1) rows ([in,out] W), every pitch is the needed width rounded up to 8
 * elements (16-byte rows in bf16), and non-positive sizes are refused by name.
 */
class LoraMarginsTest {

    @Test
    void geometryOfBothLayoutsWithAndWithoutBias() {
        LoraMargins linear = new LoraMargins(32, 48, 8, false, true);      // W [48,32]
        assertEquals(41, linear.forwardK());
        assertEquals(48, linear.ldx(), "32 + 8 + 1 rounded up to 8");
        assertEquals(48, linear.ldw(), "Wm's rows hold W | s B | b");
        assertEquals(56, linear.wmRows(), "48 rows of W, 8 of A below");
        assertEquals(56, linear.ldy(), "48 + 8");
        LoraMargins conv = new LoraMargins(768, 2304, 12, true, true);     // GPT-2's c_attn, AdaLoRA's r 12
        assertEquals(781, conv.forwardK());
        assertEquals(784, conv.ldx());
        assertEquals(2320, conv.ldw(), "Wm's rows hold W | A^T: 2304 + 12 rounded up");
        assertEquals(781, conv.wmRows(), "768 rows of W, 12 of (s B)^T, 1 of b");
        LoraMargins noBias = new LoraMargins(768, 2304, 12, true, false);
        assertEquals(780, noBias.forwardK());
        assertEquals(780, noBias.wmRows());
        for (LoraMargins g : new LoraMargins[] {linear, conv, noBias}) {
            assertTrue(g.ldx() % 8 == 0 && g.ldw() % 8 == 0 && g.ldy() % 8 == 0, g.toString());
        }
    }

    @Test
    void refusesNonPositiveSizes() {
        ShapeException e = assertThrows(ShapeException.class, () -> new LoraMargins(32, 48, 0, false, false));
        assertTrue(e.getMessage().contains("r=0"), e.getMessage());
    }
}
