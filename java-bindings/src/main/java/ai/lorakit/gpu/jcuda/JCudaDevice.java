package ai.lorakit.gpu.jcuda;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.cuda.CachedReason;
import ai.lorakit.gpu.cuda.CudaDevice;
import ai.lorakit.gpu.cuda.CudaProbe;
import jcuda.driver.CUstream;

/**
 * The CUDA device through JCuda's driver API (ARCHITECTURE.md, {@code cuda-jcuda}): cuInit, the device's primary
 * context (cuDevicePrimaryCtxRetain + cuCtxSetCurrent, so allocations are shared with FFM and with the user's JCuda
 * or runtime-API code), the fatbin from the jar through cuModuleLoadData, functions by their {@code extern "C"} names,
 * cuLaunchKernel with one parameter block per kernel built once and refilled per call, streams, events, memory and
 * CUDA graphs. The device logic is shared with the FFM device ({@link CudaDevice}); this class is the JCuda
 * binding ({@link JCudaDriverCalls}) and its availability rules.
 *
 * <p>JCuda's JNI library links libcuda.so.1: without a driver its first touch throws UnsatisfiedLinkError and later
 * touches NoClassDefFoundError. {@link #unavailableReason()} probes the driver through FFM first and touches JCuda
 * only when a driver exists; a LinkageError then becomes the reason "JCuda natives failed to load".
 */
public final class JCudaDevice extends CudaDevice {
    private static final CachedReason REASON = new CachedReason(JCudaDevice::computeReason);

    private JCudaDevice(JCudaDriverCalls driver, int ordinal, long externalStream) {
        super(driver, ordinal, externalStream);
    }

    /** Opens device {@code ordinal} with a stream of its own. GpuException with the reason if it cannot. */
    public static JCudaDevice open(int ordinal) {
        return open(ordinal, 0L);
    }

    /**
     * Opens device {@code ordinal} whose default queue is the user's {@code stream} (a JCuda CUstream of the primary
     * context; null = a stream of its own), for interop: lorakit's kernels then run in order with the user's work.
     */
    public static JCudaDevice open(int ordinal, CUstream stream) {
        return open(ordinal, JCudaHandles.raw(stream));
    }

    static JCudaDevice open(int ordinal, long stream) {
        String reason = CudaProbe.get().unavailableReason();
        if (reason != null) {
            throw new GpuException("cuda-jcuda is unavailable: " + reason);
        }
        return new JCudaDevice(binding(), ordinal, stream);
    }

    /** The JCuda binding; GpuException "JCuda natives failed to load" when its JNI library cannot load. */
    static JCudaDriverCalls binding() {
        try {
            return new JCudaDriverCalls();
        } catch (LinkageError e) {
            throw new GpuException(nativesFailed(e), e);
        }
    }

    static String nativesFailed(Throwable e) {
        return "JCuda natives failed to load (" + e.getClass().getSimpleName() + ": " + e.getMessage()
                + "); JCuda's JNI library needs libcuda.so.1 from the NVIDIA driver";
    }

    /**
     * Loads JCuda's JNI library and returns null, or the reason it cannot load. Touches JCuda even without a driver
     * (the no-GPU test proves the failure is a reason, not a crash); after a failure JCuda stays unusable in this
     * JVM, as the JVM never retries a failed class initialisation.
     */
    public static String nativesReason() {
        try {
            binding();
            return null;
        } catch (GpuException e) {
            return e.getMessage();
        } catch (LinkageError e) {
            return nativesFailed(e);
        }
    }

    /**
     * Null when {@link #open(int) open(0)} works here, else the exact reason (no libcuda, no device, driver too old,
     * fatbin missing, JCuda natives failed to load, or the device failed to open); never throws; cached per JVM.
     */
    public static String unavailableReason() {
        return REASON.get();
    }

    private static String computeReason() {
        String reason = CudaProbe.get().unavailableReason();
        if (reason != null) {
            return reason;
        }
        String natives = nativesReason();
        if (natives != null) {
            return natives;
        }
        try (JCudaDevice d = open(0)) {
            d.load(null).close();   // the fatbin must load on this GPU
            return null;
        } catch (RuntimeException | LinkageError e) {
            return "opening CUDA device 0 through JCuda failed: " + e.getMessage();
        }
    }
}
