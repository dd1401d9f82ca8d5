package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link BrownPosSplit} splits by FILE (every file in exactly one split, the example counts following
 * the files), keeps only sentences of at most maxTags tags, is a pure function of the seed, and refuses fractions
 * that leave a split empty.
 */
class BrownPosSplitTest {

    /** 20 files "ck00".."ck19"; file i holds i+1 examples, example j of it has j+1 tags. */
    private static Map<String, List<BrownPosInstructions.Example>> corpus() {
        Map<String, List<BrownPosInstructions.Example>> m = new LinkedHashMap<>();
        for (int i = 0; i < 20; i++) {
            List<BrownPosInstructions.Example> ex = new ArrayList<>();
            for (int j = 0; j <= i; j++) {
                ex.add(new BrownPosInstructions.Example("f" + i + " s" + j, " nn".repeat(j + 1)));
            }
            m.put(String.format("ck%02d", i), ex);
        }
        return m;
    }

    @Test
    void disjointFilesDeterministicAndFiltered() {
        var c = corpus();
        BrownPosSplit s = BrownPosSplit.of(c, 3, 0.1, 0.1, 42);
        assertEquals(2, s.testFiles().size());
        assertEquals(2, s.validationFiles().size());
        assertEquals(16, s.trainFiles().size());
        Set<String> all = new HashSet<>(s.trainFiles());
        all.addAll(s.validationFiles());
        all.addAll(s.testFiles());
        assertEquals(c.keySet(), all, "every file in exactly one split");
        assertEquals(s, BrownPosSplit.of(c, 3, 0.1, 0.1, 42), "same seed, same split");
        assertNotEquals(s.testFiles(), BrownPosSplit.of(c, 3, 0.1, 0.1, 7).testFiles());
        // file i keeps min(i+1, 3) examples (those of <= 3 tags)
        for (var split : List.of(List.of(s.train(), s.trainFiles()), List.of(s.test(), s.testFiles()))) {
            @SuppressWarnings("unchecked")
            List<String> files = (List<String>) split.get(1);
            int expected = files.stream().mapToInt(f -> Math.min(Integer.parseInt(f.substring(2)) + 1, 3)).sum();
            assertEquals(expected, ((List<?>) split.get(0)).size());
        }
        assertTrue(s.train().stream().allMatch(e -> e.tagCount() <= 3));
        for (BrownPosInstructions.Example e : s.test()) {
            String file = String.format("ck%02d", Integer.parseInt(e.prompt().substring(1, e.prompt().indexOf(' '))));
            assertTrue(s.testFiles().contains(file), e.prompt() + " comes from a test file");
        }
    }

    @Test
    void refusesSplitsThatLeaveAPartEmpty() {
        var c = corpus();
        assertThrows(IllegalArgumentException.class, () -> BrownPosSplit.of(c, 3, 0.01, 0.1, 1));
        assertThrows(IllegalArgumentException.class, () -> BrownPosSplit.of(c, 3, 0.5, 0.5, 1));
        assertThrows(IllegalArgumentException.class, () -> BrownPosSplit.of(c, 0, 0.1, 0.1, 1));
    }
}
