package ai.lorakit.gpu;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.util.Optional;

/**
 * Cheap, crash-free probes of the native runtimes behind the device backends, through FFM: is libcuda.so.1
 * there and how many devices does the driver report; is an OpenCL ICD loader there and how many platforms
 * does it list. Used by {@link BackendRegistry} to say exactly why a backend cannot load.
 */
final class NativeProbe {

    /** ok = the runtime answered; detail = what it said, or why it could not be asked. */
    record Result(boolean ok, String detail) {
    }

    private NativeProbe() {
    }

    static Result cuda() {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup lib;
            try {
                lib = SymbolLookup.libraryLookup("libcuda.so.1", arena);
            } catch (IllegalArgumentException e) {
                return new Result(false, "no NVIDIA driver: libcuda.so.1 not found on the library path");
            }
            Linker linker = Linker.nativeLinker();
            MethodHandle cuInit = handle(lib, linker, "cuInit",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            MethodHandle cuDeviceGetCount = handle(lib, linker, "cuDeviceGetCount",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            MethodHandle cuDriverGetVersion = handle(lib, linker, "cuDriverGetVersion",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.ADDRESS));
            if (cuInit == null || cuDeviceGetCount == null || cuDriverGetVersion == null) {
                return new Result(false, "libcuda.so.1 lacks the driver API entry points (cuInit/cuDeviceGetCount)");
            }
            int rc = (int) cuInit.invokeExact(0);
            if (rc != 0) {
                return new Result(false, "cuInit failed with CUDA error " + rc
                        + (rc == 100 ? " (no CUDA-capable device)" : rc == 35 ? " (driver too old)" : ""));
            }
            MemorySegment out = arena.allocate(ValueLayout.JAVA_INT);
            out.set(ValueLayout.JAVA_INT, 0, 0);
            rc = (int) cuDriverGetVersion.invokeExact(out);
            int version = rc == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
            out.set(ValueLayout.JAVA_INT, 0, 0);
            rc = (int) cuDeviceGetCount.invokeExact(out);
            int count = rc == 0 ? out.get(ValueLayout.JAVA_INT, 0) : 0;
            if (count == 0) {
                return new Result(false, "CUDA driver " + version + " reports no device (rc " + rc + ")");
            }
            return new Result(true, "CUDA driver " + (version / 1000) + "." + (version % 1000 / 10) + ", "
                    + count + " device(s)");
        } catch (Throwable t) {
            return new Result(false, "probing libcuda.so.1 failed: " + t);
        }
    }

    static Result openCl() {
        try (Arena arena = Arena.ofConfined()) {
            SymbolLookup lib;
            try {
                lib = SymbolLookup.libraryLookup("libOpenCL.so.1", arena);
            } catch (IllegalArgumentException e) {
                return new Result(false, "no OpenCL runtime: libOpenCL.so.1 not found "
                        + "(Debian: apt-get install ocl-icd-libopencl1 pocl-opencl-icd)");
            }
            MethodHandle clGetPlatformIDs = handle(lib, Linker.nativeLinker(), "clGetPlatformIDs",
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.ADDRESS,
                            ValueLayout.ADDRESS));
            if (clGetPlatformIDs == null) {
                return new Result(false, "libOpenCL.so.1 has no clGetPlatformIDs");
            }
            MemorySegment n = arena.allocate(ValueLayout.JAVA_INT);
            n.set(ValueLayout.JAVA_INT, 0, 0);
            int rc = (int) clGetPlatformIDs.invokeExact(0, MemorySegment.NULL, n);
            int count = n.get(ValueLayout.JAVA_INT, 0);
            if (rc != 0 || count == 0) {
                return new Result(false, "OpenCL ICD loader found but no platform is installed (clGetPlatformIDs rc "
                        + rc + "; Debian: apt-get install pocl-opencl-icd)");
            }
            return new Result(true, "OpenCL runtime with " + count + " platform(s)");
        } catch (Throwable t) {
            return new Result(false, "probing libOpenCL.so.1 failed: " + t);
        }
    }

    private static MethodHandle handle(SymbolLookup lib, Linker linker, String name, FunctionDescriptor fd) {
        Optional<MemorySegment> sym = lib.find(name);
        return sym.map(s -> linker.downcallHandle(s, fd)).orElse(null);
    }
}
