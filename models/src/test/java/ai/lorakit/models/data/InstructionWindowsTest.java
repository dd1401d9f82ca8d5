package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Proves the rows of {@link InstructionWindows}: one example per row, inputs = ids[0..T-1], targets = the next
 * token's label, padding with the pad id and ignored targets, truncation counted, examples left without a trained
 * target dropped and counted.
 */
class InstructionWindowsTest {

    private static final int I = CrossEntropy.IGNORE;

    @Test
    void shiftsPadsTruncatesAndDrops() {
        InstructionExample shortEx = new InstructionExample(new int[] {1, 2, 3, 4}, new int[] {I, I, 3, 4});
        InstructionExample longEx = new InstructionExample(new int[] {5, 6, 7, 8, 9, 10, 11, 12},
                new int[] {I, 6, 7, 8, 9, 10, 11, 12});
        InstructionExample lateEx = new InstructionExample(new int[] {1, 1, 1, 1, 1, 1, 1, 9},
                new int[] {I, I, I, I, I, I, I, 9});   // its only trained token lies beyond the window
        InstructionWindows w = InstructionWindows.of(List.of(shortEx, longEx, lateEx), 5, 0);
        assertEquals(2, w.inputs().length);
        assertArrayEquals(new int[] {1, 2, 3, 0, 0}, w.inputs()[0]);
        assertArrayEquals(new int[] {I, 3, 4, I, I}, w.targets()[0]);
        assertArrayEquals(new int[] {5, 6, 7, 8, 9}, w.inputs()[1]);
        assertArrayEquals(new int[] {6, 7, 8, 9, 10}, w.targets()[1]);
        assertEquals(2, w.truncated(), "the long and the late example were cut");
        assertEquals(1, w.dropped());
        assertEquals(7, w.countedTargets());
        assertThrows(IllegalArgumentException.class, () -> InstructionWindows.of(List.of(shortEx), 0, 0));
        assertThrows(IllegalArgumentException.class, () -> new InstructionExample(new int[2], new int[3]));
    }
}
