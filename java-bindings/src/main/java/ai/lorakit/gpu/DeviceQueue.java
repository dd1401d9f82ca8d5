package ai.lorakit.gpu;

/**
 * An in-order queue of device work (an OpenCL command queue, a CUDA stream). Work on one queue runs in
 * submission order; {@link Device#defaultQueue()} carries memory transfers and every launch that names no
 * queue.
 */
public interface DeviceQueue extends AutoCloseable {

    /** Blocks until everything submitted to this queue has finished. */
    void synchronize();

    /** Makes later work on this queue wait for {@code event} (which may come from another queue). */
    void waitFor(DeviceEvent event);

    /** Releases the queue after finishing its work; the default queue is closed only with the device. */
    @Override
    void close();
}
