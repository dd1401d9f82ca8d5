package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.KernelSources;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * A cheap, crash-free look at the CUDA driver through FFM, shared by both CUDA devices to say exactly why one
 * cannot be used (BackendRegistry, {@code lorakit info}): is libcuda.so.1 loadable, what do cuInit, cuDriverGetVersion
 * and cuDeviceGetCount answer, and does the jar carry the fatbin. {@link #unavailableReason} is a pure function of
 * those facts so each reason is tested without a GPU.
 *
 * @param libraryFound   libcuda.so.1 could be loaded
 * @param initStatus     cuInit(0)'s CUresult (-1 when not called)
 * @param driverVersion  cuDriverGetVersion (e.g. 13000), 0 when unknown
 * @param deviceCount    cuDeviceGetCount, 0 on failure
 * @param error          why probing itself failed (missing symbols, an exception), or null
 */
public record CudaProbe(boolean libraryFound, int initStatus, int driverVersion, int deviceCount, String error) {

    /**
     * Oldest driver the fatbin runs on: nvcc 13.0 built it (TOOLCHAIN.md), and CUDA 13 code needs a CUDA 13 driver
     * (r580+). Override with -D{@value #MIN_DRIVER_PROPERTY}=12080 etc. only with a fatbin built by an older nvcc.
     */
    public static final int MIN_DRIVER_VERSION = 13000;
    public static final String MIN_DRIVER_PROPERTY = "lorakit.cuda.minDriver";

    private static volatile CudaProbe cached;

    /** The probe of this process (run once; devices do not come and go while a JVM runs). */
    public static CudaProbe get() {
        CudaProbe p = cached;
        if (p == null) {
            p = run();
            cached = p;
        }
        return p;
    }

    /** The minimum driver version in effect ({@value #MIN_DRIVER_PROPERTY} or {@link #MIN_DRIVER_VERSION}). */
    public static int minDriverVersion() {
        return Integer.getInteger(MIN_DRIVER_PROPERTY, MIN_DRIVER_VERSION);
    }

    /** Whether the jar carries the CUDA fatbin. */
    public static boolean fatbinPresent() {
        return CudaProbe.class.getClassLoader().getResource(KernelSources.FATBIN) != null;
    }

    /** Asks libcuda.so.1; never throws. */
    public static CudaProbe run() {
        SymbolLookup lib;
        try {
            lib = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
        } catch (IllegalArgumentException e) {
            return new CudaProbe(false, -1, 0, 0, null);
        } catch (RuntimeException | LinkageError e) {
            return new CudaProbe(false, -1, 0, 0, e.toString());
        }
        try (Arena arena = Arena.ofConfined()) {
            Linker linker = Linker.nativeLinker();
            MethodHandle cuInit = handle(lib, linker, "cuInit", FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            MethodHandle version = handle(lib, linker, "cuDriverGetVersion",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MethodHandle count = handle(lib, linker, "cuDeviceGetCount",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            if (cuInit == null || version == null || count == null) {
                return new CudaProbe(true, -1, 0, 0, "libcuda.so.1 lacks cuInit/cuDriverGetVersion/cuDeviceGetCount");
            }
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            out.set(ValueLayout.JAVA_INT, 0, 0);
            int v = (int) version.invokeExact(out) == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
            int rc = (int) cuInit.invokeExact(0);
            int n = 0;
            if (rc == 0) {
                out.set(ValueLayout.JAVA_INT, 0, 0);
                n = (int) count.invokeExact(out) == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
            }
            return new CudaProbe(true, rc, v, n, null);
        } catch (Throwable t) {
            return new CudaProbe(true, -1, 0, 0, t.toString());
        }
    }

    private static MethodHandle handle(SymbolLookup lib, Linker linker, String name, FunctionDescriptor fd) {
        Optional<MemorySegment> sym = lib.find(name);
        return sym.map(s -> linker.downcallHandle(s, fd)).orElse(null);
    }

    /** "13.0" for 13000. */
    public static String versionString(int v) {
        return (v / 1000) + "." + (v % 1000 / 10);
    }

    /**
     * Null when a CUDA device can be tried, else the exact reason: no libcuda, probe failure, no device, driver too
     * old, or the fatbin missing from the jar.
     */
    public String unavailableReason(int minDriver, boolean fatbin) {
        if (!libraryFound) {
            return "no NVIDIA driver: libcuda.so.1 is not on the library path"
                    + (error == null ? "" : " (" + error + ")")
                    + "; install the NVIDIA driver or add its folder to LD_LIBRARY_PATH";
        }
        if (error != null) {
            return "probing libcuda.so.1 failed: " + error;
        }
        if (initStatus == CudaErrors.NO_DEVICE) {
            return "no CUDA device: cuInit reports CUDA_ERROR_NO_DEVICE (100)";
        }
        if (initStatus == CudaErrors.INSUFFICIENT_DRIVER) {
            return "driver too old: cuInit reports CUDA_ERROR_INSUFFICIENT_DRIVER (35)"
                    + (driverVersion > 0 ? " (driver supports CUDA " + versionString(driverVersion) + ")" : "");
        }
        if (initStatus != 0) {
            return "cuInit failed: " + CudaErrors.name(initStatus) + " (" + initStatus + ")"
                    + (CudaErrors.meansNoDevice(initStatus) ? ": no usable CUDA device" : "");
        }
        if (deviceCount <= 0) {
            return "no CUDA device: the driver (CUDA " + versionString(driverVersion) + ") lists none";
        }
        if (driverVersion < minDriver) {
            return "driver too old: it supports CUDA " + versionString(driverVersion) + ", lorakit's fatbin was built by"
                    + " nvcc " + versionString(minDriver) + " and needs a CUDA " + versionString(minDriver)
                    + " driver (r580 or newer for 13.0); update the NVIDIA driver";
        }
        if (!fatbin) {
            return "fatbin missing: the jar has no " + KernelSources.FATBIN + " (it was built without nvcc); build on a"
                    + " machine with nvcc " + versionString(minDriver);
        }
        return null;
    }

    /** {@link #unavailableReason(int, boolean)} with this process's settings. */
    public String unavailableReason() {
        return unavailableReason(minDriverVersion(), fatbinPresent());
    }

    /** "CUDA driver 13.0, 1 device(s)". */
    public String summary() {
        return "CUDA driver " + versionString(driverVersion) + ", " + deviceCount + " device(s)";
    }
}
