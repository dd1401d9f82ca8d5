package ai.lorakit.gpu;

/**
 * A block of device memory allocated by {@link Device#alloc}. Offsets and sizes are in bytes. Closing it frees
 * the memory (idempotent); any later use of it throws {@link GpuException}. The device frees every buffer
 * still open when it is closed.
 */
public interface DeviceBuffer extends AutoCloseable {

    /** The device that owns this buffer. */
    Device device();

    /** Size in bytes, as requested. */
    long bytes();

    /** Whether the buffer was freed (by {@link #close()}, {@link Device#free} or closing the device). */
    boolean isFreed();

    /** Frees the memory; same as {@code device().free(this)}. */
    @Override
    void close();
}
