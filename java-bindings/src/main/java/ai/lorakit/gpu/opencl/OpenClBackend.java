package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.kernel.KernelBackend;

/**
 * The {@code opencl} backend: {@link KernelBackend} on an {@link OpenClDevice}. The device comes from the
 * selector given, or from the system property {@value #DEVICE_PROPERTY} (the CLI's {@code --device}), or
 * {@code auto} (prefer a GPU, else a CPU such as PoCL).
 */
public final class OpenClBackend {
    /** System property naming the OpenCL device: auto, N, P.D or a name substring. */
    public static final String DEVICE_PROPERTY = "lorakit.opencl.device";

    private OpenClBackend() {
    }

    /** The device selector in effect: the system property, else "auto". */
    public static String selector() {
        String s = System.getProperty(DEVICE_PROPERTY);
        return s == null || s.isBlank() ? "auto" : s.trim();
    }

    /** Opens the backend on the device {@link #selector()} names. */
    public static KernelBackend open() {
        return open(selector());
    }

    /** Opens the backend on the device {@code selector} names; GpuException with the reason if it cannot. */
    public static KernelBackend open(String selector) {
        OpenClDevice d = OpenClDevice.open(selector);
        try {
            return new KernelBackend(d, "opencl", true);
        } catch (RuntimeException | Error e) {
            try {
                d.close();
            } catch (RuntimeException suppressed) {
                e.addSuppressed(suppressed);
            }
            throw e;
        }
    }

    /** Null when {@link #open()} would find a device, else why not (never throws). */
    public static String unavailableReason() {
        try {
            return OpenClDevice.unavailableReason(selector());
        } catch (RuntimeException | LinkageError e) {
            return "OpenCL probe failed: " + e;
        }
    }
}
