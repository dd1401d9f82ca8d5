package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link BrownPosInstructions} turns tagged Brown sentences (hand-written in the corpus' format) into
 * prompt = readable sentence, completion = one tag per token (the doubled {@code ?/.} once, headlines skipped),
 * filters files by group, and writes JSONL that {@link InstructionData} reads back with the completion trained.
 */
class BrownPosInstructionsTest {

    private static final String TAGGED = """

            \tThe/at-hl Jury/nn-hl

            \tThe/at Fulton/np-tl jury/nn said/vbd ``/`` it/pps was/bedz fine/jj ''/'' ./.
            Did/dod it/pps rain/vb ?/. ?/.

            """;

    @Test
    void oneExamplePerSentence() {
        List<BrownPosInstructions.Example> ex = BrownPosInstructions.fromTagged(TAGGED);
        assertEquals(2, ex.size(), "the headline line is skipped");
        assertEquals(BrownPosInstructions.INSTRUCTION + "The Fulton jury said \"it was fine\".\nTags:",
                ex.get(0).prompt());
        assertEquals(" at np-tl nn vbd `` pps bedz jj '' .", ex.get(0).completion());
        assertEquals(BrownPosInstructions.INSTRUCTION + "Did it rain?\nTags:", ex.get(1).prompt());
        assertEquals(" dod pps vb .", ex.get(1).completion(), "the doubled ?/. is one token");
        assertThrows(IllegalArgumentException.class, () -> BrownPosInstructions.fromTagged("word/nn untagged"));
    }

    @Test
    void writesJsonlOfTheGroupThatInstructionDataReads(@TempDir Path dir) throws IOException {
        Path corpus = Files.createDirectories(dir.resolve("corpus"));
        Files.writeString(corpus.resolve("ca01"), TAGGED);
        Files.writeString(corpus.resolve("ck01"), "\tShe/pps ran/vbd ./.\n");
        Files.writeString(corpus.resolve("README"), "not a corpus file");
        Path out = dir.resolve("out/pos.jsonl");
        assertEquals(2, BrownPosInstructions.write(corpus, BrownCorpus.Group.NON_FICTION, out));
        assertEquals(1, BrownPosInstructions.write(corpus, BrownCorpus.Group.FICTION, out), "replaced atomically");
        assertEquals(3, BrownPosInstructions.write(corpus, BrownCorpus.Group.ALL, out));
        InstructionEncoder enc = new InstructionEncoder(new CharTokenizer(), null, null, "$", List.of());
        List<InstructionExample> ex = InstructionData.read(out, enc);
        assertEquals(3, ex.size());
        assertEquals(" dod pps vb .$".length(), ex.get(1).trainedTokens());
        try (var files = Files.list(out.getParent())) {
            assertEquals(1, files.count(), "no temporary file left behind");
        }
        assertThrows(IOException.class,
                () -> BrownPosInstructions.write(dir.resolve("out"), BrownCorpus.Group.ALL, out));
    }
}
