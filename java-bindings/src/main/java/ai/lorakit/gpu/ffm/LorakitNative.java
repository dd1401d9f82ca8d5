package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.NativeAbi;
import ai.lorakit.gpu.NativeResources;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * liblorakit.so (native/include/lorakit.h), the C ABI launchers of the FFM path: extracted from the jar
 * ({@link NativeAbi#NATIVE_RESOURCE}) into a temporary file once per JVM and loaded through FFM. At load,
 * {@code lorakit_abi_version()} must equal {@link NativeAbi#ABI_VERSION} (a jar whose Java and native halves were
 * built from different commits is rejected with both numbers). Every call's status is checked; a failure throws
 * {@link GpuException} carrying {@code lorakit_last_error()} (which names the function, the argument or the CUDA
 * error). The library links the CUDA runtime statically, so it loads where there is no driver and its calls then
 * report "no device" instead of crashing (TOOLCHAIN.md).
 *
 * <p>Pointers and streams are raw device addresses / CUstreams ({@code JAVA_LONG}, as in {@link LibCuda}).
 */
public final class LorakitNative {
    private static final Linker LINKER = Linker.nativeLinker();
    private static volatile LorakitNative instance;

    private final Path file;
    private final int abiVersion;
    private final MethodHandle lastError;
    private final MethodHandle deviceCount;
    private final MethodHandle shrink;
    private final MethodHandle expand;
    private final MethodHandle benchShrink;   // null in a library without it

    private LorakitNative(Path file, SymbolLookup lib) {
        this.file = file;
        MethodHandle abi = find(lib, "lorakit_abi_version", FunctionDescriptor.of(JAVA_INT));
        try {
            this.abiVersion = (int) abi.invokeExact();
        } catch (Throwable t) {
            throw new GpuException("lorakit_abi_version() failed: " + t, t);
        }
        checkAbi(abiVersion, NativeAbi.ABI_VERSION, file.toString());
        this.lastError = find(lib, "lorakit_last_error", FunctionDescriptor.of(ADDRESS));
        this.deviceCount = find(lib, "lorakit_cuda_device_count", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // (x, A, u, N, in, r, stream) and (u, B, y, N, r, out, s, stream)
        this.shrink = find(lib, "lorakit_lora_shrink_f32", FunctionDescriptor.of(JAVA_INT,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_LONG));
        this.expand = find(lib, "lorakit_lora_expand_f32", FunctionDescriptor.of(JAVA_INT,
                JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, JAVA_LONG));
        this.benchShrink = lib.find("lorakit_bench_launch_shrink_f32").map(s -> LINKER.downcallHandle(s,
                FunctionDescriptor.of(JAVA_INT, JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT,
                        JAVA_LONG))).orElse(null);
    }

    /**
     * The ABI handshake: throws with both versions and the remedy when the library and the Java code disagree.
     * Public for the test of the message.
     */
    public static void checkAbi(int libraryVersion, int javaVersion, String where) {
        if (libraryVersion != javaVersion) {
            throw new GpuException("liblorakit.so ABI mismatch: " + where + " reports lorakit_abi_version() = "
                    + libraryVersion + " but this lorakit jar expects " + javaVersion + " (NativeAbi.ABI_VERSION); the"
                    + " jar's native library and Java classes come from different builds: rebuild both (mvn package)");
        }
    }

    /** The library of this JVM, extracted and loaded on first use; GpuException if the jar has none. */
    public static LorakitNative get() {
        LorakitNative l = instance;
        if (l == null) {
            synchronized (LorakitNative.class) {
                l = instance;
                if (l == null) {
                    l = load();
                    instance = l;
                }
            }
        }
        return l;
    }

    /** Whether the jar carries liblorakit.so (it does when nvcc built it). */
    public static boolean present() {
        return LorakitNative.class.getResource(NativeAbi.NATIVE_RESOURCE) != null;
    }

    /** The library of this JVM or, when it cannot load here, why not; tried once, never throws. */
    public record Loaded(LorakitNative library, String unavailableReason) {
    }

    private static volatile Loaded tried;

    /**
     * {@link #get()} without the exception: cuda-ffm launches its kernels through libcuda's cuLaunchKernel and runs
     * without liblorakit.so, which only carries the C launchers (benchmarks, interop); it asks here and keeps the
     * reason for {@link FfmCudaDevice#lorakit()} and {@code lorakit info}.
     */
    public static Loaded tryGet() {
        Loaded t = tried;
        if (t == null) {
            synchronized (LorakitNative.class) {
                t = tried;
                if (t == null) {
                    try {
                        t = new Loaded(get(), null);
                    } catch (GpuException | LinkageError e) {
                        t = new Loaded(null, e.getMessage());
                    }
                    tried = t;
                }
            }
        }
        return t;
    }

    /** One line for {@code lorakit info}: loaded or why not, and what the library needs from this machine. */
    public static String describeLoad() {
        if (!present()) {
            return "not in this build (built without nvcc)";
        }
        Loaded l = tryGet();
        String needs = NativeRequirements.summary();
        return (l.library() != null ? "loads (ABI " + l.library().abiVersion() + ")"
                : "cannot load, cuda-ffm runs without it: " + l.unavailableReason())
                + (needs.isEmpty() || l.library() == null ? "" : "; " + needs);
    }

    private static LorakitNative load() {
        return load(NativeResources.extract(NativeAbi.NATIVE_RESOURCE, "it was built without nvcc"));
    }

    /**
     * Loads the extracted library file. A library the dynamic loader refuses (an older glibc, a missing libstdc++,
     * not an ELF file) is reported with the loader's message and what the library needs ({@link NativeRequirements}).
     */
    static LorakitNative load(Path tmp) {
        SymbolLookup lib;
        try {
            lib = SymbolLookup.libraryLookup(tmp, Arena.global());
        } catch (IllegalArgumentException e) {
            String needs = NativeRequirements.summary();
            throw new GpuException("liblorakit.so: loading " + tmp + " failed: " + e.getMessage()
                    + (needs.isEmpty() ? "" : "; liblorakit.so " + needs), e);
        }
        return new LorakitNative(tmp, lib);
    }

    private static MethodHandle find(SymbolLookup lib, String name, FunctionDescriptor fd) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new GpuException("liblorakit.so has no " + name
                + " (an older library? NativeAbi.ABI_VERSION is " + NativeAbi.ABI_VERSION + ")"));
        return LINKER.downcallHandle(sym, fd);
    }

    /** Where the library was extracted to. */
    public Path file() {
        return file;
    }

    public int abiVersion() {
        return abiVersion;
    }

    /** {@code lorakit_last_error()} of the calling thread ("" if none). */
    public String lastError() {
        try {
            MemorySegment p = (MemorySegment) lastError.invokeExact();
            return p.equals(MemorySegment.NULL) ? "" : p.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return "(lorakit_last_error failed: " + t + ")";
        }
    }

    /**
     * {@code lorakit_cuda_device_count}: the CUDA runtime's view; returns {status, count} (status 0 = cudaSuccess,
     * 35 no driver, 100 no device).
     */
    public int[] cudaDeviceCount() {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment n = a.allocate(JAVA_INT);
            int rc = (int) deviceCount.invokeExact(n);
            return new int[] {rc, n.get(JAVA_INT, 0)};
        } catch (Throwable t) {
            throw new GpuException("lorakit_cuda_device_count failed: " + t, t);
        }
    }

    /** u[N,r] = x[N,in] * A[r,in]^T through the C launcher (fp32, device addresses, CUstream or 0). */
    public void loraShrinkF32(long x, long a, long u, int n, int in, int r, long stream) {
        int rc;
        try {
            rc = (int) shrink.invokeExact(x, a, u, n, in, r, stream);
        } catch (Throwable t) {
            throw new GpuException("lorakit_lora_shrink_f32: downcall failed: " + t, t);
        }
        check(rc, "lorakit_lora_shrink_f32");
    }

    /** y[N,out] += s * u[N,r] * B[out,r]^T through the C launcher. */
    public void loraExpandF32(long u, long b, long y, int n, int r, int out, float s, long stream) {
        int rc;
        try {
            rc = (int) expand.invokeExact(u, b, y, n, r, out, s, stream);
        } catch (Throwable t) {
            throw new GpuException("lorakit_lora_expand_f32: downcall failed: " + t, t);
        }
        check(rc, "lorakit_lora_expand_f32");
    }

    /**
     * The C baseline of per-launch host overhead (PERFORMANCE.md): launches lora_shrink_fwd_kernel1 {@code count}
     * times from C (CUDA runtime, one launch check each) and returns the host nanoseconds the call took.
     */
    public long benchLaunchShrinkF32(int count, long x, long a, long u, int n, int in, int r, long stream) {
        if (benchShrink == null) {
            throw new GpuException("liblorakit.so has no lorakit_bench_launch_shrink_f32");
        }
        int rc;
        long t0 = System.nanoTime();
        try {
            rc = (int) benchShrink.invokeExact(count, x, a, u, n, in, r, stream);
        } catch (Throwable t) {
            throw new GpuException("lorakit_bench_launch_shrink_f32: downcall failed: " + t, t);
        }
        long dt = System.nanoTime() - t0;
        check(rc, "lorakit_bench_launch_shrink_f32");
        return dt;
    }

    private void check(int rc, String fn) {
        if (rc != NativeAbi.OK) {
            String kind = rc == NativeAbi.ERR_INVALID ? "LORAKIT_ERR_INVALID" : rc == NativeAbi.ERR_CUDA ? "LORAKIT_ERR_CUDA"
                    : "status " + rc;
            throw new GpuException(fn + " failed (" + kind + "): " + lastError());
        }
    }
}
