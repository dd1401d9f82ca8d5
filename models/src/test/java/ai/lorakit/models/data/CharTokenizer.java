package ai.lorakit.models.data;

import ai.lorakit.models.tokenizer.Tokenizer;

import java.util.OptionalInt;

/**
 * Test tokenizer: one id per UTF-16 char (id = char code), end-of-text id 0. A text of consecutive characters
 * gives a stream of consecutive ids, so a window's contiguity and position can be read off its values.
 */
final class CharTokenizer implements Tokenizer {

    @Override
    public int[] encode(String text) {
        return text.chars().toArray();
    }

    @Override
    public String decode(int[] ids) {
        StringBuilder sb = new StringBuilder();
        for (int id : ids) {
            sb.append((char) id);
        }
        return sb.toString();
    }

    @Override
    public int vocabSize() {
        return 65536;
    }

    @Override
    public OptionalInt endOfTextId() {
        return OptionalInt.of(0);
    }

    /** A text of the n characters with codes first, first+1, ... (first >= 1, below the surrogates). */
    static String run(int first, int n) {
        StringBuilder sb = new StringBuilder(n);
        for (int i = 0; i < n; i++) {
            sb.append((char) (first + i));
        }
        return sb.toString();
    }
}
