package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.GpuException;

/**
 * A CUDA stream as a {@link DeviceQueue}: the device's default queue (its own non-blocking stream, or a user's
 * stream it was opened on), or one made by {@link CudaDevice#createQueue()}. A borrowed stream is never destroyed.
 */
public final class CudaQueue implements DeviceQueue {
    final CudaDevice owner;
    final long stream;
    final boolean owned;
    final boolean isDefault;
    boolean released;

    CudaQueue(CudaDevice owner, long stream, boolean owned, boolean isDefault) {
        this.owner = owner;
        this.stream = stream;
        this.owned = owned;
        this.isDefault = isDefault;
    }

    /** The raw CUstream. */
    public long stream() {
        return stream;
    }

    @Override
    public void synchronize() {
        owner.checkOpen("cuStreamSynchronize");
        owner.checkNotCapturing("cuStreamSynchronize");
        if (released) {
            throw new GpuException("cuStreamSynchronize: the queue was closed");
        }
        owner.makeCurrent();
        owner.driver.streamSynchronize(stream);
    }

    @Override
    public void waitFor(DeviceEvent event) {
        owner.checkOpen("cuStreamWaitEvent");
        if (!(event instanceof CudaEvent e) || e.owner != owner || e.released) {
            throw new GpuException("cuStreamWaitEvent: " + event + " is not an open event of " + owner);
        }
        owner.makeCurrent();
        owner.driver.streamWaitEvent(stream, e.event);
    }

    @Override
    public void close() {
        if (isDefault || released || owner.isClosed()) {
            return;
        }
        synchronize();
        release();
        owner.forget(this);
    }

    void release() {
        if (!released) {
            released = true;
            if (owned) {
                owner.driver.streamDestroy(stream);
            }
        }
    }

    @Override
    public String toString() {
        return "stream(0x" + Long.toHexString(stream) + (owned ? "" : ", borrowed") + ")@" + owner.name();
    }
}
