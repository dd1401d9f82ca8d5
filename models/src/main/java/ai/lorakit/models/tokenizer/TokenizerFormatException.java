package ai.lorakit.models.tokenizer;

import java.io.IOException;

/**
 * A tokenizer file that cannot be used: not JSON, a field missing or of the wrong type, or a component
 * (normalizer, pre-tokenizer, model, post-processor, decoder) that lorakit does not implement. The message names
 * the file and the component.
 */
public final class TokenizerFormatException extends IOException {

    private static final long serialVersionUID = 1L;

    public TokenizerFormatException(String message) {
        super(message);
    }

    public TokenizerFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
