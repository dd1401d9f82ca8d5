package ai.lorakit.models.tokenizer;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.OptionalInt;

/**
 * Byte-level tokenizer: each UTF-8 byte of the text is one id in [0, 256).
 *
 * <p>Decision: by default ({@link #ByteTokenizer()}) id 256 is an end-of-text token, so the vocabulary has 257
 * ids. Datasets put it between documents, which lets a small model learn where a text starts and ends; a model
 * with 257 embedding rows costs nothing extra worth noting. {@link #withoutEndOfText()} gives the plain 256-id
 * tokenizer (the literal {@code <|endoftext|>} is then just 13 bytes, and datasets put no separator between
 * documents).
 */
public final class ByteTokenizer implements Tokenizer {

    /** The end-of-text id of the default tokenizer. */
    public static final int END_OF_TEXT_ID = 256;

    private static final byte[] EOT_BYTES = END_OF_TEXT.getBytes(StandardCharsets.UTF_8);

    private final boolean withEndOfText;

    /** Bytes plus end-of-text id 256: vocabulary 257. */
    public ByteTokenizer() {
        this(true);
    }

    private ByteTokenizer(boolean withEndOfText) {
        this.withEndOfText = withEndOfText;
    }

    /** Bytes only: vocabulary 256. */
    public static ByteTokenizer withoutEndOfText() {
        return new ByteTokenizer(false);
    }

    @Override
    public int[] encode(String text) {
        byte[] bytes = text.getBytes(StandardCharsets.UTF_8);
        int[] ids = new int[bytes.length];
        int n = 0;
        for (int i = 0; i < bytes.length; i++) {
            if (withEndOfText && startsWith(bytes, i, EOT_BYTES)) {
                ids[n++] = END_OF_TEXT_ID;
                i += EOT_BYTES.length - 1;
            } else {
                ids[n++] = bytes[i] & 0xFF;
            }
        }
        return n == ids.length ? ids : Arrays.copyOf(ids, n);
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(ids.length);
        for (int id : ids) {
            if (id >= 0 && id < 256) {
                bytes.write(id);
            } else if (withEndOfText && id == END_OF_TEXT_ID) {
                bytes.writeBytes(EOT_BYTES);
            } else {
                throw new IllegalArgumentException("token id " + id + " is outside the byte tokenizer's vocabulary [0, "
                        + vocabSize() + ")");
            }
        }
        return Utf8.decodeReplacing(bytes.toByteArray(), bytes.size());
    }

    @Override
    public int vocabSize() {
        return withEndOfText ? 257 : 256;
    }

    @Override
    public OptionalInt endOfTextId() {
        return withEndOfText ? OptionalInt.of(END_OF_TEXT_ID) : OptionalInt.empty();
    }

    @Override
    public String toString() {
        return "ByteTokenizer[vocab=" + vocabSize() + "]";
    }

    private static boolean startsWith(byte[] bytes, int at, byte[] prefix) {
        if (at + prefix.length > bytes.length) {
            return false;
        }
        for (int k = 0; k < prefix.length; k++) {
            if (bytes[at + k] != prefix[k]) {
                return false;
            }
        }
        return true;
    }
}
