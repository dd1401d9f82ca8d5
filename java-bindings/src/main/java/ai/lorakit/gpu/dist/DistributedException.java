package ai.lorakit.gpu.dist;

import ai.lorakit.gpu.GpuException;

/** A process group or NCCL failure: the library could not load, or a collective failed (the message says which). */
public class DistributedException extends GpuException {
    public DistributedException(String message) {
        super(message);
    }

    public DistributedException(String message, Throwable cause) {
        super(message, cause);
    }
}
