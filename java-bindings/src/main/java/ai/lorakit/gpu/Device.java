package ai.lorakit.gpu;

import java.nio.ByteBuffer;

/**
 * Layer 1 of lorakit (ARCHITECTURE.md): one compute device behind one binding (OpenCL through LWJGL; CUDA
 * through JCuda or FFM). Everything binding-specific lives in the implementations; nothing above this
 * interface sees an LWJGL, JCuda or FFM type. {@code ai.lorakit.gpu.kernel.KernelBackend} implements the whole
 * Backend op set once on top of it.
 *
 * <p>Memory: {@link #alloc} returns a {@link DeviceBuffer}; transfers to and from host arrays are blocking
 * (they return when the data has arrived) and ordered with the launches on the default queue. Offsets and
 * sizes are in bytes and checked against the buffer before any native call.
 *
 * <p>Kernels: {@link #load} turns {@link KernelSources} into a {@link KernelModule} (an OpenCL program built
 * from the portable sources, or the CUDA fatbin); {@link KernelModule#kernel} looks an entry point up by name.
 * {@link #launch} runs it on a grid of {@code grid} groups of {@code block} threads (OpenCL: global size =
 * grid x block) with arguments that are {@link DeviceBuffer}s, {@code Integer}s, {@code Float}s or
 * {@code Long}s, in the kernel's parameter order. Launches are asynchronous.
 *
 * <p>Errors: a failing native call throws {@link DeviceException} naming the call, its subject and the native
 * status ({@code clEnqueueNDRangeKernel(gemm_fwd_kernel1) failed: CL_INVALID_WORK_GROUP_SIZE (-54)}); a
 * kernel build failure carries the build log. Any use after {@link #close()} throws {@link GpuException}.
 * A device is not thread-safe.
 */
public interface Device extends AutoCloseable {

    /** Short name, e.g. {@code opencl:0.0}. */
    String name();

    /** Human-readable platform, device and version, for logs and {@code lorakit info}. */
    String description();

    /** Largest number of threads one block may have (OpenCL CL_DEVICE_MAX_WORK_GROUP_SIZE). */
    int maxBlockThreads();

    // ---------------------------------------------------------------- memory

    /** A new buffer of {@code bytes} bytes (contents undefined; 0 is allowed). */
    DeviceBuffer alloc(long bytes);

    /** Frees a buffer of this device (idempotent). */
    void free(DeviceBuffer buffer);

    /** Copies all of {@code src} into {@code dst} starting at byte {@code dstOffset}. */
    void write(DeviceBuffer dst, long dstOffset, float[] src);

    void write(DeviceBuffer dst, long dstOffset, int[] src);

    /** 16-bit elements (BF16 / F16 bit patterns). */
    void write(DeviceBuffer dst, long dstOffset, short[] src);

    /** The bytes between {@code src.position()} and {@code src.limit()} (a direct buffer). */
    void write(DeviceBuffer dst, long dstOffset, ByteBuffer src);

    /** Fills all of {@code dst} from {@code src} starting at byte {@code srcOffset}. */
    void read(DeviceBuffer src, long srcOffset, float[] dst);

    void read(DeviceBuffer src, long srcOffset, int[] dst);

    void read(DeviceBuffer src, long srcOffset, short[] dst);

    /** Fills {@code dst.position()} to {@code dst.limit()} (a direct buffer). */
    void read(DeviceBuffer src, long srcOffset, ByteBuffer dst);

    /** Device-to-device copy of {@code bytes} bytes (queued on the default queue). */
    void copy(DeviceBuffer src, long srcOffset, DeviceBuffer dst, long dstOffset, long bytes);

    /**
     * Fills {@code bytes} bytes from {@code offset} with the low {@code patternBytes} (1, 2 or 4) bytes of
     * {@code pattern}, little-endian; offset and bytes must be multiples of patternBytes.
     */
    void fill(DeviceBuffer dst, long offset, long bytes, int pattern, int patternBytes);

    // ---------------------------------------------------------------- kernels

    /** Loads kernels: OpenCL builds programs from the sources (lazily, per source file); CUDA loads the fatbin. */
    KernelModule load(KernelSources sources);

    /** Launches {@code kernel} on the default queue. */
    default void launch(Kernel kernel, Dim3 grid, Dim3 block, Object... args) {
        launch(defaultQueue(), kernel, grid, block, args);
    }

    /** Launches {@code kernel} on {@code queue}; args are DeviceBuffer, Integer, Float or Long. */
    void launch(DeviceQueue queue, Kernel kernel, Dim3 grid, Dim3 block, Object... args);

    // ---------------------------------------------------------------- queues, events

    /** The queue of memory transfers and of launches that name none. */
    DeviceQueue defaultQueue();

    /** A new in-order queue (closed by the caller or with the device). */
    DeviceQueue createQueue();

    /** An event completed when everything submitted to {@code queue} so far has finished (timing, dependencies). */
    DeviceEvent record(DeviceQueue queue);

    /** Blocks until all work on every queue of this device has finished. */
    void synchronize();

    /** Whether {@link #close()} was called. */
    boolean isClosed();

    /** Finishes outstanding work and releases every buffer, module, queue and event, then the device. */
    @Override
    void close();
}
