package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.cuda.CudaDriver;
import ai.lorakit.gpu.cuda.CudaErrors;
import ai.lorakit.gpu.cuda.ParamBlock;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;

/**
 * {@link CudaDriver} through Panama FFM: each method is one downcall into libcuda.so.1 ({@link LibCuda}) with its
 * CUresult checked and named. Out-parameters go through one scratch segment (a device is used by one thread at a
 * time); the launch path allocates nothing.
 */
final class FfmDriver implements CudaDriver {
    private static final int POINTER_ATTRIBUTE_CONTEXT = 1;
    private static final int POINTER_ATTRIBUTE_MEMORY_TYPE = 2;

    private final LibCuda cu;
    private final Arena arena = Arena.ofAuto();
    private final MemorySegment out = arena.allocate(256, 16);   // out-parameters and device names

    FfmDriver() {
        this.cu = LibCuda.get();
    }

    @Override
    public String binding() {
        return "ffm";
    }

    @Override
    public String bindingVersion() {
        return "Panama FFM (libcuda.so.1 driver API, liblorakit.so)";
    }

    // ---------------------------------------------------------------- checks

    private void check(int rc, String call) {
        if (rc != 0) {
            throw CudaErrors.failure(call, rc, errorName(rc), errorString(rc));
        }
    }

    private static GpuException rethrow(String call, Throwable t) {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        return new GpuException(call + ": downcall failed: " + t, t);
    }

    @Override
    public String errorName(int code) {
        return message(cu.cuGetErrorName, code, CudaErrors.name(code));
    }

    @Override
    public String errorString(int code) {
        return message(cu.cuGetErrorString, code, "");
    }

    private String message(java.lang.invoke.MethodHandle h, int code, String fallback) {
        try {
            out.set(ValueLayout.ADDRESS, 0, MemorySegment.NULL);
            int rc = (int) h.invokeExact(code, out);
            MemorySegment p = out.get(ValueLayout.ADDRESS, 0);
            return rc != 0 || p.equals(MemorySegment.NULL) ? fallback : p.reinterpret(4096).getString(0);
        } catch (Throwable t) {
            return fallback;
        }
    }

    private int outInt() {
        return out.get(ValueLayout.JAVA_INT, 0);
    }

    private long outLong() {
        return out.get(ValueLayout.JAVA_LONG, 0);
    }

    // ---------------------------------------------------------------- device and context

    @Override
    public void init() {
        try {
            check((int) cu.cuInit.invokeExact(0), "cuInit");
        } catch (Throwable t) {
            throw rethrow("cuInit", t);
        }
    }

    @Override
    public int driverVersion() {
        try {
            out.set(ValueLayout.JAVA_INT, 0, 0);
            check((int) cu.cuDriverGetVersion.invokeExact(out), "cuDriverGetVersion");
            return outInt();
        } catch (Throwable t) {
            throw rethrow("cuDriverGetVersion", t);
        }
    }

    @Override
    public int deviceCount() {
        try {
            out.set(ValueLayout.JAVA_INT, 0, 0);
            check((int) cu.cuDeviceGetCount.invokeExact(out), "cuDeviceGetCount");
            return outInt();
        } catch (Throwable t) {
            throw rethrow("cuDeviceGetCount", t);
        }
    }

    @Override
    public int deviceGet(int ordinal) {
        try {
            check((int) cu.cuDeviceGet.invokeExact(out, ordinal), "cuDeviceGet(" + ordinal + ")");
            return outInt();
        } catch (Throwable t) {
            throw rethrow("cuDeviceGet", t);
        }
    }

    @Override
    public String deviceName(int device) {
        try {
            out.fill((byte) 0);
            check((int) cu.cuDeviceGetName.invokeExact(out, (int) out.byteSize() - 1, device), "cuDeviceGetName");
            return out.getString(0, StandardCharsets.UTF_8);
        } catch (Throwable t) {
            throw rethrow("cuDeviceGetName", t);
        }
    }

    @Override
    public long[] memGetInfo() {
        try {
            check((int) cu.cuMemGetInfo.invokeExact(out, out.asSlice(8)), "cuMemGetInfo");
            return new long[] {out.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0),
                out.get(java.lang.foreign.ValueLayout.JAVA_LONG, 8)};
        } catch (Throwable t) {
            throw rethrow("cuMemGetInfo", t);
        }
    }

    @Override
    public long deviceTotalMem(int device) {
        try {
            check((int) cu.cuDeviceTotalMem.invokeExact(out, device), "cuDeviceTotalMem");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuDeviceTotalMem", t);
        }
    }

    @Override
    public int deviceAttribute(int attribute, int device) {
        try {
            out.set(ValueLayout.JAVA_INT, 0, 0);
            check((int) cu.cuDeviceGetAttribute.invokeExact(out, attribute, device), "cuDeviceGetAttribute(" + attribute + ")");
            return outInt();
        } catch (Throwable t) {
            throw rethrow("cuDeviceGetAttribute", t);
        }
    }

    @Override
    public long primaryCtxRetain(int device) {
        try {
            check((int) cu.cuDevicePrimaryCtxRetain.invokeExact(out, device), "cuDevicePrimaryCtxRetain");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuDevicePrimaryCtxRetain", t);
        }
    }

    @Override
    public void primaryCtxRelease(int device) {
        try {
            check((int) cu.cuDevicePrimaryCtxRelease.invokeExact(device), "cuDevicePrimaryCtxRelease");
        } catch (Throwable t) {
            throw rethrow("cuDevicePrimaryCtxRelease", t);
        }
    }

    @Override
    public void ctxSetCurrent(long ctx) {
        try {
            check((int) cu.cuCtxSetCurrent.invokeExact(ctx), "cuCtxSetCurrent");
        } catch (Throwable t) {
            throw rethrow("cuCtxSetCurrent", t);
        }
    }

    @Override
    public void ctxSynchronize() {
        try {
            check((int) cu.cuCtxSynchronize.invokeExact(), "cuCtxSynchronize");
        } catch (Throwable t) {
            throw rethrow("cuCtxSynchronize", t);
        }
    }

    // ---------------------------------------------------------------- modules

    @Override
    public long moduleLoadData(byte[] image) {
        try (Arena a = Arena.ofConfined()) {
            MemorySegment img = a.allocate(image.length + 1L, 16);   // NUL-terminated for PTX, harmless for a fatbin
            MemorySegment.copy(image, 0, img, ValueLayout.JAVA_BYTE, 0, image.length);
            check((int) cu.cuModuleLoadData.invokeExact(out, img), "cuModuleLoadData(" + image.length + " bytes)");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuModuleLoadData", t);
        }
    }

    @Override
    public void moduleUnload(long module) {
        try {
            check((int) cu.cuModuleUnload.invokeExact(module), "cuModuleUnload");
        } catch (Throwable t) {
            throw rethrow("cuModuleUnload", t);
        }
    }

    @Override
    public long moduleGetFunction(long module, String name) {
        try (Arena a = Arena.ofConfined()) {
            int rc = (int) cu.cuModuleGetFunction.invokeExact(out, module, a.allocateFrom(name));
            if (rc == CudaErrors.NOT_FOUND) {
                return 0;
            }
            check(rc, "cuModuleGetFunction(" + name + ")");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuModuleGetFunction", t);
        }
    }

    // ---------------------------------------------------------------- memory

    @Override
    public long memAlloc(long bytes) {
        try {
            check((int) cu.cuMemAlloc.invokeExact(out, bytes), "cuMemAlloc(" + bytes + " bytes)");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuMemAlloc", t);
        }
    }

    @Override
    public void memFree(long dptr) {
        try {
            check((int) cu.cuMemFree.invokeExact(dptr), "cuMemFree(0x" + Long.toHexString(dptr) + ")");
        } catch (Throwable t) {
            throw rethrow("cuMemFree", t);
        }
    }

    @Override
    public long memAllocAsync(long bytes, long stream) {
        if (cu.cuMemAllocAsync == null) {
            throw new GpuException("cuMemAllocAsync: this driver has no stream-ordered allocation (CUDA 11.2+)");
        }
        try {
            check((int) cu.cuMemAllocAsync.invokeExact(out, bytes, stream), "cuMemAllocAsync(" + bytes + " bytes)");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuMemAllocAsync", t);
        }
    }

    @Override
    public void memFreeAsync(long dptr, long stream) {
        if (cu.cuMemFreeAsync == null) {
            throw new GpuException("cuMemFreeAsync: this driver has no stream-ordered allocation (CUDA 11.2+)");
        }
        try {
            check((int) cu.cuMemFreeAsync.invokeExact(dptr, stream), "cuMemFreeAsync");
        } catch (Throwable t) {
            throw rethrow("cuMemFreeAsync", t);
        }
    }

    /** A host array or direct buffer as a segment (heap segments are allowed by the critical downcalls). */
    static MemorySegment host(Object h) {
        return switch (h) {
            case float[] a -> MemorySegment.ofArray(a);
            case int[] a -> MemorySegment.ofArray(a);
            case short[] a -> MemorySegment.ofArray(a);
            case ByteBuffer b -> MemorySegment.ofBuffer(b);
            default -> throw new IllegalArgumentException("host memory must be float[], int[], short[] or a direct"
                    + " ByteBuffer, got " + h.getClass().getSimpleName());
        };
    }

    @Override
    public void memcpyHtoD(long dst, Object src, long bytes) {
        try {
            check((int) cu.cuMemcpyHtoD.invokeExact(dst, host(src), bytes), "cuMemcpyHtoD(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow("cuMemcpyHtoD", t);
        }
    }

    @Override
    public void memcpyDtoH(Object dst, long src, long bytes) {
        try {
            check((int) cu.cuMemcpyDtoH.invokeExact(host(dst), src, bytes), "cuMemcpyDtoH(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow("cuMemcpyDtoH", t);
        }
    }

    @Override
    public void memcpyDtoDAsync(long dst, long src, long bytes, long stream) {
        try {
            check((int) cu.cuMemcpyDtoDAsync.invokeExact(dst, src, bytes, stream), "cuMemcpyDtoDAsync(" + bytes + " bytes)");
        } catch (Throwable t) {
            throw rethrow("cuMemcpyDtoDAsync", t);
        }
    }

    @Override
    public void memsetD8Async(long dst, byte value, long count, long stream) {
        try {
            check((int) cu.cuMemsetD8Async.invokeExact(dst, value, count, stream), "cuMemsetD8Async(" + count + ")");
        } catch (Throwable t) {
            throw rethrow("cuMemsetD8Async", t);
        }
    }

    @Override
    public void memsetD16Async(long dst, short value, long count, long stream) {
        try {
            check((int) cu.cuMemsetD16Async.invokeExact(dst, value, count, stream), "cuMemsetD16Async(" + count + ")");
        } catch (Throwable t) {
            throw rethrow("cuMemsetD16Async", t);
        }
    }

    @Override
    public void memsetD32Async(long dst, int value, long count, long stream) {
        try {
            check((int) cu.cuMemsetD32Async.invokeExact(dst, value, count, stream), "cuMemsetD32Async(" + count + ")");
        } catch (Throwable t) {
            throw rethrow("cuMemsetD32Async", t);
        }
    }

    @Override
    public PointerInfo pointerInfo(long address) {
        try {
            out.set(ValueLayout.JAVA_LONG, 0, 0);
            check((int) cu.cuPointerGetAttribute.invokeExact(out, POINTER_ATTRIBUTE_CONTEXT, address),
                    "cuPointerGetAttribute(CONTEXT, 0x" + Long.toHexString(address) + ")");
            long ctx = outLong();
            out.set(ValueLayout.JAVA_INT, 0, 0);
            check((int) cu.cuPointerGetAttribute.invokeExact(out, POINTER_ATTRIBUTE_MEMORY_TYPE, address),
                    "cuPointerGetAttribute(MEMORY_TYPE, 0x" + Long.toHexString(address) + ")");
            return new PointerInfo(ctx, outInt());
        } catch (Throwable t) {
            throw rethrow("cuPointerGetAttribute", t);
        }
    }

    // ---------------------------------------------------------------- streams and events

    @Override
    public long streamCreate(int flags) {
        try {
            check((int) cu.cuStreamCreate.invokeExact(out, flags), "cuStreamCreate");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuStreamCreate", t);
        }
    }

    @Override
    public void streamDestroy(long stream) {
        try {
            check((int) cu.cuStreamDestroy.invokeExact(stream), "cuStreamDestroy");
        } catch (Throwable t) {
            throw rethrow("cuStreamDestroy", t);
        }
    }

    @Override
    public void streamSynchronize(long stream) {
        try {
            check((int) cu.cuStreamSynchronize.invokeExact(stream), "cuStreamSynchronize");
        } catch (Throwable t) {
            throw rethrow("cuStreamSynchronize", t);
        }
    }

    @Override
    public void streamWaitEvent(long stream, long event) {
        try {
            check((int) cu.cuStreamWaitEvent.invokeExact(stream, event, 0), "cuStreamWaitEvent");
        } catch (Throwable t) {
            throw rethrow("cuStreamWaitEvent", t);
        }
    }

    @Override
    public long eventCreate(int flags) {
        try {
            check((int) cu.cuEventCreate.invokeExact(out, flags), "cuEventCreate");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuEventCreate", t);
        }
    }

    @Override
    public void eventRecord(long event, long stream) {
        try {
            check((int) cu.cuEventRecord.invokeExact(event, stream), "cuEventRecord");
        } catch (Throwable t) {
            throw rethrow("cuEventRecord", t);
        }
    }

    @Override
    public void eventSynchronize(long event) {
        try {
            check((int) cu.cuEventSynchronize.invokeExact(event), "cuEventSynchronize");
        } catch (Throwable t) {
            throw rethrow("cuEventSynchronize", t);
        }
    }

    @Override
    public float eventElapsedTime(long start, long end) {
        try {
            check((int) cu.cuEventElapsedTime.invokeExact(out, start, end), "cuEventElapsedTime");
            return out.get(ValueLayout.JAVA_FLOAT, 0);
        } catch (Throwable t) {
            throw rethrow("cuEventElapsedTime", t);
        }
    }

    @Override
    public void eventDestroy(long event) {
        try {
            check((int) cu.cuEventDestroy.invokeExact(event), "cuEventDestroy");
        } catch (Throwable t) {
            throw rethrow("cuEventDestroy", t);
        }
    }

    // ---------------------------------------------------------------- graphs

    @Override
    public void streamBeginCapture(long stream, int mode) {
        try {
            check((int) cu.cuStreamBeginCapture.invokeExact(stream, mode), "cuStreamBeginCapture");
        } catch (Throwable t) {
            throw rethrow("cuStreamBeginCapture", t);
        }
    }

    @Override
    public long streamEndCapture(long stream) {
        try {
            out.set(ValueLayout.JAVA_LONG, 0, 0);
            check((int) cu.cuStreamEndCapture.invokeExact(stream, out), "cuStreamEndCapture");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuStreamEndCapture", t);
        }
    }

    @Override
    public long graphInstantiate(long graph) {
        try {
            check((int) cu.cuGraphInstantiate.invokeExact(out, graph, 0L), "cuGraphInstantiateWithFlags");
            return outLong();
        } catch (Throwable t) {
            throw rethrow("cuGraphInstantiateWithFlags", t);
        }
    }

    @Override
    public void graphLaunch(long graphExec, long stream) {
        try {
            check((int) cu.cuGraphLaunch.invokeExact(graphExec, stream), "cuGraphLaunch");
        } catch (Throwable t) {
            throw rethrow("cuGraphLaunch", t);
        }
    }

    @Override
    public void graphDestroy(long graph) {
        try {
            check((int) cu.cuGraphDestroy.invokeExact(graph), "cuGraphDestroy");
        } catch (Throwable t) {
            throw rethrow("cuGraphDestroy", t);
        }
    }

    @Override
    public void graphExecDestroy(long graphExec) {
        try {
            check((int) cu.cuGraphExecDestroy.invokeExact(graphExec), "cuGraphExecDestroy");
        } catch (Throwable t) {
            throw rethrow("cuGraphExecDestroy", t);
        }
    }

    // ---------------------------------------------------------------- launch

    @Override
    public Launcher launcher(long function, String name, ParamBlock params) {
        MemorySegment kernelParams = params.pointerArray();
        return (gx, gy, gz, bx, by, bz, smem, stream) -> {
            int rc;
            try {
                rc = (int) cu.cuLaunchKernel.invokeExact(function, gx, gy, gz, bx, by, bz, smem, stream, kernelParams,
                        MemorySegment.NULL);
            } catch (Throwable t) {
                throw rethrow("cuLaunchKernel(" + name + ")", t);
            }
            if (rc != 0) {
                throw launchFailure(name, rc, gx, gy, gz, bx, by, bz);
            }
        };
    }

    private DeviceException launchFailure(String name, int rc, int gx, int gy, int gz, int bx, int by, int bz) {
        return CudaErrors.failure("cuLaunchKernel(" + name + ")", rc, errorName(rc), errorString(rc) + " (grid ("
                + gx + ", " + gy + ", " + gz + ") block (" + bx + ", " + by + ", " + bz + "))");
    }
}
