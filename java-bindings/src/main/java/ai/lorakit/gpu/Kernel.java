package ai.lorakit.gpu;

/**
 * A kernel entry point looked up by name in a {@link KernelModule}; launched with {@link Device#launch}. Its
 * native handle is owned and cached by the module (do not close it yourself).
 */
public interface Kernel {

    /** The entry point's name, e.g. {@code gemm_fwd_kernel1}. */
    String name();

    /** The device it runs on. */
    Device device();
}
