package ai.lorakit.models.tokenizer;

import java.nio.ByteBuffer;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;

/**
 * UTF-8 helpers shared by the tokenizers: lenient decoding (errors replaced by U+FFFD, Python's "replace") and
 * encoding with unpaired surrogates as U+FFFD (the WHATWG TextEncoder's rule, which the JS reference follows;
 * Java's own {@code getBytes(UTF_8)} writes '?' instead).
 */
final class Utf8 {

    private Utf8() {
    }

    /** UTF-8 bytes of {@code text}, each unpaired surrogate written as U+FFFD (EF BF BD). */
    static byte[] encodeReplacing(String text) {
        return wellFormed(text).getBytes(StandardCharsets.UTF_8);
    }

    /** {@code text} with each unpaired surrogate replaced by U+FFFD (JS {@code String.prototype.toWellFormed}). */
    static String wellFormed(String text) {
        char[] chars = null;
        int n = text.length();
        for (int i = 0; i < n; i++) {
            char c = text.charAt(i);
            if (Character.isHighSurrogate(c) && i + 1 < n && Character.isLowSurrogate(text.charAt(i + 1))) {
                i++;
            } else if (Character.isSurrogate(c)) {
                if (chars == null) {
                    chars = text.toCharArray();
                }
                chars[i] = '\uFFFD';
            }
        }
        return chars == null ? text : new String(chars);
    }

    /** {@code bytes[0, length)} as text; malformed or truncated sequences become U+FFFD. */
    static String decodeReplacing(byte[] bytes, int length) {
        try {
            return StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPLACE)
                    .onUnmappableCharacter(CodingErrorAction.REPLACE)
                    .decode(ByteBuffer.wrap(bytes, 0, length))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new IllegalStateException("UTF-8 decoding with REPLACE cannot fail", e);
        }
    }
}
