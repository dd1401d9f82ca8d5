package ai.lorakit.gpu;

/**
 * Root of lorakit's unchecked exceptions for device, backend and op failures. Messages name the op or native
 * call, the tensors involved and the problem, and where possible the remedy.
 */
public class GpuException extends RuntimeException {
    public GpuException(String message) {
        super(message);
    }

    public GpuException(String message, Throwable cause) {
        super(message, cause);
    }
}
