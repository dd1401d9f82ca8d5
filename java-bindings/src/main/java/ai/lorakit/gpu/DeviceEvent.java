package ai.lorakit.gpu;

/**
 * A point in a queue's work ({@link Device#record}), completed when everything submitted to the queue before
 * it has finished. Two events of the same queue time the work between them.
 */
public interface DeviceEvent extends AutoCloseable {

    /** Blocks until the event has completed. */
    void synchronize();

    /** Milliseconds of device time from {@code earlier} to this event (both completed first). */
    double millisSince(DeviceEvent earlier);

    @Override
    void close();
}
