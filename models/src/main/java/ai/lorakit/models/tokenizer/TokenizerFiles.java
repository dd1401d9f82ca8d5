package ai.lorakit.models.tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * Picks the tokenizer of a model folder by the files in it: {@code tokenizer.json} (Hugging Face's single-file
 * format: {@link HfTokenizer}), else {@code vocab.json} + {@code merges.txt} (GPT-2's pair:
 * {@link Gpt2BpeTokenizer}), else bytes ({@link ByteTokenizer}, 257 ids with end-of-text).
 */
public final class TokenizerFiles {

    private TokenizerFiles() {
    }

    /** The tokenizer for the files in {@code dir}; a missing folder is a NoSuchFileException. */
    public static Tokenizer forDirectory(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "model/tokenizer folder not found");
        }
        if (Files.isRegularFile(dir.resolve("tokenizer.json"))) {
            return HfTokenizer.load(dir);
        }
        if (Files.isRegularFile(dir.resolve("vocab.json")) && Files.isRegularFile(dir.resolve("merges.txt"))) {
            return Gpt2BpeTokenizer.loadDirectory(dir);
        }
        return new ByteTokenizer();
    }
}
