package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DeviceException;

import java.util.Map;

/**
 * CUresult names for the codes lorakit meets, so that a message can name an error even where the driver cannot
 * be asked (no libcuda, or a probe that failed before cuGetErrorName was bound), and the one place that turns a
 * failed call into a {@link DeviceException}.
 */
public final class CudaErrors {
    public static final int SUCCESS = 0;
    public static final int INVALID_VALUE = 1;
    public static final int OUT_OF_MEMORY = 2;
    public static final int NOT_INITIALIZED = 3;
    public static final int STUB_LIBRARY = 34;
    public static final int INSUFFICIENT_DRIVER = 35;
    public static final int NO_DEVICE = 100;
    public static final int INVALID_DEVICE = 101;
    public static final int NO_BINARY_FOR_GPU = 209;
    public static final int UNSUPPORTED_PTX_VERSION = 222;
    public static final int NOT_FOUND = 500;
    public static final int STREAM_CAPTURE_UNSUPPORTED = 900;
    public static final int STREAM_CAPTURE_INVALIDATED = 901;
    public static final int SYSTEM_DRIVER_MISMATCH = 803;
    public static final int COMPAT_NOT_SUPPORTED_ON_DEVICE = 804;
    public static final int UNKNOWN = 999;

    private static final Map<Integer, String> NAMES = Map.ofEntries(
            Map.entry(0, "CUDA_SUCCESS"),
            Map.entry(1, "CUDA_ERROR_INVALID_VALUE"),
            Map.entry(2, "CUDA_ERROR_OUT_OF_MEMORY"),
            Map.entry(3, "CUDA_ERROR_NOT_INITIALIZED"),
            Map.entry(4, "CUDA_ERROR_DEINITIALIZED"),
            Map.entry(34, "CUDA_ERROR_STUB_LIBRARY"),
            Map.entry(35, "CUDA_ERROR_INSUFFICIENT_DRIVER"),
            Map.entry(46, "CUDA_ERROR_DEVICE_UNAVAILABLE"),
            Map.entry(100, "CUDA_ERROR_NO_DEVICE"),
            Map.entry(101, "CUDA_ERROR_INVALID_DEVICE"),
            Map.entry(200, "CUDA_ERROR_INVALID_IMAGE"),
            Map.entry(201, "CUDA_ERROR_INVALID_CONTEXT"),
            Map.entry(209, "CUDA_ERROR_NO_BINARY_FOR_GPU"),
            Map.entry(218, "CUDA_ERROR_INVALID_PTX"),
            Map.entry(222, "CUDA_ERROR_UNSUPPORTED_PTX_VERSION"),
            Map.entry(400, "CUDA_ERROR_INVALID_HANDLE"),
            Map.entry(500, "CUDA_ERROR_NOT_FOUND"),
            Map.entry(600, "CUDA_ERROR_NOT_READY"),
            Map.entry(700, "CUDA_ERROR_ILLEGAL_ADDRESS"),
            Map.entry(701, "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"),
            Map.entry(702, "CUDA_ERROR_LAUNCH_TIMEOUT"),
            Map.entry(719, "CUDA_ERROR_LAUNCH_FAILED"),
            Map.entry(801, "CUDA_ERROR_NOT_SUPPORTED"),
            Map.entry(803, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH"),
            Map.entry(804, "CUDA_ERROR_COMPAT_NOT_SUPPORTED_ON_DEVICE"),
            Map.entry(900, "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"),
            Map.entry(901, "CUDA_ERROR_STREAM_CAPTURE_INVALIDATED"),
            Map.entry(904, "CUDA_ERROR_STREAM_CAPTURE_UNJOINED"),
            Map.entry(905, "CUDA_ERROR_STREAM_CAPTURE_ISOLATION"),
            Map.entry(906, "CUDA_ERROR_STREAM_CAPTURE_IMPLICIT"),
            Map.entry(908, "CUDA_ERROR_STREAM_CAPTURE_WRONG_THREAD"),
            Map.entry(999, "CUDA_ERROR_UNKNOWN"));

    private CudaErrors() {
    }

    /** The CUresult's name, or "CUDA_ERROR_&lt;code&gt;" for a code this table lacks. */
    public static String name(int code) {
        String n = NAMES.get(code);
        return n != null ? n : "CUDA_ERROR_" + code;
    }

    /** The code of a CUresult name (JCuda's exception messages carry only the name), or -1. */
    public static int code(String name) {
        for (Map.Entry<Integer, String> e : NAMES.entrySet()) {
            if (e.getValue().equals(name)) {
                return e.getKey();
            }
        }
        return -1;
    }

    /** Whether a code means "no usable CUDA device here" rather than a bug (TOOLCHAIN.md: 35, 100, 34, 999). */
    public static boolean meansNoDevice(int code) {
        return code == INSUFFICIENT_DRIVER || code == NO_DEVICE || code == STUB_LIBRARY || code == UNKNOWN
                || code == SYSTEM_DRIVER_MISMATCH || code == COMPAT_NOT_SUPPORTED_ON_DEVICE;
    }

    /** The exception for a failed call: {@code cuMemAlloc(4096 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2) out of memory}. */
    public static DeviceException failure(String call, int code, String name, String text) {
        return new DeviceException(call, code, name == null ? name(code) : name, text);
    }
}
