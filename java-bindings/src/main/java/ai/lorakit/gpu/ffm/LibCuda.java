package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.GpuException;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;
import static java.lang.foreign.ValueLayout.JAVA_SHORT;

/**
 * Hand-written downcall handles for the libcuda.so.1 driver-API functions lorakit uses (jextract is not on Maven
 * Central, TOOLCHAIN.md; the list is short). Conventions:
 * <ul>
 *   <li>CUresult, CUdevice and enums are {@code int}; {@code size_t} and {@code unsigned long long} are {@code long};</li>
 *   <li>handles (CUcontext, CUmodule, CUfunction, CUstream, CUevent, CUgraph, CUgraphExec) and CUdeviceptr are passed
 *       as {@code JAVA_LONG}: on the x86-64 and AArch64 C ABIs a pointer and a 64-bit integer travel in the same
 *       register, and a long needs no MemorySegment per call on the launch path;</li>
 *   <li>out-parameters and host buffers are {@code ADDRESS}; the two synchronous copies are bound with
 *       {@code Linker.Option.critical(true)} so Java arrays are passed in place (no staging copy);</li>
 *   <li>versioned symbols are bound by the name cuda.h maps to ({@code cuMemAlloc_v2}, {@code cuStreamBeginCapture_v2},
 *       {@code cuEventElapsedTime_v2} on CUDA 12.8+, falling back to the older name).</li>
 * </ul>
 * Loading throws {@link GpuException} when libcuda.so.1 is absent or lacks a required function.
 */
final class LibCuda {
    private static final Linker LINKER = Linker.nativeLinker();

    private final SymbolLookup lib;

    final MethodHandle cuInit;
    final MethodHandle cuDriverGetVersion;
    final MethodHandle cuDeviceGetCount;
    final MethodHandle cuDeviceGet;
    final MethodHandle cuDeviceGetName;
    final MethodHandle cuDeviceTotalMem;
    final MethodHandle cuMemGetInfo;
    final MethodHandle cuDeviceGetAttribute;
    final MethodHandle cuDevicePrimaryCtxRetain;
    final MethodHandle cuDevicePrimaryCtxRelease;
    final MethodHandle cuCtxSetCurrent;
    final MethodHandle cuCtxSynchronize;
    final MethodHandle cuModuleLoadData;
    final MethodHandle cuModuleUnload;
    final MethodHandle cuModuleGetFunction;
    final MethodHandle cuMemAlloc;
    final MethodHandle cuMemFree;
    final MethodHandle cuMemAllocAsync;   // null on drivers without stream-ordered allocation
    final MethodHandle cuMemFreeAsync;
    final MethodHandle cuMemcpyHtoD;
    final MethodHandle cuMemcpyDtoH;
    final MethodHandle cuMemcpyDtoDAsync;
    final MethodHandle cuMemsetD8Async;
    final MethodHandle cuMemsetD16Async;
    final MethodHandle cuMemsetD32Async;
    final MethodHandle cuPointerGetAttribute;
    final MethodHandle cuStreamCreate;
    final MethodHandle cuStreamDestroy;
    final MethodHandle cuStreamSynchronize;
    final MethodHandle cuStreamWaitEvent;
    final MethodHandle cuEventCreate;
    final MethodHandle cuEventRecord;
    final MethodHandle cuEventSynchronize;
    final MethodHandle cuEventElapsedTime;
    final MethodHandle cuEventDestroy;
    final MethodHandle cuStreamBeginCapture;
    final MethodHandle cuStreamEndCapture;
    final MethodHandle cuGraphInstantiate;
    final MethodHandle cuGraphLaunch;
    final MethodHandle cuGraphDestroy;
    final MethodHandle cuGraphExecDestroy;
    final MethodHandle cuLaunchKernel;
    final MethodHandle cuGetErrorName;
    final MethodHandle cuGetErrorString;

    private static volatile LibCuda instance;

    /** The process-wide binding (libcuda stays loaded for the JVM's life, as the driver expects). */
    static LibCuda get() {
        LibCuda l = instance;
        if (l == null) {
            synchronized (LibCuda.class) {
                l = instance;
                if (l == null) {
                    l = new LibCuda();
                    instance = l;
                }
            }
        }
        return l;
    }

    private LibCuda() {
        try {
            lib = SymbolLookup.libraryLookup("libcuda.so.1", Arena.global());
        } catch (IllegalArgumentException e) {
            throw new GpuException("no NVIDIA driver: libcuda.so.1 is not on the library path", e);
        }
        cuInit = fn("cuInit", JAVA_INT);
        cuDriverGetVersion = fn("cuDriverGetVersion", ADDRESS);
        cuDeviceGetCount = fn("cuDeviceGetCount", ADDRESS);
        cuDeviceGet = fn("cuDeviceGet", ADDRESS, JAVA_INT);
        cuDeviceGetName = fn("cuDeviceGetName", ADDRESS, JAVA_INT, JAVA_INT);
        cuDeviceTotalMem = fn("cuDeviceTotalMem_v2", ADDRESS, JAVA_INT);
        cuMemGetInfo = fn("cuMemGetInfo_v2", ADDRESS, ADDRESS);
        cuDeviceGetAttribute = fn("cuDeviceGetAttribute", ADDRESS, JAVA_INT, JAVA_INT);
        cuDevicePrimaryCtxRetain = fn("cuDevicePrimaryCtxRetain", ADDRESS, JAVA_INT);
        cuDevicePrimaryCtxRelease = fnEither("cuDevicePrimaryCtxRelease_v2", "cuDevicePrimaryCtxRelease", JAVA_INT);
        cuCtxSetCurrent = fn("cuCtxSetCurrent", JAVA_LONG);
        cuCtxSynchronize = fn("cuCtxSynchronize");
        cuModuleLoadData = fn("cuModuleLoadData", ADDRESS, ADDRESS);
        cuModuleUnload = fn("cuModuleUnload", JAVA_LONG);
        cuModuleGetFunction = fn("cuModuleGetFunction", ADDRESS, JAVA_LONG, ADDRESS);
        cuMemAlloc = fn("cuMemAlloc_v2", ADDRESS, JAVA_LONG);
        cuMemFree = fn("cuMemFree_v2", JAVA_LONG);
        cuMemAllocAsync = optional("cuMemAllocAsync", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuMemFreeAsync = optional("cuMemFreeAsync", JAVA_LONG, JAVA_LONG);
        cuMemcpyHtoD = critical("cuMemcpyHtoD_v2", JAVA_LONG, ADDRESS, JAVA_LONG);
        cuMemcpyDtoH = critical("cuMemcpyDtoH_v2", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuMemcpyDtoDAsync = fn("cuMemcpyDtoDAsync_v2", JAVA_LONG, JAVA_LONG, JAVA_LONG, JAVA_LONG);
        cuMemsetD8Async = fn("cuMemsetD8Async", JAVA_LONG, JAVA_BYTE, JAVA_LONG, JAVA_LONG);
        cuMemsetD16Async = fn("cuMemsetD16Async", JAVA_LONG, JAVA_SHORT, JAVA_LONG, JAVA_LONG);
        cuMemsetD32Async = fn("cuMemsetD32Async", JAVA_LONG, JAVA_INT, JAVA_LONG, JAVA_LONG);
        cuPointerGetAttribute = fn("cuPointerGetAttribute", ADDRESS, JAVA_INT, JAVA_LONG);
        cuStreamCreate = fn("cuStreamCreate", ADDRESS, JAVA_INT);
        cuStreamDestroy = fnEither("cuStreamDestroy_v2", "cuStreamDestroy", JAVA_LONG);
        cuStreamSynchronize = fn("cuStreamSynchronize", JAVA_LONG);
        cuStreamWaitEvent = fn("cuStreamWaitEvent", JAVA_LONG, JAVA_LONG, JAVA_INT);
        cuEventCreate = fn("cuEventCreate", ADDRESS, JAVA_INT);
        cuEventRecord = fn("cuEventRecord", JAVA_LONG, JAVA_LONG);
        cuEventSynchronize = fn("cuEventSynchronize", JAVA_LONG);
        cuEventElapsedTime = fnEither("cuEventElapsedTime_v2", "cuEventElapsedTime", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuEventDestroy = fnEither("cuEventDestroy_v2", "cuEventDestroy", JAVA_LONG);
        cuStreamBeginCapture = fnEither("cuStreamBeginCapture_v2", "cuStreamBeginCapture", JAVA_LONG, JAVA_INT);
        cuStreamEndCapture = fn("cuStreamEndCapture", JAVA_LONG, ADDRESS);
        cuGraphInstantiate = fn("cuGraphInstantiateWithFlags", ADDRESS, JAVA_LONG, JAVA_LONG);
        cuGraphLaunch = fn("cuGraphLaunch", JAVA_LONG, JAVA_LONG);
        cuGraphDestroy = fn("cuGraphDestroy", JAVA_LONG);
        cuGraphExecDestroy = fn("cuGraphExecDestroy", JAVA_LONG);
        // (f, gridDimX, Y, Z, blockDimX, Y, Z, sharedMemBytes, hStream, kernelParams, extra)
        cuLaunchKernel = fn("cuLaunchKernel", JAVA_LONG, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_INT,
                JAVA_INT, JAVA_LONG, ADDRESS, ADDRESS);
        cuGetErrorName = fn("cuGetErrorName", JAVA_INT, ADDRESS);
        cuGetErrorString = fn("cuGetErrorString", JAVA_INT, ADDRESS);
    }

    /** A required function returning CUresult. */
    private MethodHandle fn(String name, MemoryLayout... args) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new GpuException("libcuda.so.1 has no " + name
                + " (driver too old for lorakit)"));
        return LINKER.downcallHandle(sym, FunctionDescriptor.of(JAVA_INT, args));
    }

    private MethodHandle fnEither(String preferred, String fallback, MemoryLayout... args) {
        return lib.find(preferred).isPresent() ? fn(preferred, args) : fn(fallback, args);
    }

    private MethodHandle optional(String name, MemoryLayout... args) {
        return lib.find(name).map(s -> LINKER.downcallHandle(s, FunctionDescriptor.of(JAVA_INT, args))).orElse(null);
    }

    private MethodHandle critical(String name, MemoryLayout... args) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new GpuException("libcuda.so.1 has no " + name));
        return LINKER.downcallHandle(sym, FunctionDescriptor.of(JAVA_INT, args), Linker.Option.critical(true));
    }
}
