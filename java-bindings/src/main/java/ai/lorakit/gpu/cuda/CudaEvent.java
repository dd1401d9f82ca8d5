package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.GpuException;

/** A CUevent recorded on a stream ({@link CudaDevice#record}); timing with cuEventElapsedTime. */
public final class CudaEvent implements DeviceEvent {
    final CudaDevice owner;
    final long event;
    boolean released;

    CudaEvent(CudaDevice owner, long event) {
        this.owner = owner;
        this.event = event;
    }

    @Override
    public void synchronize() {
        check("cuEventSynchronize");
        owner.checkNotCapturing("cuEventSynchronize");
        owner.makeCurrent();
        owner.driver.eventSynchronize(event);
    }

    @Override
    public double millisSince(DeviceEvent earlier) {
        check("cuEventElapsedTime");
        if (!(earlier instanceof CudaEvent e) || e.owner != owner || e.released) {
            throw new GpuException("cuEventElapsedTime: " + earlier + " is not an open event of " + owner);
        }
        e.synchronize();
        synchronize();
        return owner.driver.eventElapsedTime(e.event, event);
    }

    private void check(String call) {
        owner.checkOpen(call);
        if (released) {
            throw new GpuException(call + ": the event was closed");
        }
    }

    @Override
    public void close() {
        if (!released && !owner.isClosed()) {
            release();
            owner.forget(this);
        }
    }

    void release() {
        if (!released) {
            released = true;
            owner.makeCurrent();
            owner.driver.eventDestroy(event);
        }
    }

    @Override
    public String toString() {
        return "event(0x" + Long.toHexString(event) + ")@" + owner.name();
    }
}
