package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.GpuException;
import org.lwjgl.system.MemoryStack;

import java.nio.LongBuffer;

import static org.lwjgl.opencl.CL10.CL_PROFILING_COMMAND_END;
import static org.lwjgl.opencl.CL10.clGetEventProfilingInfo;
import static org.lwjgl.opencl.CL10.clReleaseEvent;
import static org.lwjgl.opencl.CL10.clWaitForEvents;

/** A marker event; its CL_PROFILING_COMMAND_END is the device time at which the work before it finished. */
final class ClEvent implements DeviceEvent {
    final OpenClDevice owner;
    final long handle;
    boolean released;

    ClEvent(OpenClDevice owner, long handle) {
        this.owner = owner;
        this.handle = handle;
    }

    private void checkOpen(String call) {
        owner.checkOpen(call);
        if (released) {
            throw new GpuException(call + ": event was closed");
        }
    }

    @Override
    public void synchronize() {
        checkOpen("clWaitForEvents");
        ClStatus.check(clWaitForEvents(handle), "clWaitForEvents", "");
    }

    /** Device time (ns) at which the event completed. */
    long endNanos() {
        synchronize();
        try (MemoryStack stack = MemoryStack.stackPush()) {
            LongBuffer t = stack.mallocLong(1);
            ClStatus.check(clGetEventProfilingInfo(handle, CL_PROFILING_COMMAND_END, t, null),
                    "clGetEventProfilingInfo(CL_PROFILING_COMMAND_END)", "");
            return t.get(0);
        }
    }

    @Override
    public double millisSince(DeviceEvent earlier) {
        if (!(earlier instanceof ClEvent e) || e.owner != owner) {
            throw new GpuException("millisSince: " + earlier + " is not an event of " + owner);
        }
        return (endNanos() - e.endNanos()) / 1e6;
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
            clReleaseEvent(handle);
        }
    }

    @Override
    public String toString() {
        return "event@" + owner.name() + (released ? " (closed)" : "");
    }
}
