package ai.lorakit.cli;

import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@code lorakit tokenize} prints one line of space-separated ids per input line (from --text or --file),
 * adds BOS only with --special, falls back to bytes for a folder without tokenizer files, and answers a missing
 * folder, a broken or unsupported tokenizer.json, or a bad file with exit 2 and one stderr line. Ids are those of
 * the hand-made toy tokenizer ({@code toy-sentencepiece.json}; worked out in HfTokenizerTest): "hi" = 7,
 * "!" = byte token 8, a lone "▁" = 3, {@code </s>} = 2, BOS {@code <s>} = 1.
 */
class TokenizeCommandTest {

    @TempDir
    static Path tmp;
    static Path toy;

    @BeforeAll
    static void toyTokenizer() throws IOException {
        toy = Files.createDirectories(tmp.resolve("toy"));
        try (InputStream in = TokenizeCommandTest.class.getResourceAsStream(
                "/ai/lorakit/models/tokenizer/toy-sentencepiece.json")) {
            Files.copy(in, toy.resolve("tokenizer.json"));
        }
    }

    @Test
    void textLinesBecomeIdLines() {
        CliRun r = CliRun.of("tokenize", "--tokenizer", toy.toString(), "--text", "hi hi\nhi!\n\n hi</s>hi");
        assertEquals(0, r.code(), r.toString());
        assertEquals("7 7\n7 8\n\n3 7 2 7\n", r.out());
        assertEquals("", r.err());
    }

    @Test
    void specialAddsBos() throws IOException {
        Path f = Files.writeString(tmp.resolve("in.txt"), "hi\r\nhi hi\n");
        CliRun plain = CliRun.of("tokenize", "--tokenizer", toy.toString(), "--file", f.toString());
        assertEquals("7\n7 7\n", plain.out(), plain.toString());
        CliRun special = CliRun.of("tokenize", "--tokenizer", toy.toString(), "--file", f.toString(), "--special");
        assertEquals("1 7\n1 7 7\n", special.out(), special.toString());
    }

    @Test
    void folderWithoutTokenizerFilesTokenizesBytes() throws IOException {
        Path empty = Files.createDirectories(tmp.resolve("empty"));
        CliRun r = CliRun.of("tokenize", "--tokenizer", empty.toString(), "--text", "hi\n\u00e9");
        assertEquals(0, r.code(), r.toString());
        assertEquals("104 105\n195 169\n", r.out());
    }

    @Test
    void badInputExits2WithOneLine() throws IOException {
        usageError(CliRun.of("tokenize", "--tokenizer", tmp.resolve("nope").toString(), "--text", "x"), "nope",
                "not found");
        Path bad = Files.createDirectories(tmp.resolve("bad"));
        Files.writeString(bad.resolve("tokenizer.json"), "{\"model\": ");
        usageError(CliRun.of("tokenize", "--tokenizer", bad.toString(), "--text", "x"), "tokenizer.json",
                "not valid JSON");
        Path wordPiece = Files.createDirectories(tmp.resolve("wordpiece"));
        Files.writeString(wordPiece.resolve("tokenizer.json"), "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {}}}");
        usageError(CliRun.of("tokenize", "--tokenizer", wordPiece.toString(), "--text", "x"),
                "unsupported model 'WordPiece'");
        usageError(CliRun.of("tokenize", "--tokenizer", toy.toString(), "--file", tmp.resolve("no.txt").toString()),
                "--file", "no.txt");
        Path latin1 = Files.write(tmp.resolve("latin1.txt"), new byte[]{'h', (byte) 0xE9, '\n'});
        usageError(CliRun.of("tokenize", "--tokenizer", toy.toString(), "--file", latin1.toString()),
                "not valid UTF-8");
        usageError(CliRun.of("tokenize", "--tokenizer", toy.toString(), "--text", "a", "--file", "b"),
                "mutually exclusive");
        usageError(CliRun.of("tokenize", "--tokenizer", toy.toString()), "--file", "--text");
    }

    private static void usageError(CliRun r, String... fragments) {
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.err().lines().count(), "exactly one stderr line:\n" + r);
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), "no stack trace:\n" + r);
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing in:\n" + r);
        }
    }
}
