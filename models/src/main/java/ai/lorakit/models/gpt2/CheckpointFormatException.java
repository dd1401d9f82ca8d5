package ai.lorakit.models.gpt2;

import java.io.IOException;

/** A GPT-2 checkpoint (config.json + model.safetensors) that lorakit cannot load; the message names file and key. */
public final class CheckpointFormatException extends IOException {

    public CheckpointFormatException(String message) {
        super(message);
    }

    public CheckpointFormatException(String message, Throwable cause) {
        super(message, cause);
    }
}
