package ai.lorakit.models.tokenizer;

import java.util.OptionalInt;

/**
 * Text to token ids and back. Implementations are immutable and thread-safe (datasets tokenise documents in
 * parallel).
 *
 * <p>The end-of-text convention is GPT-2's: the literal string {@link #END_OF_TEXT} in the input of
 * {@link #encode} becomes the single id {@link #endOfTextId()} (as Hugging Face's GPT-2 tokenizer does with its
 * special tokens), and {@link #decode} turns that id back into the literal string, so {@code decode(encode(s))
 * == s} holds for any valid Unicode {@code s}. A tokenizer without an end-of-text id encodes the literal as text.
 */
public interface Tokenizer {

    /** GPT-2's document separator, as text. */
    String END_OF_TEXT = "<|endoftext|>";

    /** Token ids of {@code text}, each in [0, vocabSize). */
    int[] encode(String text);

    /**
     * Text of {@code ids}. Byte sequences that are not valid UTF-8 (a window cut inside a multi-byte character,
     * say) decode to U+FFFD rather than failing. An id outside [0, vocabSize) is an IllegalArgumentException.
     */
    String decode(int[] ids);

    /** Number of ids (the model's embedding needs at least this many rows). */
    int vocabSize();

    /** The id that separates documents, if this tokenizer has one. */
    OptionalInt endOfTextId();
}
