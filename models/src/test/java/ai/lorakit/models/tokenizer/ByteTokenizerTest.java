package ai.lorakit.models.tokenizer;

import org.junit.jupiter.api.Test;

import java.util.OptionalInt;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Proves ByteTokenizer is exactly UTF-8 bytes, with end-of-text id 256 (vocab 257) only in the default form. */
class ByteTokenizerTest {

    private final ByteTokenizer withEot = new ByteTokenizer();
    private final ByteTokenizer bytesOnly = ByteTokenizer.withoutEndOfText();

    @Test
    void encodesUtf8Bytes() {
        assertArrayEquals(new int[] {72, 105}, withEot.encode("Hi"));
        assertArrayEquals(new int[] {0xC3, 0xA9}, withEot.encode("é"));
        assertArrayEquals(new int[] {0xF0, 0x9F, 0x98, 0x80}, withEot.encode("😀"));
        assertArrayEquals(new int[0], withEot.encode(""));
    }

    @Test
    void vocabularyAndEndOfText() {
        assertEquals(257, withEot.vocabSize());
        assertEquals(OptionalInt.of(256), withEot.endOfTextId());
        assertEquals(256, bytesOnly.vocabSize());
        assertTrue(bytesOnly.endOfTextId().isEmpty());
        assertArrayEquals(new int[] {97, 256, 98}, withEot.encode("a<|endoftext|>b"));
        assertEquals(15, bytesOnly.encode("a<|endoftext|>b").length, "without the id the literal is 13 bytes");
        assertEquals("a<|endoftext|>b", withEot.decode(new int[] {97, 256, 98}));
    }

    @Test
    void roundTripsUnicode() {
        String s = "Grüße, 世界! 👩‍💻 \t\n\n  spaces   end<|endoftext|>";
        assertEquals(s, withEot.decode(withEot.encode(s)));
        assertEquals(s, bytesOnly.decode(bytesOnly.encode(s)));
    }

    @Test
    void decodeReplacesBrokenUtf8AndRejectsBadIds() {
        assertEquals("a\uFFFD", withEot.decode(new int[] {97, 0xF0, 0x9F})); // emoji cut after two bytes
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> bytesOnly.decode(new int[] {256}));
        assertTrue(e.getMessage().contains("256"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> withEot.decode(new int[] {-1}));
    }
}
