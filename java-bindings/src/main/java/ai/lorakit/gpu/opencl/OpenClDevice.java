package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.Device;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.DeviceOutOfMemoryException;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelModule;
import ai.lorakit.gpu.KernelSources;
import org.lwjgl.PointerBuffer;
import org.lwjgl.system.MemoryStack;

import java.nio.ByteBuffer;
import java.nio.IntBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;

import static org.lwjgl.opencl.CL10.CL_CONTEXT_PLATFORM;
import static org.lwjgl.opencl.CL10.CL_MEM_READ_WRITE;
import static org.lwjgl.opencl.CL10.clCreateBuffer;
import static org.lwjgl.opencl.CL10.clCreateContext;
import static org.lwjgl.opencl.CL10.clEnqueueCopyBuffer;
import static org.lwjgl.opencl.CL10.clEnqueueNDRangeKernel;
import static org.lwjgl.opencl.CL10.clEnqueueReadBuffer;
import static org.lwjgl.opencl.CL10.clEnqueueWriteBuffer;
import static org.lwjgl.opencl.CL10.clFinish;
import static org.lwjgl.opencl.CL10.clReleaseContext;
import static org.lwjgl.opencl.CL10.clReleaseMemObject;
import static org.lwjgl.opencl.CL10.clSetKernelArg1f;
import static org.lwjgl.opencl.CL10.clSetKernelArg1i;
import static org.lwjgl.opencl.CL10.clSetKernelArg1l;
import static org.lwjgl.opencl.CL10.clSetKernelArg1p;
import static org.lwjgl.opencl.CL12.clEnqueueFillBuffer;

/**
 * A {@link Device} on one OpenCL device through LWJGL 3 (ARCHITECTURE.md, layer 1): one context, an in-order
 * default queue with profiling (for event timing), buffers tracked and freed on {@link #close()}, programs
 * built from {@link KernelSources} per source file on first use of one of its kernels (kcompat.h text + the
 * file, {@code -cl-std=CL1.2}) with the build log in the exception, kernels cached by name.
 *
 * <p>Device choice ({@link #open(String)}): {@code auto} prefers a GPU, then an accelerator, then a CPU (PoCL
 * in CI); "N", "P.D" or a name substring pick one explicitly (see {@link #devices()}). The system property
 * {@value #DEBUG_SYNC_PROPERTY}=true finishes the queue after every launch so that an asynchronous failure is
 * reported by the launch that caused it.
 */
public final class OpenClDevice implements Device {
    /** Finish the queue after each launch and check it (debugging). */
    public static final String DEBUG_SYNC_PROPERTY = "lorakit.gpu.debugSync";
    /** Options every program is built with. */
    static final String BUILD_OPTIONS = "-cl-std=CL1.2";

    private final OpenClDeviceInfo info;
    private final long platform;
    private final long device;
    private final long context;
    private final ClQueue defaultQueue;
    private final boolean debugSync = Boolean.getBoolean(DEBUG_SYNC_PROPERTY);
    private final Set<ClBuffer> buffers = Collections.newSetFromMap(new IdentityHashMap<>());
    private final List<ClModule> modules = new ArrayList<>();
    private final List<ClQueue> queues = new ArrayList<>();
    private final Set<ClEvent> events = Collections.newSetFromMap(new IdentityHashMap<>());
    private boolean closed;

    private OpenClDevice(ClPlatforms.Found f) {
        this.info = f.info();
        this.platform = f.platform();
        this.device = f.device();
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            PointerBuffer props = stack.mallocPointer(3).put(CL_CONTEXT_PLATFORM).put(platform).put(0).flip();
            long ctx = clCreateContext(props, device, null, 0, err);
            ClStatus.check(err.get(0), "clCreateContext", "on " + info);
            this.context = ctx;
        }
        try {
            this.defaultQueue = new ClQueue(this, context, device);
        } catch (RuntimeException e) {
            clReleaseContext(context);
            throw e;
        }
    }

    /**
     * Opens the device {@code selector} names (null or "auto": prefer a GPU, else a CPU). Throws
     * {@link GpuException} with the reason when there is no OpenCL runtime, no platform, or no matching device;
     * never crashes the JVM.
     */
    public static OpenClDevice open(String selector) {
        return new OpenClDevice(ClPlatforms.select(selector, listOrThrow()));
    }

    /**
     * Every OpenCL device on this machine, usable or not (for {@code lorakit info}); throws {@link GpuException}
     * with the reason when there is no runtime or no platform.
     */
    public static List<OpenClDeviceInfo> devices() {
        return listOrThrow().stream().map(ClPlatforms.Found::info).toList();
    }

    /** The device {@code selector} picks (as {@link #open} would), without opening it; throws like open. */
    public static OpenClDeviceInfo selected(String selector) {
        return ClPlatforms.select(selector, listOrThrow()).info();
    }

    /**
     * Why no device matching {@code selector} can be used here, or null if one can (probes through LWJGL,
     * catching a missing runtime or native library instead of failing).
     */
    public static String unavailableReason(String selector) {
        try {
            ClPlatforms.select(selector, listOrThrow());
            return null;
        } catch (GpuException e) {
            return e.getMessage();
        }
    }

    private static List<ClPlatforms.Found> listOrThrow() {
        ClRuntime.configure();
        try {
            return ClPlatforms.list();
        } catch (GpuException e) {
            throw e;
        } catch (LinkageError | RuntimeException e) {
            // no libOpenCL.so.1 (LWJGL's CL class fails to initialise), or liblwjgl.so could not be loaded
            String lwjgl = ClRuntime.takeDiagnostics();
            throw new GpuException("OpenCL: the runtime could not be loaded through LWJGL (" + e
                    + (lwjgl.isEmpty() ? "" : "; LWJGL: " + lwjgl)
                    + "); Debian: apt-get install ocl-icd-libopencl1 pocl-opencl-icd", e);
        }
    }

    /** What the runtime says about this device. */
    public OpenClDeviceInfo info() {
        return info;
    }

    @Override
    public String name() {
        return "opencl:" + info.id();
    }

    @Override
    public String description() {
        return info.platformName() + " / " + info.deviceName() + " (" + info.type() + ", " + info.deviceVersion()
                + ", " + info.openClC() + ")";
    }

    @Override
    public String toString() {
        return "OpenClDevice[" + info.id() + " " + info.deviceName() + "]";
    }

    @Override
    public int maxBlockThreads() {
        return info.maxWorkGroupSize();
    }

    long context() {
        return context;
    }

    long deviceHandle() {
        return device;
    }

    void checkOpen(String call) {
        if (closed) {
            throw new GpuException(call + ": OpenCL device " + info.id() + " is closed");
        }
    }

    // ================================================================ memory

    @Override
    public DeviceBuffer alloc(long bytes) {
        checkOpen("alloc");
        if (bytes < 0) {
            throw new IllegalArgumentException("alloc: negative size " + bytes);
        }
        if (bytes > info.maxAllocBytes()) {
            throw new GpuException("alloc: " + bytes + " bytes exceed CL_DEVICE_MAX_MEM_ALLOC_SIZE "
                    + info.maxAllocBytes() + " of " + info.deviceName());
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            IntBuffer err = stack.mallocInt(1);
            long mem = clCreateBuffer(context, CL_MEM_READ_WRITE, Math.max(bytes, 4), err);   // 0 is invalid in CL
            int status = allocStatusHook == null ? err.get(0) : allocStatusHook.applyAsInt(err.get(0));
            if (status != 0 && mem != 0) {
                clReleaseMemObject(mem);   // only when the test hook fails a successful allocation
            }
            String call = "clCreateBuffer(" + bytes + " bytes)";
            if (status == CL_MEM_OBJECT_ALLOCATION_FAILURE || status == CL_OUT_OF_RESOURCES) {
                throw new DeviceOutOfMemoryException(new DeviceException(call, status, ClStatus.name(status), ""),
                        "a device buffer", bytes, info.deviceName(), -1, info.globalMemBytes());
            }
            ClStatus.check(status, call, "on " + info.deviceName());
            ClBuffer b = new ClBuffer(this, mem, bytes);
            buffers.add(b);
            return b;
        }
    }

    @Override
    public void free(DeviceBuffer buffer) {
        ClBuffer b = own("free", buffer, true);
        if (b != null && !b.freed) {
            b.freed = true;
            buffers.remove(b);
            ClStatus.check(clReleaseMemObject(b.mem), "clReleaseMemObject", "");
        }
    }

    static final int CL_MEM_OBJECT_ALLOCATION_FAILURE = -4;
    static final int CL_OUT_OF_RESOURCES = -5;
    /**
     * Tests only: maps clCreateBuffer's status (PoCL allocates lazily and does not fail for lack of memory where
     * a GPU would), so that the out-of-memory path can be tested. Null in production.
     */
    static volatile java.util.function.IntUnaryOperator allocStatusHook;

    /** Buffers allocated and not yet freed (leak checks in tests). */
    public int liveBuffers() {
        return buffers.size();
    }

    /** This device's buffer, open; with {@code lenient} a freed one (or one of a closed device) gives null. */
    private ClBuffer own(String call, DeviceBuffer buffer, boolean lenient) {
        if (!(buffer instanceof ClBuffer b) || b.owner != this) {
            throw new GpuException(call + ": " + buffer + " is not a buffer of " + this);
        }
        if (lenient) {
            return closed ? null : b;
        }
        checkOpen(call);
        if (b.freed) {
            throw new GpuException(call + ": use of freed " + b);
        }
        return b;
    }

    private ClBuffer range(String call, DeviceBuffer buffer, long offset, long bytes) {
        ClBuffer b = own(call, buffer, false);
        if (offset < 0 || bytes < 0 || offset + bytes > b.bytes) {
            throw new GpuException(call + ": byte range [" + offset + ", " + (offset + bytes) + ") is outside " + b);
        }
        return b;
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, float[] src) {
        ClBuffer b = range("clEnqueueWriteBuffer", dst, dstOffset, 4L * src.length);
        if (src.length > 0) {
            ClStatus.check(clEnqueueWriteBuffer(defaultQueue.handle, b.mem, true, dstOffset, src, null, null),
                    "clEnqueueWriteBuffer", b.toString());
        }
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, int[] src) {
        ClBuffer b = range("clEnqueueWriteBuffer", dst, dstOffset, 4L * src.length);
        if (src.length > 0) {
            ClStatus.check(clEnqueueWriteBuffer(defaultQueue.handle, b.mem, true, dstOffset, src, null, null),
                    "clEnqueueWriteBuffer", b.toString());
        }
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, short[] src) {
        ClBuffer b = range("clEnqueueWriteBuffer", dst, dstOffset, 2L * src.length);
        if (src.length > 0) {
            ClStatus.check(clEnqueueWriteBuffer(defaultQueue.handle, b.mem, true, dstOffset, src, null, null),
                    "clEnqueueWriteBuffer", b.toString());
        }
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, ByteBuffer src) {
        requireDirect("clEnqueueWriteBuffer", src);
        ClBuffer b = range("clEnqueueWriteBuffer", dst, dstOffset, src.remaining());
        if (src.hasRemaining()) {
            ClStatus.check(clEnqueueWriteBuffer(defaultQueue.handle, b.mem, true, dstOffset, src, null, null),
                    "clEnqueueWriteBuffer", b.toString());
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, float[] dst) {
        ClBuffer b = range("clEnqueueReadBuffer", src, srcOffset, 4L * dst.length);
        if (dst.length > 0) {
            ClStatus.check(clEnqueueReadBuffer(defaultQueue.handle, b.mem, true, srcOffset, dst, null, null),
                    "clEnqueueReadBuffer", b.toString());
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, int[] dst) {
        ClBuffer b = range("clEnqueueReadBuffer", src, srcOffset, 4L * dst.length);
        if (dst.length > 0) {
            ClStatus.check(clEnqueueReadBuffer(defaultQueue.handle, b.mem, true, srcOffset, dst, null, null),
                    "clEnqueueReadBuffer", b.toString());
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, short[] dst) {
        ClBuffer b = range("clEnqueueReadBuffer", src, srcOffset, 2L * dst.length);
        if (dst.length > 0) {
            ClStatus.check(clEnqueueReadBuffer(defaultQueue.handle, b.mem, true, srcOffset, dst, null, null),
                    "clEnqueueReadBuffer", b.toString());
        }
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, ByteBuffer dst) {
        requireDirect("clEnqueueReadBuffer", dst);
        ClBuffer b = range("clEnqueueReadBuffer", src, srcOffset, dst.remaining());
        if (dst.hasRemaining()) {
            ClStatus.check(clEnqueueReadBuffer(defaultQueue.handle, b.mem, true, srcOffset, dst, null, null),
                    "clEnqueueReadBuffer", b.toString());
        }
    }

    private static void requireDirect(String call, ByteBuffer b) {
        if (!b.isDirect()) {
            throw new IllegalArgumentException(call + ": the ByteBuffer must be direct (ByteBuffer.allocateDirect)");
        }
    }

    @Override
    public void copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long bytes) {
        ClBuffer s = range("clEnqueueCopyBuffer", src, srcOffset, bytes);
        ClBuffer d = range("clEnqueueCopyBuffer", dst, dstOffset, bytes);
        if (s == d && srcOffset < dstOffset + bytes && dstOffset < srcOffset + bytes) {
            throw new GpuException("clEnqueueCopyBuffer: overlapping ranges in " + s);
        }
        if (bytes > 0) {
            ClStatus.check(clEnqueueCopyBuffer(defaultQueue.handle, s.mem, d.mem, srcOffset, dstOffset, bytes, null,
                    null), "clEnqueueCopyBuffer", s + " -> " + d);
        }
    }

    @Override
    public void fill(DeviceBuffer dst, long offset, long bytes, int pattern, int patternBytes) {
        if (patternBytes != 1 && patternBytes != 2 && patternBytes != 4) {
            throw new IllegalArgumentException("fill: patternBytes must be 1, 2 or 4, got " + patternBytes);
        }
        ClBuffer b = range("clEnqueueFillBuffer", dst, offset, bytes);
        if (offset % patternBytes != 0 || bytes % patternBytes != 0) {
            throw new GpuException("clEnqueueFillBuffer: offset " + offset + " and size " + bytes
                    + " must be multiples of the pattern size " + patternBytes);
        }
        if (bytes == 0) {
            return;
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            ByteBuffer p = stack.malloc(patternBytes);
            for (int i = 0; i < patternBytes; i++) {
                p.put(i, (byte) (pattern >>> (8 * i)));
            }
            ClStatus.check(clEnqueueFillBuffer(defaultQueue.handle, b.mem, p, offset, bytes, null, null),
                    "clEnqueueFillBuffer", b.toString());
        }
    }

    // ================================================================ kernels

    @Override
    public KernelModule load(KernelSources sources) {
        checkOpen("load");
        ClModule m = new ClModule(this, sources);
        modules.add(m);
        return m;
    }

    /** Total milliseconds spent in clBuildProgram by this device's open modules (cold vs warm PoCL cache). */
    public double buildMillis() {
        return modules.stream().mapToLong(ClModule::buildNanos).sum() / 1e6;
    }

    void forget(ClModule m) {
        modules.remove(m);
    }

    @Override
    public void launch(DeviceQueue queue, Kernel kernel, Dim3 grid, Dim3 block, Object... args) {
        String call = "clEnqueueNDRangeKernel(" + kernel.name() + ")";
        checkOpen(call);
        if (!(kernel instanceof ClModule.ClKernel k) || k.module().device() != this) {
            throw new GpuException(call + ": " + kernel + " was not loaded on " + this);
        }
        if (k.module().isReleased()) {
            throw new GpuException(call + ": its module was closed");
        }
        if (!(queue instanceof ClQueue q) || q.owner != this || q.released) {
            throw new GpuException(call + ": " + queue + " is not an open queue of " + this);
        }
        if (block.volume() > info.maxWorkGroupSize()) {
            throw new GpuException(call + ": block " + block + " has " + block.volume() + " threads; "
                    + info.deviceName() + " allows at most " + info.maxWorkGroupSize());
        }
        long handle = k.handle();
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            int rc;
            if (a instanceof DeviceBuffer db) {
                rc = clSetKernelArg1p(handle, i, own(call, db, false).mem);
            } else if (a instanceof Integer v) {
                rc = clSetKernelArg1i(handle, i, v);
            } else if (a instanceof Float v) {
                rc = clSetKernelArg1f(handle, i, v);
            } else if (a instanceof Long v) {
                rc = clSetKernelArg1l(handle, i, v);
            } else {
                throw new IllegalArgumentException(call + ": argument " + i + " is a "
                        + (a == null ? "null" : a.getClass().getSimpleName())
                        + "; kernel arguments are DeviceBuffer, Integer, Float or Long");
            }
            ClStatus.check(rc, "clSetKernelArg(" + kernel.name() + ", arg " + i + ")", "");
        }
        try (MemoryStack stack = MemoryStack.stackPush()) {
            PointerBuffer global = stack.mallocPointer(3);
            PointerBuffer local = stack.mallocPointer(3);
            global.put(0, (long) grid.x() * block.x()).put(1, (long) grid.y() * block.y()).put(2, (long) grid.z() * block.z());
            local.put(0, block.x()).put(1, block.y()).put(2, block.z());
            ClStatus.check(clEnqueueNDRangeKernel(q.handle, handle, 3, null, global, local, null, null), call,
                    "grid " + grid + " block " + block + " on " + info.deviceName());
        }
        if (debugSync) {
            ClStatus.check(clFinish(q.handle), "clFinish after " + kernel.name(), "(" + DEBUG_SYNC_PROPERTY + ")");
        }
    }

    // ================================================================ queues, events

    @Override
    public DeviceQueue defaultQueue() {
        checkOpen("defaultQueue");
        return defaultQueue;
    }

    @Override
    public DeviceQueue createQueue() {
        checkOpen("clCreateCommandQueue");
        ClQueue q = new ClQueue(this, context, device);
        queues.add(q);
        return q;
    }

    void forget(ClQueue q) {
        queues.remove(q);
    }

    @Override
    public DeviceEvent record(DeviceQueue queue) {
        checkOpen("clEnqueueMarkerWithWaitList");
        if (!(queue instanceof ClQueue q) || q.owner != this || q.released) {
            throw new GpuException("record: " + queue + " is not an open queue of " + this);
        }
        ClEvent e = q.marker();
        events.add(e);
        return e;
    }

    void forget(ClEvent e) {
        events.remove(e);
    }

    @Override
    public void synchronize() {
        checkOpen("clFinish");
        defaultQueue.synchronize();
        for (ClQueue q : queues) {
            q.synchronize();
        }
    }

    @Override
    public boolean isClosed() {
        return closed;
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        RuntimeException first = null;
        try {
            synchronize();
        } catch (RuntimeException e) {
            first = e;
        }
        closed = true;
        for (ClEvent e : new ArrayList<>(events)) {
            e.release();
        }
        for (ClModule m : new ArrayList<>(modules)) {
            m.release();
        }
        for (ClBuffer b : buffers) {
            b.freed = true;
            clReleaseMemObject(b.mem);
        }
        buffers.clear();
        for (ClQueue q : new ArrayList<>(queues)) {
            q.release();
        }
        defaultQueue.release();
        int rc = clReleaseContext(context);
        if (first != null) {
            throw first;
        }
        ClStatus.check(rc, "clReleaseContext", "");
    }

    /** One cl_mem. */
    static final class ClBuffer implements DeviceBuffer {
        final OpenClDevice owner;
        final long mem;
        final long bytes;
        boolean freed;

        ClBuffer(OpenClDevice owner, long mem, long bytes) {
            this.owner = owner;
            this.mem = mem;
            this.bytes = bytes;
        }

        @Override
        public Device device() {
            return owner;
        }

        @Override
        public long bytes() {
            return bytes;
        }

        @Override
        public boolean isFreed() {
            return freed || owner.closed;
        }

        @Override
        public void close() {
            owner.free(this);
        }

        @Override
        public String toString() {
            return "buffer(" + bytes + " bytes" + (isFreed() ? ", freed" : "") + ")@" + owner.name();
        }
    }
}
