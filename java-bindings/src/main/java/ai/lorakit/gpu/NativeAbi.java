package ai.lorakit.gpu;

/**
 * The contract between the Java side and the device binaries built by nvcc: the ABI version of liblorakit.so
 * (native/include/lorakit.h, {@code LORAKIT_ABI_VERSION}), its status codes, and the classpath resources the
 * build puts the binaries in (absent when the build machine had no nvcc). The FFM device checks
 * {@code lorakit_abi_version() == ABI_VERSION} on load; bump both sides together whenever lorakit.h changes.
 */
public final class NativeAbi {

    /** Must equal {@code lorakit_abi_version()} of the liblorakit.so shipped in the same jar. */
    public static final int ABI_VERSION = 2;   // 2: lorakit_bench_launch_shrink_f32

    /** {@code LORAKIT_OK}: success. */
    public static final int OK = 0;
    /** {@code LORAKIT_ERR_INVALID}: bad argument (null pointer, non-positive or too large dimension). */
    public static final int ERR_INVALID = 1;
    /** {@code LORAKIT_ERR_CUDA}: a CUDA runtime call failed; {@code lorakit_last_error()} names it. */
    public static final int ERR_CUDA = 2;

    /** All kernels (portable tier + CUDA fast tier) for sm_80, sm_90, sm_90a and compute_90 PTX; for cuModuleLoadData. */
    public static final String FATBIN_RESOURCE = "/ai/lorakit/kernels/lorakit.fatbin";

    /** The C ABI launchers (static CUDA runtime: no CUDA .so needed to load it). */
    public static final String NATIVE_RESOURCE = "/ai/lorakit/native/linux-x86_64/liblorakit.so";

    /** First four bytes of a fatbin, read little-endian. */
    public static final int FATBIN_MAGIC = 0xBA55ED50;

    private NativeAbi() {
    }
}
