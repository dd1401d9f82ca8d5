package ai.lorakit.adapters.io;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A safetensors file that is malformed or inconsistent. The message names the file, the tensor (when one is
 * concerned) and the problem.
 */
public class SafetensorsException extends IOException {

    public SafetensorsException(String message) {
        super(message);
    }

    public SafetensorsException(String message, Throwable cause) {
        super(message, cause);
    }

    /** "{file}: {problem}". */
    static SafetensorsException of(Path file, String problem) {
        return new SafetensorsException(file + ": " + problem);
    }

    /** "{file}: tensor '{name}': {problem}". */
    static SafetensorsException of(Path file, String tensor, String problem) {
        return new SafetensorsException(file + ": tensor '" + tensor + "': " + problem);
    }
}
