package ai.lorakit.gpu.cuda;

import java.nio.ByteBuffer;

/**
 * The CUDA driver-API calls a {@link CudaDevice} makes, one method per call, with every handle (CUcontext,
 * CUmodule, CUfunction, CUstream, CUevent, CUgraph, CUgraphExec) and every device pointer as its raw 64-bit value,
 * so that the device logic is written once for both bindings: JCuda ({@code ai.lorakit.gpu.jcuda}) and hand-written
 * Panama FFM downcalls into libcuda.so.1 ({@code ai.lorakit.gpu.ffm}).
 *
 * <p>Every method checks the CUresult and throws {@link ai.lorakit.gpu.DeviceException} naming the call and the
 * subject, with the error's name, number and text, e.g. {@code cuMemAlloc(4096 bytes) failed:
 * CUDA_ERROR_OUT_OF_MEMORY (2) out of memory}. Stream 0 is the legacy default stream.
 */
public interface CudaDriver {

    /** CUstream flag: the stream does not synchronise with the legacy default stream. */
    int STREAM_NON_BLOCKING = 1;
    /** CUstreamCaptureMode: only this thread is barred from unsafe calls while capturing. */
    int CAPTURE_MODE_THREAD_LOCAL = 1;

    /** "jcuda" or "ffm". */
    String binding();

    /** The binding's own version, e.g. "JCuda 12.6.0" or "Panama FFM (libcuda.so.1)". */
    String bindingVersion();

    void init();

    /** CUDA version of the driver, e.g. 13000 for 13.0. */
    int driverVersion();

    int deviceCount();

    /** The CUdevice of ordinal {@code ordinal}. */
    int deviceGet(int ordinal);

    String deviceName(int device);

    long deviceTotalMem(int device);

    /** {free, total} bytes of the current context's device (cuMemGetInfo). */
    long[] memGetInfo();

    /** A CUdevice_attribute of {@code device}. */
    int deviceAttribute(int attribute, int device);

    /** Retains the device's primary context (cuDevicePrimaryCtxRetain). */
    long primaryCtxRetain(int device);

    void primaryCtxRelease(int device);

    void ctxSetCurrent(long ctx);

    void ctxSynchronize();

    /** Loads a fatbin, cubin or NUL-terminated PTX image (cuModuleLoadData). */
    long moduleLoadData(byte[] image);

    void moduleUnload(long module);

    /** The function named {@code name}, or 0 when the module has none (CUDA_ERROR_NOT_FOUND). */
    long moduleGetFunction(long module, String name);

    long memAlloc(long bytes);

    void memFree(long dptr);

    /** Stream-ordered allocation (capturable: becomes a graph memory node while the stream is capturing). */
    long memAllocAsync(long bytes, long stream);

    void memFreeAsync(long dptr, long stream);

    /** Synchronous host-to-device copy of {@code bytes} bytes from a float[], int[], short[] or direct ByteBuffer. */
    void memcpyHtoD(long dst, Object src, long bytes);

    /** Synchronous device-to-host copy into a float[], int[], short[] or direct ByteBuffer. */
    void memcpyDtoH(Object dst, long src, long bytes);

    void memcpyDtoDAsync(long dst, long src, long bytes, long stream);

    void memsetD8Async(long dst, byte value, long count, long stream);

    void memsetD16Async(long dst, short value, long count, long stream);

    void memsetD32Async(long dst, int value, long count, long stream);

    /** The CUcontext an address was allocated in (0 if unknown) and whether it is device memory. */
    PointerInfo pointerInfo(long address);

    /** What cuPointerGetAttribute says about an address: its context and memory type (CU_MEMORYTYPE_*). */
    record PointerInfo(long context, int memoryType) {
        public static final int MEMORYTYPE_HOST = 1;
        public static final int MEMORYTYPE_DEVICE = 2;
        public static final int MEMORYTYPE_UNIFIED = 4;
    }

    long streamCreate(int flags);

    void streamDestroy(long stream);

    void streamSynchronize(long stream);

    void streamWaitEvent(long stream, long event);

    long eventCreate(int flags);

    void eventRecord(long event, long stream);

    void eventSynchronize(long event);

    float eventElapsedTime(long start, long end);

    void eventDestroy(long event);

    void streamBeginCapture(long stream, int mode);

    /** Ends the capture and returns the CUgraph. */
    long streamEndCapture(long stream);

    long graphInstantiate(long graph);

    void graphLaunch(long graphExec, long stream);

    void graphDestroy(long graph);

    void graphExecDestroy(long graphExec);

    /**
     * A launcher for one CUfunction whose kernel parameters live in {@code params} (built once, refilled per
     * call): no allocation per launch.
     */
    Launcher launcher(long function, String name, ParamBlock params);

    /** Launches one function with the parameter values currently in its {@link ParamBlock}. */
    interface Launcher {
        void launch(int gx, int gy, int gz, int bx, int by, int bz, int sharedMemBytes, long stream);
    }

    /** "CUDA_ERROR_NO_DEVICE" for 100 (from the driver when it can say, else from {@link CudaErrors}). */
    String errorName(int code);

    /** The driver's description of a CUresult ("no CUDA-capable device is detected"). */
    String errorString(int code);

    /** Checked direct-buffer requirement shared by both bindings. */
    static void requireDirect(String call, Object host) {
        if (host instanceof ByteBuffer b && !b.isDirect()) {
            throw new IllegalArgumentException(call + ": the ByteBuffer must be direct (ByteBuffer.allocateDirect)");
        }
    }
}
