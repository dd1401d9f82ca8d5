package ai.lorakit.models.decoder;

import java.io.IOException;

/** A model checkpoint (config.json + safetensors) that lorakit cannot load; the message names file and key. */
public final class CheckpointFormatException extends IOException {

    public CheckpointFormatException(String message) {
        super(message);
    }

    public CheckpointFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
