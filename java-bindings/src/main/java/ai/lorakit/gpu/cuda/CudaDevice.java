package ai.lorakit.gpu.cuda;

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

import java.lang.foreign.Arena;
import java.nio.ByteBuffer;
import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * A {@link Device} on one NVIDIA GPU through the CUDA driver API, written once over {@link CudaDriver} so that the
 * JCuda device ({@code ai.lorakit.gpu.jcuda.JCudaDevice}) and the FFM device ({@code ai.lorakit.gpu.ffm.FfmCudaDevice})
 * share every rule. What it does:
 * <ul>
 *   <li>the device's PRIMARY context (cuDevicePrimaryCtxRetain + cuCtxSetCurrent, TOOLCHAIN.md), so JCuda, FFM,
 *       liblorakit.so (CUDA runtime) and the user's code share allocations; made current on whichever thread uses
 *       the device ({@link #makeCurrent()});</li>
 *   <li>the default queue is a non-blocking stream of its own, or the user's stream it was opened on (interop); every
 *       launch, device copy and fill is queued on a stream (nothing on the legacy stream), so a whole training step
 *       can be captured into a CUDA graph ({@link #capture});</li>
 *   <li>host transfers are blocking: the default stream is synchronised first (the data the kernels produced), the
 *       copy is synchronous, and an upload waits for the legacy stream too (a pageable upload may still be in
 *       flight when cuMemcpyHtoD returns);</li>
 *   <li>kernels come from the fatbin in the jar (cuModuleLoadData); each {@link CudaKernel} builds its parameter
 *       block once ({@link ParamBlock}) and refills it per launch;</li>
 *   <li>limits are checked before any native call (block size, grid y/z, byte ranges) with messages naming the call;
 *       a failed call throws {@link ai.lorakit.gpu.DeviceException} naming it with the CUDA error's name and text;
 *       {@value #DEBUG_SYNC_PROPERTY}=true synchronises after each launch so an asynchronous fault is blamed on the
 *       launch that caused it.</li>
 * </ul>
 * Not thread-safe (one thread at a time; the context follows the thread).
 */
public abstract class CudaDevice implements Device {
    /** Synchronise after every launch and check it (debugging), as OpenClDevice. */
    public static final String DEBUG_SYNC_PROPERTY = "lorakit.gpu.debugSync";

    /** CU_DEVICE_ATTRIBUTE_* values used here. */
    static final int ATTR_MAX_THREADS_PER_BLOCK = 1;
    static final int ATTR_MAX_GRID_DIM_Y = 6;
    static final int ATTR_MULTIPROCESSOR_COUNT = 16;
    static final int ATTR_CC_MAJOR = 75;
    static final int ATTR_CC_MINOR = 76;
    static final int ATTR_MEMORY_POOLS_SUPPORTED = 115;

    /** The CUDA grid's y and z limit. */
    static final int MAX_GRID_YZ = 65535;

    private static final ThreadLocal<long[]> CURRENT_CTX = ThreadLocal.withInitial(() -> new long[1]);
    /** CUdevices whose primary context lorakit holds one extra reference to until the JVM exits (see constructor). */
    private static final Set<String> PINNED = Collections.synchronizedSet(new java.util.HashSet<>());

    final CudaDriver driver;
    private final int ordinal;
    private final int cuDevice;
    private final long context;
    private final String deviceName;
    private final long totalMem;
    private final int ccMajor;
    private final int ccMinor;
    private final int maxThreads;
    private final int multiprocessors;
    private final boolean memoryPools;
    private final int driverVersion;
    private final CudaQueue defaultQueue;
    private final boolean debugSync = Boolean.getBoolean(DEBUG_SYNC_PROPERTY);
    private final Arena paramArena = Arena.ofShared();
    private final Set<CudaBuffer> buffers = Collections.newSetFromMap(new IdentityHashMap<>());
    private long allocatedBytes;       // OWNED + CAPTURED buffers not yet freed
    private long peakAllocatedBytes;
    private long allocations;          // alloc calls since the device opened
    private final List<CudaModule> modules = new ArrayList<>();
    private final List<CudaQueue> queues = new ArrayList<>();
    private final Set<CudaEvent> events = Collections.newSetFromMap(new IdentityHashMap<>());
    private final Set<CudaGraph> graphs = Collections.newSetFromMap(new IdentityHashMap<>());
    private Capture capture;   // non-null while a graph is being captured
    private boolean closed;

    /**
     * Opens device {@code ordinal} through {@code driver}: cuInit, the primary context, the device's facts, and the
     * default stream ({@code externalStream} when non-zero: a user's CUstream in the same context, never destroyed).
     */
    @SuppressWarnings("this-escape")   // the default CudaQueue only keeps the reference; nothing calls back
    protected CudaDevice(CudaDriver driver, int ordinal, long externalStream) {
        this.driver = driver;
        this.ordinal = ordinal;
        driver.init();
        int count = driver.deviceCount();
        if (ordinal < 0 || ordinal >= count) {
            throw new GpuException("CUDA device " + ordinal + " does not exist: the driver lists " + count + " device(s)");
        }
        this.driverVersion = driver.driverVersion();
        this.cuDevice = driver.deviceGet(ordinal);
        this.context = driver.primaryCtxRetain(cuDevice);
        try {
            // One extra reference per device for the JVM's life: opening and closing devices (one backend per test in
            // the contract suite) would otherwise destroy and re-create the primary context each time (~0.1-0.5 s).
            if (PINNED.add(driver.binding() + ":" + cuDevice)) {
                driver.primaryCtxRetain(cuDevice);
            }
            driver.ctxSetCurrent(context);
            CURRENT_CTX.get()[0] = context;
            this.deviceName = driver.deviceName(cuDevice);
            this.totalMem = driver.deviceTotalMem(cuDevice);
            this.ccMajor = driver.deviceAttribute(ATTR_CC_MAJOR, cuDevice);
            this.ccMinor = driver.deviceAttribute(ATTR_CC_MINOR, cuDevice);
            this.maxThreads = driver.deviceAttribute(ATTR_MAX_THREADS_PER_BLOCK, cuDevice);
            this.multiprocessors = driver.deviceAttribute(ATTR_MULTIPROCESSOR_COUNT, cuDevice);
            this.memoryPools = driver.deviceAttribute(ATTR_MEMORY_POOLS_SUPPORTED, cuDevice) != 0;
            long stream = externalStream != 0 ? externalStream : driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING);
            this.defaultQueue = new CudaQueue(this, stream, externalStream == 0, true);
        } catch (RuntimeException | Error e) {
            try {
                driver.primaryCtxRelease(cuDevice);
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            paramArena.close();
            throw e;
        }
    }

    // ================================================================ facts

    @Override
    public String name() {
        return "cuda-" + driver.binding() + ":" + ordinal;
    }

    @Override
    public String description() {
        return deviceName + " (sm_" + ccMajor + ccMinor + ", " + multiprocessors + " SMs, " + (totalMem >> 30) + " GiB, CUDA driver "
                + (driverVersion / 1000) + "." + (driverVersion % 1000 / 10) + ") via " + driver.bindingVersion();
    }

    @Override
    public String toString() {
        return getClass().getSimpleName() + "[" + ordinal + " " + deviceName + "]";
    }

    @Override
    public int maxBlockThreads() {
        return maxThreads;
    }

    public int ordinal() {
        return ordinal;
    }

    /** Compute capability as major * 10 + minor (90 for H100/H200). */
    public int computeCapability() {
        return ccMajor * 10 + ccMinor;
    }

    public int driverVersion() {
        return driverVersion;
    }

    /** Whether the device supports stream-ordered allocation (needed for temporaries inside a captured graph). */
    public boolean memoryPools() {
        return memoryPools;
    }

    public long totalMemory() {
        return totalMem;
    }

    /** The raw CUcontext (the device's primary context). */
    public long context() {
        return context;
    }

    /** The raw CUstream of the default queue (what cuBLAS and the liblorakit.so launchers are given). */
    public long stream() {
        return defaultQueue.stream;
    }

    /** The driver binding (fast-tier code, benchmarks). */
    public CudaDriver driver() {
        return driver;
    }

    /** Makes this device's context current on the calling thread if lorakit did not already do so. */
    public final void makeCurrent() {
        long[] cur = CURRENT_CTX.get();
        if (cur[0] != context) {
            driver.ctxSetCurrent(context);
            cur[0] = context;
        }
    }

    /** Makes the context current even if lorakit believes it is (after user code switched contexts). */
    public void forceCurrent() {
        driver.ctxSetCurrent(context);
        CURRENT_CTX.get()[0] = context;
    }

    void checkOpen(String call) {
        if (closed) {
            throw new GpuException(call + ": " + name() + " is closed");
        }
    }

    void checkNotCapturing(String call) {
        if (capture != null) {
            throw new GpuException(call + ": not allowed while a CUDA graph is being captured on " + name()
                    + " (host transfers and synchronisation cannot be captured: upload inputs into persistent tensors"
                    + " before capture and update them between replays)");
        }
    }

    /** Whether a CUDA graph is being captured on the default stream. */
    public boolean isCapturing() {
        return capture != null;
    }

    // ================================================================ memory

    @Override
    public DeviceBuffer alloc(long bytes) {
        checkOpen("cuMemAlloc");
        if (bytes < 0) {
            throw new IllegalArgumentException("alloc: negative size " + bytes);
        }
        makeCurrent();
        long size = Math.max(bytes, 1);   // cuMemAlloc(0) is CUDA_ERROR_INVALID_VALUE
        CudaBuffer b;
        try {
            if (capture != null) {
                b = new CudaBuffer(this, driver.memAllocAsync(size, defaultQueue.stream), bytes,
                        CudaBuffer.Kind.CAPTURED);
                capture.allocated.add(b);
            } else {
                b = new CudaBuffer(this, driver.memAlloc(size), bytes, CudaBuffer.Kind.OWNED);
            }
        } catch (DeviceException e) {
            if (e.status() != CudaErrors.OUT_OF_MEMORY) {
                throw e;
            }
            long[] info = {-1, totalMem};
            try {
                info = driver.memGetInfo();
            } catch (RuntimeException ignored) {
                // free memory unknown: the message says so
            }
            String device = name() + " (" + deviceName + ")";
            throw new DeviceOutOfMemoryException(e, "a device buffer", bytes, device, info[0], info[1]);
        }
        buffers.add(b);
        allocatedBytes += size;
        peakAllocatedBytes = Math.max(peakAllocatedBytes, allocatedBytes);
        allocations++;
        return b;
    }

    /** Bytes of device memory this device allocated and has not freed (borrowed memory is not counted). */
    public long allocatedBytes() {
        return allocatedBytes;
    }

    /** How many device allocations (cuMemAlloc / cuMemAllocAsync) this device has made since it opened. */
    public long allocations() {
        return allocations;
    }

    /** The most {@link #allocatedBytes()} has been since the device opened (benchmarks: device memory of a step). */
    public long peakAllocatedBytes() {
        return peakAllocatedBytes;
    }

    /**
     * Wraps {@code bytes} bytes of existing device memory at {@code address} (a user's allocation in this device's
     * context, e.g. from a JCuda pipeline) as a buffer without a copy; freeing it only forgets it. The address is
     * checked with cuPointerGetAttribute: it must be device (or managed) memory of this context.
     */
    public CudaBuffer borrow(long address, long bytes) {
        checkOpen("borrow");
        if (address == 0 || bytes < 0) {
            throw new IllegalArgumentException("borrow: need a non-null address and bytes >= 0, got 0x"
                    + Long.toHexString(address) + " and " + bytes);
        }
        makeCurrent();
        CudaDriver.PointerInfo info = driver.pointerInfo(address);
        if (info.memoryType() != CudaDriver.PointerInfo.MEMORYTYPE_DEVICE
                && info.memoryType() != CudaDriver.PointerInfo.MEMORYTYPE_UNIFIED) {
            throw new GpuException("borrow: 0x" + Long.toHexString(address) + " is not device memory (CU_MEMORYTYPE "
                    + info.memoryType() + ")");
        }
        if (info.context() != 0 && info.context() != context) {
            throw new GpuException("borrow: 0x" + Long.toHexString(address) + " belongs to another CUDA context (0x"
                    + Long.toHexString(info.context()) + ", not the primary context 0x" + Long.toHexString(context)
                    + " of " + name() + "); allocate it in the primary context (cuDevicePrimaryCtxRetain or the runtime"
                    + " API), not with cuCtxCreate");
        }
        CudaBuffer b = new CudaBuffer(this, address, bytes, CudaBuffer.Kind.BORROWED);
        buffers.add(b);
        return b;
    }

    /**
     * The first {@code bytes} bytes of an open buffer of this device as a buffer of its own, without a driver call
     * (scratch views: {@link CudaScratch}); freeing the view only forgets it, the parent keeps the memory.
     */
    CudaBuffer view(CudaBuffer parent, long bytes) {
        checkOpen("view");
        if (parent.owner != this || parent.freed || bytes < 0 || bytes > parent.bytes) {
            throw new IllegalArgumentException("view: " + bytes + " bytes of " + parent + " (open buffer of " + name()
                    + " needed, at most its size)");
        }
        CudaBuffer b = new CudaBuffer(this, parent.address, bytes, CudaBuffer.Kind.BORROWED);
        buffers.add(b);
        return b;
    }

    @Override
    public void free(DeviceBuffer buffer) {
        CudaBuffer b = own("cuMemFree", buffer, true);
        if (b == null || b.freed) {
            return;
        }
        b.freed = true;
        buffers.remove(b);
        if (b.kind != CudaBuffer.Kind.BORROWED) {
            allocatedBytes -= Math.max(b.bytes, 1);
        }
        makeCurrent();
        switch (b.kind) {
            case BORROWED -> { }
            case CAPTURED -> {
                if (capture != null && capture.allocated.remove(b)) {
                    driver.memFreeAsync(b.address, defaultQueue.stream);
                }
            }
            case OWNED -> {
                if (capture != null) {
                    capture.deferredFrees.add(b.address);   // cuMemFree synchronises: free after the capture
                } else {
                    driver.memFree(b.address);
                }
            }
        }
    }

    /** Buffers allocated (or borrowed) and not yet freed (leak checks in tests). */
    public int liveBuffers() {
        return buffers.size();
    }

    CudaBuffer own(String call, DeviceBuffer buffer, boolean lenient) {
        if (!(buffer instanceof CudaBuffer b) || b.owner != this) {
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

    private CudaBuffer range(String call, DeviceBuffer buffer, long offset, long bytes) {
        CudaBuffer b = own(call, buffer, false);
        if (offset < 0 || bytes < 0 || offset > b.bytes - bytes) {
            throw new GpuException(call + ": byte range [" + offset + ", " + (offset + bytes) + ") is outside " + b);
        }
        return b;
    }

    private void upload(DeviceBuffer dst, long dstOffset, Object src, long bytes) {
        CudaBuffer b = range("cuMemcpyHtoD", dst, dstOffset, bytes);
        checkNotCapturing("cuMemcpyHtoD");
        if (bytes == 0) {
            return;
        }
        makeCurrent();
        driver.streamSynchronize(defaultQueue.stream);   // kernels still reading the old contents
        driver.memcpyHtoD(b.address + dstOffset, src, bytes);
        driver.streamSynchronize(0);                     // a pageable upload may still be in flight
    }

    private void download(DeviceBuffer src, long srcOffset, Object dst, long bytes) {
        CudaBuffer b = range("cuMemcpyDtoH", src, srcOffset, bytes);
        checkNotCapturing("cuMemcpyDtoH");
        if (bytes == 0) {
            return;
        }
        makeCurrent();
        driver.streamSynchronize(defaultQueue.stream);   // the kernels that produce the data
        driver.memcpyDtoH(dst, b.address + srcOffset, bytes);
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, float[] src) {
        upload(dst, dstOffset, src, 4L * src.length);
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, int[] src) {
        upload(dst, dstOffset, src, 4L * src.length);
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, short[] src) {
        upload(dst, dstOffset, src, 2L * src.length);
    }

    @Override
    public void write(DeviceBuffer dst, long dstOffset, ByteBuffer src) {
        CudaDriver.requireDirect("cuMemcpyHtoD", src);
        upload(dst, dstOffset, src, src.remaining());
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, float[] dst) {
        download(src, srcOffset, dst, 4L * dst.length);
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, int[] dst) {
        download(src, srcOffset, dst, 4L * dst.length);
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, short[] dst) {
        download(src, srcOffset, dst, 2L * dst.length);
    }

    @Override
    public void read(DeviceBuffer src, long srcOffset, ByteBuffer dst) {
        CudaDriver.requireDirect("cuMemcpyDtoH", dst);
        download(src, srcOffset, dst, dst.remaining());
    }

    @Override
    public void copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long bytes) {
        CudaBuffer s = range("cuMemcpyDtoDAsync", src, srcOffset, bytes);
        CudaBuffer d = range("cuMemcpyDtoDAsync", dst, dstOffset, bytes);
        if (s == d && srcOffset < dstOffset + bytes && dstOffset < srcOffset + bytes) {
            throw new GpuException("cuMemcpyDtoDAsync: overlapping ranges in " + s);
        }
        if (bytes > 0) {
            makeCurrent();
            driver.memcpyDtoDAsync(d.address + dstOffset, s.address + srcOffset, bytes, defaultQueue.stream);
        }
    }

    @Override
    public void fill(DeviceBuffer dst, long offset, long bytes, int pattern, int patternBytes) {
        if (patternBytes != 1 && patternBytes != 2 && patternBytes != 4) {
            throw new IllegalArgumentException("fill: patternBytes must be 1, 2 or 4, got " + patternBytes);
        }
        CudaBuffer b = range("cuMemsetAsync", dst, offset, bytes);
        if (offset % patternBytes != 0 || bytes % patternBytes != 0) {
            throw new GpuException("cuMemsetAsync: offset " + offset + " and size " + bytes
                    + " must be multiples of the pattern size " + patternBytes);
        }
        if (bytes == 0) {
            return;
        }
        makeCurrent();
        long at = b.address + offset;
        long stream = defaultQueue.stream;
        switch (patternBytes) {
            case 1 -> driver.memsetD8Async(at, (byte) pattern, bytes, stream);
            case 2 -> driver.memsetD16Async(at, (short) pattern, bytes / 2, stream);
            default -> driver.memsetD32Async(at, pattern, bytes / 4, stream);
        }
    }

    // ================================================================ kernels

    /**
     * Loads the fatbin from the jar ({@link KernelSources#FATBIN}; the CUDA devices ignore the portable source text:
     * nvcc compiled it into the fatbin already). Throws GpuException when the jar has none.
     */
    @Override
    public KernelModule load(KernelSources sources) {
        checkOpen("cuModuleLoadData");
        byte[] image = KernelSources.fatbin().orElseThrow(() -> new GpuException("cuModuleLoadData: the jar has no "
                + KernelSources.FATBIN + " (it was built without nvcc); the CUDA devices need it"));
        makeCurrent();
        long m = driver.moduleLoadData(image);
        Set<String> names = new TreeSet<>(CudaModule.scanNames(image));
        if (sources != null) {
            names.addAll(sources.kernelNames());
        }
        CudaModule module = new CudaModule(this, m, names);
        modules.add(module);
        return module;
    }

    void forget(CudaModule m) {
        modules.remove(m);
    }

    @Override
    public void launch(DeviceQueue queue, Kernel kernel, Dim3 grid, Dim3 block, Object... args) {
        if (!(kernel instanceof CudaKernel k) || k.module.device != this) {
            throw new GpuException("cuLaunchKernel(" + kernel.name() + "): " + kernel + " was not loaded on " + this);
        }
        if (closed) {
            throw new GpuException("cuLaunchKernel(" + k.name + "): " + name() + " is closed");
        }
        if (k.module.released) {
            throw new GpuException("cuLaunchKernel(" + k.name + "): its module was closed");
        }
        if (!(queue instanceof CudaQueue q) || q.owner != this || q.released) {
            throw new GpuException("cuLaunchKernel(" + k.name + "): " + queue + " is not an open queue of " + this);
        }
        if (block.volume() > maxThreads) {
            throw new GpuException("cuLaunchKernel(" + k.name + "): block " + block + " has " + block.volume()
                    + " threads; " + deviceName + " allows at most " + maxThreads);
        }
        if (grid.y() > MAX_GRID_YZ || grid.z() > MAX_GRID_YZ || block.z() > 64) {
            throw new GpuException("cuLaunchKernel(" + k.name + "): grid " + grid + " block " + block
                    + " exceeds CUDA's limits (grid y, z <= 65535; block z <= 64)");
        }
        makeCurrent();
        ParamBlock p = k.params;
        if (p == null) {
            p = new ParamBlock(paramArena, args.length);
            k.params = p;
            k.launcher = driver.launcher(k.function, k.name, p);
        }
        p.begin(k.name, args.length);
        for (int i = 0; i < args.length; i++) {
            Object a = args[i];
            if (a instanceof CudaBuffer b && b.owner == this && !b.freed) {
                p.putLong(i, b.address);
            } else if (a instanceof Integer v) {
                p.putInt(i, v);
            } else if (a instanceof Float v) {
                p.putFloat(i, v);
            } else if (a instanceof Long v) {
                p.putLong(i, v);
            } else if (a instanceof DeviceBuffer db) {
                own("cuLaunchKernel(" + k.name + ", arg " + i + ")", db, false);   // throws with the reason
                throw new IllegalStateException("unreachable");
            } else {
                throw new IllegalArgumentException("cuLaunchKernel(" + k.name + "): argument " + i + " is a "
                        + (a == null ? "null" : a.getClass().getSimpleName())
                        + "; kernel arguments are DeviceBuffer, Integer, Float or Long");
            }
        }
        k.launcher.launch(grid.x(), grid.y(), grid.z(), block.x(), block.y(), block.z(), 0, q.stream);
        if (debugSync && capture == null) {
            driver.streamSynchronize(q.stream);
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
        checkOpen("cuStreamCreate");
        makeCurrent();
        CudaQueue q = new CudaQueue(this, driver.streamCreate(CudaDriver.STREAM_NON_BLOCKING), true, false);
        queues.add(q);
        return q;
    }

    /** A queue on a user's existing stream of this context (not destroyed when closed). */
    public DeviceQueue wrapStream(long stream) {
        checkOpen("wrapStream");
        CudaQueue q = new CudaQueue(this, stream, false, false);
        queues.add(q);
        return q;
    }

    void forget(CudaQueue q) {
        queues.remove(q);
    }

    @Override
    public DeviceEvent record(DeviceQueue queue) {
        checkOpen("cuEventRecord");
        if (!(queue instanceof CudaQueue q) || q.owner != this || q.released) {
            throw new GpuException("cuEventRecord: " + queue + " is not an open queue of " + this);
        }
        makeCurrent();
        CudaEvent e = new CudaEvent(this, driver.eventCreate(0));
        events.add(e);
        driver.eventRecord(e.event, q.stream);
        return e;
    }

    void forget(CudaEvent e) {
        events.remove(e);
    }

    @Override
    public void synchronize() {
        checkOpen("cuStreamSynchronize");
        checkNotCapturing("cuStreamSynchronize");
        makeCurrent();
        driver.streamSynchronize(defaultQueue.stream);
        for (CudaQueue q : queues) {
            if (!q.released) {
                driver.streamSynchronize(q.stream);
            }
        }
    }

    // ================================================================ CUDA graphs

    /** State of one capture in progress. */
    static final class Capture {
        final Set<CudaBuffer> allocated = Collections.newSetFromMap(new IdentityHashMap<>());
        final List<Long> deferredFrees = new ArrayList<>();
    }

    /**
     * Captures everything {@code step} queues on the default stream into a CUDA graph and instantiates it (nothing
     * runs during the capture; {@link CudaGraph#replay()} runs it). Rules, checked here with clear messages:
     * no host transfer or synchronisation inside the step; buffers the step allocates become graph memory nodes
     * (stream-ordered allocation) and must be freed inside the step; buffers freed inside it that existed before
     * are freed after the capture. If the step throws, the capture is ended and discarded and the exception is
     * rethrown.
     */
    public CudaGraph capture(Runnable step) {
        checkOpen("cuStreamBeginCapture");
        if (capture != null) {
            throw new GpuException("cuStreamBeginCapture: a capture is already in progress on " + name());
        }
        makeCurrent();
        driver.streamBeginCapture(defaultQueue.stream, CudaDriver.CAPTURE_MODE_THREAD_LOCAL);
        Capture c = new Capture();
        capture = c;
        Throwable failure = null;
        try {
            step.run();
        } catch (RuntimeException | Error e) {
            failure = e;
        }
        capture = null;
        return CudaGraph.finish(this, c, failure);
    }

    /** Registers an instantiated graph (closed with the device). */
    void adopt(CudaGraph g) {
        graphs.add(g);
    }

    /** Forgets buffers that existed only inside a discarded graph. */
    void discard(Set<CudaBuffer> captured) {
        for (CudaBuffer b : captured) {
            b.freed = true;
            buffers.remove(b);
        }
    }

    void launchGraph(CudaGraph g) {
        checkOpen("cuGraphLaunch");
        checkNotCapturing("cuGraphLaunch");
        makeCurrent();
        driver.graphLaunch(g.exec, defaultQueue.stream);
        if (debugSync) {
            driver.streamSynchronize(defaultQueue.stream);
        }
    }

    void forget(CudaGraph g) {
        graphs.remove(g);
    }

    // ================================================================ close

    @Override
    public boolean isClosed() {
        return closed;
    }

    /** Finishes outstanding work, then releases graphs, events, modules, buffers, streams and the primary context. */
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
        List<Runnable> releases = new ArrayList<>();
        for (CudaGraph g : new ArrayList<>(graphs)) {
            releases.add(g::release);
        }
        for (CudaEvent e : new ArrayList<>(events)) {
            releases.add(e::release);
        }
        for (CudaModule m : new ArrayList<>(modules)) {
            releases.add(m::release);
        }
        for (CudaBuffer b : new ArrayList<>(buffers)) {
            releases.add(() -> {
                b.freed = true;
                if (b.kind == CudaBuffer.Kind.OWNED) {
                    driver.memFree(b.address);
                }
            });
        }
        for (CudaQueue q : new ArrayList<>(queues)) {
            releases.add(q::release);
        }
        releases.add(defaultQueue::release);
        releases.add(() -> driver.primaryCtxRelease(cuDevice));
        try {
            makeCurrent();
        } catch (RuntimeException e) {
            first = first == null ? e : first;
        }
        for (Runnable r : releases) {
            try {
                r.run();
            } catch (RuntimeException e) {
                if (first == null) {
                    first = e;
                } else {
                    first.addSuppressed(e);
                }
            }
        }
        buffers.clear();
        modules.clear();
        queues.clear();
        events.clear();
        graphs.clear();
        CURRENT_CTX.get()[0] = 0;   // the primary context may be gone now
        paramArena.close();
        if (first != null) {
            throw first;
        }
    }
}
