package ai.lorakit.fuzz;

import ai.lorakit.models.tokenizer.HfTokenizer;
import ai.lorakit.models.tokenizer.TokenizerFormatException;
import com.code_intelligence.jazzer.junit.FuzzTest;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Timeout;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * Fuzzes tokenizer.json ({@link HfTokenizer#load}): any bytes either give a tokenizer or a
 * {@link TokenizerFormatException} naming the file and the component; a tokenizer that loads must then encode
 * (with and without special tokens) and decode a fixed set of hostile texts, giving ids inside its vocabulary, or
 * refuse a text with the one documented encode error (IllegalArgumentException: a character its vocabulary cannot
 * represent, with neither byte_fallback nor unk_token). Seeds: a SentencePiece-style BPE with byte fallback and a byte-level BPE with a Split
 * regex, an added special token and ByteLevel post-processing and decoding.
 */
class TokenizerJsonFuzzTest {

    /** Texts every loaded tokenizer must take: empty, whitespace runs, emoji, CJK, a special-token string, a lone surrogate. */
    private static final List<String> TEXTS = List.of("", "hello world", "  \t\n\n  x", "naïve café 🤖👍🏽",
            "日本語のテキスト", "a<|endoftext|>b</s><s>", "\uD800 lone", "123456789 '' 's 't");

    static Path dir;

    @BeforeAll
    static void dir() throws IOException {
        dir = Files.createTempDirectory("lorakit-fuzz-tokenizer");
    }

    @AfterAll
    static void clean() throws IOException {
        Files.deleteIfExists(dir.resolve("tokenizer.json"));
        Files.deleteIfExists(dir);
    }

    @FuzzTest(maxDuration = "10s")
    @Timeout(10)
    void parse(byte[] input) throws IOException {
        Files.write(dir.resolve("tokenizer.json"), input);
        FuzzGuard.check(input.length, () -> {
            HfTokenizer t = HfTokenizer.load(dir);
            for (String text : TEXTS) {
                for (boolean special : new boolean[] {false, true}) {
                    int[] ids = t.encode(text, special);
                    for (int id : ids) {
                        if (id < 0 || id >= t.vocabSize()) {
                            throw new AssertionError("id " + id + " outside the vocabulary of " + t.vocabSize()
                                    + " for '" + text + "'");
                        }
                    }
                    t.decode(ids);
                }
            }
        }, TokenizerFormatException.class, IllegalArgumentException.class);
    }
}
