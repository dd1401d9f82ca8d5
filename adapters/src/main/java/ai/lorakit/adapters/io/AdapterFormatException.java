package ai.lorakit.adapters.io;

import java.io.IOException;

/**
 * A PEFT adapter directory that lorakit cannot load: a missing file, an unsupported option, or tensors that do
 * not fit the layers. The message names the file, the key, what was expected and what was found.
 */
public class AdapterFormatException extends IOException {

    public AdapterFormatException(String message) {
        super(message);
    }

    public AdapterFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
