package ai.lorakit.gpu;

/** An op was given tensors whose shapes, dtypes or owners do not fit; raised before any work is done. */
public class ShapeException extends GpuException {
    public ShapeException(String message) {
        super(message);
    }
}
