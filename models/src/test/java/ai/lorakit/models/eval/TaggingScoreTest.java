package ai.lorakit.models.eval;

import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Proves {@link TaggingScore}'s exact match (whitespace-normalised) and position-wise tag accuracy against counts
 * worked out by hand, including missing, extra and empty predictions.
 */
class TaggingScoreTest {

    @Test
    void handCountedExample() {
        List<String> gold = List.of(" at nn vbd .", " pps bedz jj", " np .", " in");
        List<String> pred = List.of("at  nn\tvbd . ",   // exact after normalisation: 4/4
                " pps jj jj",                           // 2/3 (position 1 wrong)
                " np",                                  // 1/2 (missing tag counts as wrong)
                "");                                    // 0/1
        TaggingScore s = TaggingScore.of(pred, gold);
        assertEquals(4, s.examples());
        assertEquals(1, s.exact());
        assertEquals(7, s.tagsCorrect());
        assertEquals(10, s.tagsGold());
        assertEquals(0.25, s.exactMatch(), 0);
        assertEquals(0.7, s.tagAccuracy(), 1e-12);
    }

    @Test
    void extraTagsAreIgnoredButBreakExactMatch() {
        TaggingScore s = TaggingScore.of(List.of(" at nn nn"), List.of(" at nn"));
        assertEquals(0, s.exact());
        assertEquals(1.0, s.tagAccuracy(), 0);
    }

    @Test
    void refusesMismatchedOrEmptyLists() {
        assertThrows(IllegalArgumentException.class, () -> TaggingScore.of(List.of("a"), List.of("a", "b")));
        assertThrows(IllegalArgumentException.class, () -> TaggingScore.of(List.of(), List.of()));
    }
}
