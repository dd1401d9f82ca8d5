package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves Gpt2BpeTokenizer reproduces GPT-2's real token ids (known ids, plus ids that the independent JavaScript
 * encoder gpt-3-encoder produced for varied texts, see resources/gpt2/README.md), handles {@code <|endoftext|>},
 * round-trips Unicode text, replaces broken UTF-8 on decode, and names the file and line of bad inputs.
 */
class Gpt2BpeTokenizerTest {

    private static Path dir;
    private static Gpt2BpeTokenizer gpt2;

    @BeforeAll
    static void load() throws IOException, URISyntaxException {
        dir = Path.of(Gpt2BpeTokenizerTest.class.getResource("/gpt2/vocab.json").toURI()).getParent();
        gpt2 = Gpt2BpeTokenizer.load(dir.resolve("vocab.json"), dir.resolve("merges.txt"));
    }

    @Test
    void knownIds() {
        assertEquals(50257, gpt2.vocabSize());
        assertEquals(OptionalInt.of(50256), gpt2.endOfTextId());
        assertArrayEquals(new int[] {15496, 995}, gpt2.encode("Hello world"));
        assertArrayEquals(new int[] {262}, gpt2.encode(" the"));
        assertArrayEquals(new int[] {198}, gpt2.encode("\n"));
        assertArrayEquals(new int[] {628}, gpt2.encode("\n\n"));
        assertArrayEquals(new int[0], gpt2.encode(""));
        assertEquals(" world", gpt2.decode(new int[] {995}));
    }

    @Test
    void matchesJavaScriptReferenceEncoder() throws IOException {
        JsonNode root = new ObjectMapper().readTree(dir.resolve("expected_ids.json").toFile());
        int cases = 0;
        for (JsonNode c : root.get("cases")) {
            String text = c.get("text").asText();
            int[] expected = new int[c.get("ids").size()];
            for (int i = 0; i < expected.length; i++) {
                expected[i] = c.get("ids").get(i).asInt();
            }
            assertArrayEquals(expected, gpt2.encode(text), () -> "ids of " + text);
            assertEquals(text, gpt2.decode(expected), "decode of the reference ids");
            cases++;
        }
        assertEquals(13, cases);
    }

    @Test
    void endOfText() {
        assertArrayEquals(new int[] {50256}, gpt2.encode("<|endoftext|>"));
        int[] ids = gpt2.encode("Hello<|endoftext|> world");
        assertArrayEquals(new int[] {15496, 50256, 995}, ids);
        assertEquals("Hello<|endoftext|> world", gpt2.decode(ids));
        int[] ordinary = gpt2.encodeOrdinary("<|endoftext|>");
        assertTrue(ordinary.length > 1, "as plain text the literal is several tokens");
        assertEquals("<|endoftext|>", gpt2.decode(ordinary));
    }

    @Test
    void roundTripsUnicode() {
        String[] texts = {
            "emoji 😀🎉 👩‍👩‍👧‍👦 and 🇯🇵",
            "accents: àéîõü ÀÉÎÕÜ ç ñ ø å æ œ ß",
            "CJK: 我爱自然语言处理。日本語もテストする。한국어",
            "whitespace   runs\t\t\ttabs\n\n\n\nnewlines \r\n crlf  \u00A0nbsp \u3000ideographic  ",
            "   ", "\n", "x", "''''  '''s 'll 'LL",
            "math ∑∫√ ≤ ≥ ≠ and arrows → ← and 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
        };
        for (String s : texts) {
            assertEquals(s, gpt2.decode(gpt2.encode(s)));
        }
    }

    @Test
    void decodeReplacesBrokenUtf8AndRejectsBadIds() {
        int[] emoji = gpt2.encode("😀"); // 4 bytes -> several byte-level tokens
        assertTrue(emoji.length >= 2, "emoji spans several tokens");
        assertEquals("\uFFFD", gpt2.decode(new int[] {emoji[0]}), "a truncated character decodes to U+FFFD");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> gpt2.decode(new int[] {50257}));
        assertTrue(e.getMessage().contains("50257"), e.getMessage());
    }

    @Test
    void badFilesAreNamed(@TempDir Path tmp) throws IOException {
        assertThrows(NoSuchFileException.class,
                () -> Gpt2BpeTokenizer.load(tmp.resolve("nope.json"), dir.resolve("merges.txt")));
        Path merges = tmp.resolve("merges.txt");
        Files.writeString(merges, "#version: 0.2\nĠ t\nbroken-line\n");
        IOException e = assertThrows(IOException.class, () -> Gpt2BpeTokenizer.load(dir.resolve("vocab.json"), merges));
        assertTrue(e.getMessage().contains("merges.txt:3"), e.getMessage());
        Path vocab = tmp.resolve("vocab.json");
        Files.writeString(vocab, "{\"a\": 0}");
        e = assertThrows(IOException.class, () -> Gpt2BpeTokenizer.load(vocab, dir.resolve("merges.txt")));
        assertTrue(e.getMessage().contains("no token for byte"), e.getMessage());
    }
}
