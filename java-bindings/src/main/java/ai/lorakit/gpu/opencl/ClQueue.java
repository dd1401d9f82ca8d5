package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.GpuException;
import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import java.nio.IntBuffer;

import static org.lwjgl.opencl.CL10.CL_QUEUE_PROFILING_ENABLE;
import static org.lwjgl.opencl.CL10.clCreateCommandQueue;
import static org.lwjgl.opencl.CL10.clFinish;
import static org.lwjgl.opencl.CL10.clReleaseCommandQueue;
import static org.lwjgl.opencl.CL12.clEnqueueBarrierWithWaitList;
import static org.lwjgl.opencl.CL12.clEnqueueMarkerWithWaitList;

/** An in-order OpenCL command queue with profiling enabled (so that events can time work). */
final class ClQueue implements DeviceQueue {
    final OpenClDevice owner;
    final long handle;
    boolean released;

    ClQueue(OpenClDevice owner, long context, long device) {
        this.owner = owner;
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            long q = clCreateCommandQueue(context, device, CL_QUEUE_PROFILING_ENABLE, err);
            ClStatus.check(err.get(0), "clCreateCommandQueue", "on " + owner.info().deviceName());
            this.handle = q;
        }
    }

    private void checkOpen(String call) {
        owner.checkOpen(call);
        if (released) {
            throw new GpuException(call + ": queue was closed");
        }
    }

    @Override
    public void synchronize() {
        checkOpen("clFinish");
        ClStatus.check(clFinish(handle), "clFinish", "on " + owner.info().deviceName());
    }

    @Override
    public void waitFor(DeviceEvent event) {
        checkOpen("clEnqueueBarrierWithWaitList");
        if (!(event instanceof ClEvent e) || e.owner != owner || e.released) {
            throw new GpuException("waitFor: " + event + " is not an open event of " + owner);
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer list = stack.mallocPointer(1).put(0, e.handle);
            ClStatus.check(clEnqueueBarrierWithWaitList(handle, list, null), "clEnqueueBarrierWithWaitList", "");
        }
    }

    /** A marker event after everything queued so far. */
    ClEvent marker() {
        checkOpen("clEnqueueMarkerWithWaitList");
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer ev = stack.mallocPointer(1);
            ClStatus.check(clEnqueueMarkerWithWaitList(handle, null, ev), "clEnqueueMarkerWithWaitList", "");
            return new ClEvent(owner, ev.get(0));
        }
    }

    @Override
    public void close() {
        if (released || owner.isClosed()) {
            return;
        }
        if (this == owner.defaultQueue()) {
            throw new GpuException("close: the default queue is closed only with its device");
        }
        synchronize();
        release();
        owner.forget(this);
    }

    void release() {
        if (!released) {
            released = true;
            clReleaseCommandQueue(handle);
        }
    }

    @Override
    public String toString() {
        return "queue@" + owner.name() + (released ? " (closed)" : "");
    }
}
