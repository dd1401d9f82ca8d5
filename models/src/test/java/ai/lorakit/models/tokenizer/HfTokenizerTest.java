package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.function.Consumer;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the pieces of {@link HfTokenizer} without network, on a hand-made SentencePiece-style file
 * ({@code toy-sentencepiece.json}: 9 tokens, merges "h i" then "▁ hi") whose ids are worked out by hand in the
 * comments: normalizer, BPE merge order, byte fallback, unk fusing, added tokens (leftmost-longest, lstrip/rstrip),
 * the BOS template and the decoder chain; the JS-regex translation; that every unsupported component and every
 * broken file is refused with a message naming it; and that {@link TokenizerFiles} picks the right tokenizer.
 */
class HfTokenizerTest {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Writes the toy file, changed by {@code edit}, into {@code dir}. */
    static Path toy(Path dir, Consumer<ObjectNode> edit) throws IOException {
        ObjectNode root;
        try (InputStream in = HfTokenizerTest.class.getResourceAsStream("toy-sentencepiece.json")) {
            root = (ObjectNode) JSON.readTree(in);
        }
        edit.accept(root);
        Files.createDirectories(dir);
        JSON.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        return dir;
    }

    @Test
    void toyIdsWorkedOutByHand(@TempDir Path tmp) throws IOException {
        HfTokenizer t = HfTokenizer.load(toy(tmp, r -> { }));
        // "hi" -> "▁hi" -> [▁, h, i] -> merge (h,i) -> [▁, hi] -> merge (▁,hi) -> [▁hi] = 7
        assertArrayEquals(new int[]{7}, t.encode("hi"));
        // spaces become ▁: "▁hi▁hi" -> 7 7
        assertArrayEquals(new int[]{7, 7}, t.encode("hi hi"));
        // a leading space gives "▁▁hi": the first ▁ has no merge with ▁hi -> 3 7
        assertArrayEquals(new int[]{3, 7}, t.encode(" hi"));
        // "!" is not a token: byte fallback <0x21> = 8
        assertArrayEquals(new int[]{7, 8}, t.encode("hi!"));
        // "é" = C3 A9 has no byte tokens: unk; two unks in a row fuse into one
        assertArrayEquals(new int[]{3, 0}, t.encode("\u00e9"));
        assertArrayEquals(new int[]{3, 0}, t.encode("\u00e9\u00e9"));
        // an added token inside text is cut out first; each side is normalised (▁ prepended) on its own
        assertArrayEquals(new int[]{7, 2, 7}, t.encode("hi</s>hi"));
        // the template puts BOS (<s> = 1) first; plain encode adds nothing
        assertArrayEquals(new int[]{1, 7}, t.encode("hi", true));
        assertArrayEquals(new int[]{}, t.encode(""));
        assertEquals(9, t.vocabSize());
    }

    @Test
    void decoderChainInvertsTheToy(@TempDir Path tmp) throws IOException {
        HfTokenizer t = HfTokenizer.load(toy(tmp, r -> { }));
        assertEquals("hi hi", t.decode(new int[]{7, 7}));
        assertEquals("hi!", t.decode(new int[]{7, 8}));   // <0x21> back to '!'
        assertEquals(" hi", t.decode(new int[]{3, 7}));   // only the one prepended space is stripped
        assertEquals("hi</s> hi", t.decode(new int[]{7, 2, 7}));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> t.decode(new int[]{9}));
        assertTrue(e.getMessage().contains("token id 9"), e.getMessage());
    }

    @Test
    void mergeOrderFollowsRankThenPosition(@TempDir Path tmp) throws IOException {
        // vocab a b c ab bc; "abc" with "b c" ranked first -> [a, bc]; with "a b" first -> [ab, c]
        Consumer<ObjectNode> abc = r -> {
            r.putNull("normalizer");
            ObjectNode model = (ObjectNode) r.get("model");
            ObjectNode v = model.putObject("vocab");
            String[] tokens = {"<unk>", "<s>", "</s>", "a", "b", "c", "ab", "bc", "aa"};
            for (int i = 0; i < tokens.length; i++) {
                v.put(tokens[i], i);
            }
        };
        HfTokenizer bcFirst = HfTokenizer.load(toy(tmp.resolve("bc"), abc.andThen(r ->
                ((ObjectNode) r.get("model")).putArray("merges").add("b c").add("a b").add("a a"))));
        assertArrayEquals(new int[]{3, 7}, bcFirst.encode("abc"));
        HfTokenizer abFirst = HfTokenizer.load(toy(tmp.resolve("ab"), abc.andThen(r ->
                ((ObjectNode) r.get("model")).putArray("merges").add("a b").add("b c").add("a a"))));
        assertArrayEquals(new int[]{6, 5}, abFirst.encode("abc"));
        // equal ranks: the leftmost pair first, "aaa" -> [aa, a]; [left, right] pairs are read too
        HfTokenizer pairs = HfTokenizer.load(toy(tmp.resolve("pairs"), abc.andThen(r -> {
            ArrayNode m = ((ObjectNode) r.get("model")).putArray("merges");
            m.addArray().add("a").add("a");
        })));
        assertArrayEquals(new int[]{8, 3}, pairs.encode("aaa"));
    }

    @Test
    void addedTokensLongestFirstAndStripping(@TempDir Path tmp) throws IOException {
        HfTokenizer t = HfTokenizer.load(toy(tmp, r -> {
            ArrayNode added = (ArrayNode) r.get("added_tokens");
            added.addObject().put("id", 9).put("content", "<x>").put("special", true);
            added.addObject().put("id", 10).put("content", "<x><y>").put("special", false);
            added.addObject().put("id", 11).put("content", "[L]").put("lstrip", true).put("rstrip", true);
        }));
        assertArrayEquals(new int[]{7, 10, 7}, t.encode("hi<x><y>hi"), "the longer added token wins");
        assertArrayEquals(new int[]{7, 9, 7}, t.encode("hi<x>hi"));
        // [L] eats the spaces around it: "hi  [L]  hi" -> "hi" [L] "hi"
        assertArrayEquals(new int[]{7, 11, 7}, t.encode("hi  [L]  hi"));
        assertEquals(12, t.vocabSize());
    }

    @Test
    void regexTranslationHasJsSemantics() {
        Pattern space = HfRegex.compile("\\s+");
        assertTrue(space.matcher("\uFEFF\u00A0\u3000\u000B").matches(), "JS \\s has U+FEFF");
        assertFalse(space.matcher("\u0085").matches(), "JS \\s lacks U+0085 (NEL)");
        assertFalse(HfRegex.compile("\\S").matcher("\uFEFF").matches());
        assertTrue(HfRegex.compile("[^\\s\\p{L}]").matcher("\u0085").matches());
        assertFalse(HfRegex.compile(".").matcher("\u2028").matches());
        assertTrue(HfRegex.compile(".").matcher("\u0085").matches());
        Pattern contraction = HfRegex.compile("(?i:'s|'t)");
        assertTrue(contraction.matcher("'S").matches());
        assertFalse(contraction.matcher("'\u017F").matches(), "no Unicode case folding (long s)");
        assertTrue(HfRegex.compile("\\p{N}{1,3}").matcher("\u0661\u0662\u0663").matches(), "Unicode digits");
        assertTrue(HfRegex.compile("[a&[]+").matcher("a&[").matches(), "[ and & are literal in a class");
        assertThrows(IllegalArgumentException.class, () -> HfRegex.compile("\\p{Script=Han}"));
        assertThrows(IllegalArgumentException.class, () -> HfRegex.compile("[\\S]"));
        assertThrows(IllegalArgumentException.class, () -> HfRegex.compile("[abc"));
    }

    @Test
    void unsupportedComponentsAreRefusedByName(@TempDir Path tmp) {
        refused(tmp, "model 'WordPiece'", r -> ((ObjectNode) r.get("model")).put("type", "WordPiece"));
        refused(tmp, "normalizer 'Lowercase'", r -> r.putObject("normalizer").put("type", "Lowercase"));
        refused(tmp, "pre_tokenizer 'Whitespace'", r -> r.putObject("pre_tokenizer").put("type", "Whitespace"));
        refused(tmp, "Split behavior 'Removed'", r -> r.putObject("pre_tokenizer").put("type", "Split")
                .put("behavior", "Removed").putObject("pattern").put("String", " "));
        refused(tmp, "Metaspace 'split: true", r -> r.putObject("pre_tokenizer").put("type", "Metaspace")
                .put("replacement", "\u2581"));
        refused(tmp, "post_processor 'BertProcessing'", r -> r.putObject("post_processor").put("type", "BertProcessing"));
        refused(tmp, "decoder 'CTC'", r -> r.putObject("decoder").put("type", "CTC"));
        refused(tmp, "dropout 0.1", r -> ((ObjectNode) r.get("model")).put("dropout", 0.1));
        refused(tmp, "continuing_subword_prefix '##'", r -> ((ObjectNode) r.get("model"))
                .put("continuing_subword_prefix", "##"));
        refused(tmp, "single_word: true", r -> ((ObjectNode) r.get("added_tokens").get(0)).put("single_word", true));
        refused(tmp, "uses or makes a token that the vocabulary lacks", r -> ((ObjectNode) r.get("model"))
                .putArray("merges").add("h x"));
    }

    private static void refused(Path tmp, String fragment, Consumer<ObjectNode> edit) {
        Path dir = tmp.resolve("case" + fragment.hashCode());
        TokenizerFormatException e = assertThrows(TokenizerFormatException.class,
                () -> HfTokenizer.load(toy(dir, edit)), fragment);
        assertTrue(e.getMessage().contains(fragment) && e.getMessage().contains("tokenizer.json"), e.getMessage());
    }

    @Test
    void brokenFilesNameTheFile(@TempDir Path tmp) throws IOException {
        assertThrows(NoSuchFileException.class, () -> HfTokenizer.load(tmp.resolve("missing")));
        Files.createDirectories(tmp.resolve("empty"));
        NoSuchFileException none = assertThrows(NoSuchFileException.class, () -> HfTokenizer.load(tmp.resolve("empty")));
        assertTrue(none.getFile().endsWith("tokenizer.json"), none.getFile());
        Path bad = Files.createDirectories(tmp.resolve("bad"));
        Files.writeString(bad.resolve("tokenizer.json"), "{\"model\": [1, 2", StandardCharsets.UTF_8);
        TokenizerFormatException e = assertThrows(TokenizerFormatException.class, () -> HfTokenizer.load(bad));
        assertTrue(e.getMessage().contains("tokenizer.json: not valid JSON"), e.getMessage());
        Path noModel = Files.createDirectories(tmp.resolve("nomodel"));
        Files.writeString(noModel.resolve("tokenizer.json"), "{}", StandardCharsets.UTF_8);
        e = assertThrows(TokenizerFormatException.class, () -> HfTokenizer.load(noModel));
        assertTrue(e.getMessage().contains("field 'model' must be an object"), e.getMessage());
    }

    @Test
    void endOfTextComesFromTheConfig(@TempDir Path tmp) throws IOException {
        Path dir = toy(tmp, r -> { });
        assertTrue(HfTokenizer.load(dir).endOfTextId().isEmpty(), "no config, no <|endoftext|>");
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": {\"content\": \"</s>\"}}");
        assertEquals(2, HfTokenizer.load(dir).endOfTextId().getAsInt());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"eos_token\": \"<nope>\"}");
        assertThrows(TokenizerFormatException.class, () -> HfTokenizer.load(dir));
    }

    @Test
    void factoryPicksByFiles(@TempDir Path tmp) throws IOException {
        assertInstanceOf(HfTokenizer.class, TokenizerFiles.forDirectory(toy(tmp.resolve("hf"), r -> { })));
        Path gpt2 = Files.createDirectories(tmp.resolve("gpt2"));
        ObjectNode vocab = JSON.createObjectNode();
        for (int b = 0; b < 256; b++) {
            vocab.put(String.valueOf(ByteUnicode.charOf(b)), b);
        }
        JSON.writeValue(gpt2.resolve("vocab.json").toFile(), vocab);
        Files.writeString(gpt2.resolve("merges.txt"), "#version: 0.2\n");
        Tokenizer g = TokenizerFiles.forDirectory(gpt2);
        assertInstanceOf(Gpt2BpeTokenizer.class, g);
        assertArrayEquals(new int[]{'h', 'i'}, g.encode("hi"));
        // tokenizer.json wins over vocab.json + merges.txt
        toy(gpt2, r -> { });
        assertInstanceOf(HfTokenizer.class, TokenizerFiles.forDirectory(gpt2));
        Tokenizer bytes = TokenizerFiles.forDirectory(Files.createDirectories(tmp.resolve("none")));
        assertInstanceOf(ByteTokenizer.class, bytes);
        assertEquals(257, bytes.vocabSize());
        assertThrows(NoSuchFileException.class, () -> TokenizerFiles.forDirectory(tmp.resolve("absent")));
    }
}
