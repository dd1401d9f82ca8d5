package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.cuda.CachedReason;
import ai.lorakit.gpu.cuda.CudaDevice;
import ai.lorakit.gpu.cuda.CudaProbe;

/**
 * The CUDA device through Panama FFM (ARCHITECTURE.md, {@code cuda-ffm}): hand-written downcalls into libcuda.so.1
 * ({@link LibCuda}, {@link FfmDriver}) drive the driver API exactly as {@code JCudaDevice} does (all device logic is
 * in {@link CudaDevice}); kernels launch through libcuda's cuLaunchKernel. liblorakit.so ({@link LorakitNative}, its C
 * launchers: benchmarks, interop) is extracted from the jar and ABI-checked when the device opens; where it cannot
 * load (an older glibc, no libstdc++, an ABI mismatch) the device works without it and {@link #lorakit()} says why.
 *
 * <p>Without a GPU nothing here is touched: {@link #unavailableReason()} probes first and says why (no libcuda, no
 * device, driver too old, fatbin missing or not loadable on this GPU).
 */
public final class FfmCudaDevice extends CudaDevice {
    private static final CachedReason REASON = new CachedReason(FfmCudaDevice::computeReason);

    private final LorakitNative.Loaded lorakit;

    private FfmCudaDevice(int ordinal, long externalStream, LorakitNative.Loaded lorakit) {
        super(new FfmDriver(), ordinal, externalStream);
        this.lorakit = lorakit;
    }

    /** Opens device {@code ordinal} with a stream of its own. GpuException with the reason if it cannot. */
    public static FfmCudaDevice open(int ordinal) {
        return open(ordinal, 0);
    }

    /**
     * Opens device {@code ordinal} whose default queue is {@code stream}, a CUstream of the user's (in the device's
     * primary context; 0 = a stream of its own). The stream is not destroyed on close.
     */
    public static FfmCudaDevice open(int ordinal, long stream) {
        String reason = CudaProbe.get().unavailableReason();
        if (reason != null) {
            throw new GpuException("cuda-ffm is unavailable: " + reason);
        }
        return new FfmCudaDevice(ordinal, stream, LorakitNative.tryGet());
    }

    /** liblorakit.so, ABI-checked; GpuException saying why when it could not load on this machine. */
    public LorakitNative lorakit() {
        if (lorakit.library() == null) {
            throw new GpuException("liblorakit.so is unavailable here (" + lorakit.unavailableReason() + "); cuda-ffm"
                    + " runs without it (kernels launch through libcuda), only its C launchers need it");
        }
        return lorakit.library();
    }

    /**
     * Null when {@link #open(int) open(0)} works here, else the exact reason; never throws. Probes the driver first
     * (no library is loaded on a machine without libcuda), then opens and closes the device and loads the fatbin.
     * liblorakit.so is not required (see the class comment).
     */
    public static String unavailableReason() {
        return REASON.get();
    }

    private static String computeReason() {
        String reason = CudaProbe.get().unavailableReason();
        if (reason != null) {
            return reason;
        }
        try (FfmCudaDevice d = open(0)) {
            d.load(null).close();   // the fatbin must load on this GPU (driver too old, no SASS/PTX for it)
            return null;
        } catch (RuntimeException | LinkageError e) {
            return "opening CUDA device 0 through FFM failed: " + e.getMessage();
        }
    }
}
