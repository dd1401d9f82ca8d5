package ai.lorakit.models.tokenizer;

/**
 * GPT-2's reversible map from the 256 byte values to printable Unicode characters ("bytes_to_unicode"), so that
 * BPE symbols are strings without whitespace or control characters. Bytes that are printable Latin-1
 * ('!'..'~', '¡'..'¬', '®'..'ÿ', 188 of them) map to the character with the same code; the other 68 bytes, in
 * increasing order, map to U+0100, U+0101, ... U+0143 (so the space 0x20 becomes U+0120 'Ġ' and the newline
 * 0x0A becomes U+010A 'Ċ').
 */
final class ByteUnicode {

    /** byte value (0..255) -> character. */
    private static final char[] BYTE_TO_CHAR = new char[256];
    /** character code -> byte value, or -1 for characters outside the map. */
    private static final int[] CHAR_TO_BYTE = new int[256 + 68];

    static {
        java.util.Arrays.fill(CHAR_TO_BYTE, -1);
        int next = 256;
        for (int b = 0; b < 256; b++) {
            boolean printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
            char c = printable ? (char) b : (char) next++;
            BYTE_TO_CHAR[b] = c;
            CHAR_TO_BYTE[c] = b;
        }
    }

    private ByteUnicode() {
    }

    /** The character that stands for byte {@code b} (0..255). */
    static char charOf(int b) {
        return BYTE_TO_CHAR[b];
    }

    /** The byte that character {@code c} stands for, or -1 if {@code c} is not in the map. */
    static int byteOf(char c) {
        return c < CHAR_TO_BYTE.length ? CHAR_TO_BYTE[c] : -1;
    }

    /** The symbol string of a byte sequence: one character per byte. */
    static String encode(byte[] bytes) {
        char[] chars = new char[bytes.length];
        for (int i = 0; i < bytes.length; i++) {
            chars[i] = BYTE_TO_CHAR[bytes[i] & 0xFF];
        }
        return new String(chars);
    }
}
