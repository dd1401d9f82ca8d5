package ai.lorakit.gpu.jcuda;

import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.cuda.CudaDriver;
import ai.lorakit.gpu.cuda.CudaErrors;
import ai.lorakit.gpu.cuda.ParamBlock;
import jcuda.CudaException;
import jcuda.JCudaVersion;
import jcuda.Pointer;
import jcuda.driver.CUcontext;
import jcuda.driver.CUdevice;
import jcuda.driver.CUdeviceptr;
import jcuda.driver.CUevent;
import jcuda.driver.CUfunction;
import jcuda.driver.CUgraph;
import jcuda.driver.CUgraphExec;
import jcuda.driver.CUmodule;
import jcuda.driver.CUresult;
import jcuda.driver.CUstream;
import jcuda.driver.JCudaDriver;

import java.lang.reflect.Field;
import java.lang.reflect.Modifier;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.Map;

/**
 * {@link CudaDriver} through JCuda's driver API ({@code jcuda.driver.JCudaDriver}). JCuda's exceptions are on
 * ({@code JCudaDriver.setExceptionsEnabled(true)}, as the JCuda samples do): a failed call throws
 * {@link CudaException} carrying the CUresult's name, which is turned here into a {@link DeviceException} naming the
 * call, the CUresult and the driver's text. Return codes are checked as well, in case code sharing the JVM turned the
 * exceptions off again. Raw handles become JCuda objects through {@link JCudaHandles}; the launch path reuses one
 * CUfunction, one CUstream and one kernelParams Pointer per kernel (no per-call {@code Pointer.to}).
 *
 * <p>Constructing it loads JCuda's JNI library, which needs libcuda.so.1: without a driver it throws
 * UnsatisfiedLinkError (later NoClassDefFoundError); callers catch LinkageError.
 */
final class JCudaDriverCalls implements CudaDriver {
    private static final Map<String, Integer> CODES = codes();

    private long lastStreamRaw = -1;
    private CUstream lastStream;

    JCudaDriverCalls() {
        JCudaDriver.setExceptionsEnabled(true);   // loads libJCudaDriver (needs libcuda.so.1)
    }

    /** CUresult name -> code, from JCuda's constants (complete, unlike a hand-written table). */
    private static Map<String, Integer> codes() {
        Map<String, Integer> m = new HashMap<>();
        for (Field f : CUresult.class.getFields()) {
            if (f.getType() == int.class && Modifier.isStatic(f.getModifiers())) {
                try {
                    m.put(f.getName(), f.getInt(null));
                } catch (IllegalAccessException e) {
                    // public constants: cannot happen
                }
            }
        }
        return m;
    }

    @Override
    public String binding() {
        return "jcuda";
    }

    @Override
    public String bindingVersion() {
        return "JCuda " + JCudaVersion.get() + " (driver API)";
    }

    // ---------------------------------------------------------------- checks

    private void check(int rc, String call) {
        if (rc != CudaErrors.SUCCESS) {
            throw CudaErrors.failure(call, rc, errorName(rc), errorString(rc));
        }
    }

    /** JCuda's exception (message: the CUresult name, possibly followed by text) as a DeviceException. */
    private DeviceException translate(CudaException e, String call) {
        String msg = e.getMessage() == null ? "" : e.getMessage().trim();
        String name = msg.split("\\s+", 2)[0];
        Integer code = CODES.get(name);
        int rc = code != null ? code : CudaErrors.code(name);
        DeviceException d = CudaErrors.failure(call, rc, name.isEmpty() ? CudaErrors.name(rc) : name,
                rc >= 0 ? errorString(rc) : msg);
        d.initCause(e);
        return d;
    }

    @Override
    public String errorName(int code) {
        String s = CUresult.stringFor(code);
        return s == null || s.startsWith("INVALID CUresult") ? CudaErrors.name(code) : s;
    }

    @Override
    public String errorString(int code) {
        try {
            String[] out = new String[1];
            JCudaDriver.cuGetErrorString(code, out);
            return out[0] == null ? "" : out[0];
        } catch (CudaException e) {
            return "";
        }
    }

    private static CUdeviceptr ptr(long address) {
        return JCudaHandles.wrap(new CUdeviceptr(), address);
    }

    private static CUdevice dev(int device) {
        return JCudaHandles.wrap(new CUdevice(), device);
    }

    private CUstream stream(long raw) {
        if (raw != lastStreamRaw) {
            lastStream = JCudaHandles.wrap(new CUstream(), raw);
            lastStreamRaw = raw;
        }
        return lastStream;
    }

    private static Pointer host(Object h) {
        return switch (h) {
            case float[] a -> Pointer.to(a);
            case int[] a -> Pointer.to(a);
            case short[] a -> Pointer.to(a);
            case ByteBuffer b -> Pointer.toBuffer(b);   // honours the position
            default -> throw new IllegalArgumentException("host memory must be float[], int[], short[] or a direct"
                    + " ByteBuffer, got " + h.getClass().getSimpleName());
        };
    }

    // ---------------------------------------------------------------- device and context

    @Override
    public void init() {
        try {
            check(JCudaDriver.cuInit(0), "cuInit");
        } catch (CudaException e) {
            throw translate(e, "cuInit");
        }
    }

    @Override
    public int driverVersion() {
        int[] v = new int[1];
        try {
            check(JCudaDriver.cuDriverGetVersion(v), "cuDriverGetVersion");
        } catch (CudaException e) {
            throw translate(e, "cuDriverGetVersion");
        }
        return v[0];
    }

    @Override
    public int deviceCount() {
        int[] n = new int[1];
        try {
            check(JCudaDriver.cuDeviceGetCount(n), "cuDeviceGetCount");
        } catch (CudaException e) {
            throw translate(e, "cuDeviceGetCount");
        }
        return n[0];
    }

    @Override
    public int deviceGet(int ordinal) {
        CUdevice d = new CUdevice();
        try {
            check(JCudaDriver.cuDeviceGet(d, ordinal), "cuDeviceGet(" + ordinal + ")");
        } catch (CudaException e) {
            throw translate(e, "cuDeviceGet(" + ordinal + ")");
        }
        return (int) JCudaHandles.raw(d);
    }

    @Override
    public String deviceName(int device) {
        byte[] name = new byte[256];
        try {
            check(JCudaDriver.cuDeviceGetName(name, name.length, dev(device)), "cuDeviceGetName");
        } catch (CudaException e) {
            throw translate(e, "cuDeviceGetName");
        }
        int n = 0;
        while (n < name.length && name[n] != 0) {
            n++;
        }
        return new String(name, 0, n, StandardCharsets.UTF_8);
    }

    @Override
    public long[] memGetInfo() {
        long[] free = new long[1];
        long[] total = new long[1];
        try {
            check(JCudaDriver.cuMemGetInfo(free, total), "cuMemGetInfo");
        } catch (CudaException e) {
            throw translate(e, "cuMemGetInfo");
        }
        return new long[] {free[0], total[0]};
    }

    @Override
    public long deviceTotalMem(int device) {
        long[] b = new long[1];
        try {
            check(JCudaDriver.cuDeviceTotalMem(b, dev(device)), "cuDeviceTotalMem");
        } catch (CudaException e) {
            throw translate(e, "cuDeviceTotalMem");
        }
        return b[0];
    }

    @Override
    public int deviceAttribute(int attribute, int device) {
        int[] v = new int[1];
        try {
            check(JCudaDriver.cuDeviceGetAttribute(v, attribute, dev(device)), "cuDeviceGetAttribute(" + attribute + ")");
        } catch (CudaException e) {
            throw translate(e, "cuDeviceGetAttribute(" + attribute + ")");
        }
        return v[0];
    }

    @Override
    public long primaryCtxRetain(int device) {
        CUcontext c = new CUcontext();
        try {
            check(JCudaDriver.cuDevicePrimaryCtxRetain(c, dev(device)), "cuDevicePrimaryCtxRetain");
        } catch (CudaException e) {
            throw translate(e, "cuDevicePrimaryCtxRetain");
        }
        return JCudaHandles.raw(c);
    }

    @Override
    public void primaryCtxRelease(int device) {
        try {
            check(JCudaDriver.cuDevicePrimaryCtxRelease(dev(device)), "cuDevicePrimaryCtxRelease");
        } catch (CudaException e) {
            throw translate(e, "cuDevicePrimaryCtxRelease");
        }
    }

    @Override
    public void ctxSetCurrent(long ctx) {
        try {
            check(JCudaDriver.cuCtxSetCurrent(JCudaHandles.wrap(new CUcontext(), ctx)), "cuCtxSetCurrent");
        } catch (CudaException e) {
            throw translate(e, "cuCtxSetCurrent");
        }
    }

    @Override
    public void ctxSynchronize() {
        try {
            check(JCudaDriver.cuCtxSynchronize(), "cuCtxSynchronize");
        } catch (CudaException e) {
            throw translate(e, "cuCtxSynchronize");
        }
    }

    // ---------------------------------------------------------------- modules

    @Override
    public long moduleLoadData(byte[] image) {
        CUmodule m = new CUmodule();
        String call = "cuModuleLoadData(" + image.length + " bytes)";
        try {
            check(JCudaDriver.cuModuleLoadData(m, image), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
        return JCudaHandles.raw(m);
    }

    @Override
    public void moduleUnload(long module) {
        try {
            check(JCudaDriver.cuModuleUnload(JCudaHandles.wrap(new CUmodule(), module)), "cuModuleUnload");
        } catch (CudaException e) {
            throw translate(e, "cuModuleUnload");
        }
    }

    @Override
    public long moduleGetFunction(long module, String name) {
        CUfunction f = new CUfunction();
        String call = "cuModuleGetFunction(" + name + ")";
        int rc;
        try {
            rc = JCudaDriver.cuModuleGetFunction(f, JCudaHandles.wrap(new CUmodule(), module), name);
        } catch (CudaException e) {
            DeviceException d = translate(e, call);
            if (d.status() == CudaErrors.NOT_FOUND) {
                return 0;
            }
            throw d;
        }
        if (rc == CudaErrors.NOT_FOUND) {
            return 0;
        }
        check(rc, call);
        return JCudaHandles.raw(f);
    }

    // ---------------------------------------------------------------- memory

    @Override
    public long memAlloc(long bytes) {
        CUdeviceptr p = new CUdeviceptr();
        String call = "cuMemAlloc(" + bytes + " bytes)";
        try {
            check(JCudaDriver.cuMemAlloc(p, bytes), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
        return JCudaHandles.address(p);
    }

    @Override
    public void memFree(long dptr) {
        String call = "cuMemFree(0x" + Long.toHexString(dptr) + ")";
        try {
            check(JCudaDriver.cuMemFree(ptr(dptr)), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
    }

    @Override
    public long memAllocAsync(long bytes, long stream) {
        CUdeviceptr p = new CUdeviceptr();
        String call = "cuMemAllocAsync(" + bytes + " bytes)";
        try {
            check(JCudaDriver.cuMemAllocAsync(p, bytes, stream(stream)), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
        return JCudaHandles.address(p);
    }

    @Override
    public void memFreeAsync(long dptr, long stream) {
        try {
            check(JCudaDriver.cuMemFreeAsync(ptr(dptr), stream(stream)), "cuMemFreeAsync");
        } catch (CudaException e) {
            throw translate(e, "cuMemFreeAsync");
        }
    }

    @Override
    public void memcpyHtoD(long dst, Object src, long bytes) {
        String call = "cuMemcpyHtoD(" + bytes + " bytes)";
        try {
            check(JCudaDriver.cuMemcpyHtoD(ptr(dst), host(src), bytes), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
    }

    @Override
    public void memcpyDtoH(Object dst, long src, long bytes) {
        String call = "cuMemcpyDtoH(" + bytes + " bytes)";
        try {
            check(JCudaDriver.cuMemcpyDtoH(host(dst), ptr(src), bytes), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
    }

    @Override
    public void memcpyDtoDAsync(long dst, long src, long bytes, long stream) {
        String call = "cuMemcpyDtoDAsync(" + bytes + " bytes)";
        try {
            check(JCudaDriver.cuMemcpyDtoDAsync(ptr(dst), ptr(src), bytes, stream(stream)), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
    }

    @Override
    public void memsetD8Async(long dst, byte value, long count, long stream) {
        try {
            check(JCudaDriver.cuMemsetD8Async(ptr(dst), value, count, stream(stream)), "cuMemsetD8Async");
        } catch (CudaException e) {
            throw translate(e, "cuMemsetD8Async(" + count + ")");
        }
    }

    @Override
    public void memsetD16Async(long dst, short value, long count, long stream) {
        try {
            check(JCudaDriver.cuMemsetD16Async(ptr(dst), value, count, stream(stream)), "cuMemsetD16Async");
        } catch (CudaException e) {
            throw translate(e, "cuMemsetD16Async(" + count + ")");
        }
    }

    @Override
    public void memsetD32Async(long dst, int value, long count, long stream) {
        try {
            check(JCudaDriver.cuMemsetD32Async(ptr(dst), value, count, stream(stream)), "cuMemsetD32Async");
        } catch (CudaException e) {
            throw translate(e, "cuMemsetD32Async(" + count + ")");
        }
    }

    @Override
    public PointerInfo pointerInfo(long address) {
        long[] ctx = new long[1];
        int[] type = new int[1];
        String call = "cuPointerGetAttribute(0x" + Long.toHexString(address) + ")";
        try {
            check(JCudaDriver.cuPointerGetAttribute(Pointer.to(ctx), 1 /* CONTEXT */, ptr(address)), call);
            check(JCudaDriver.cuPointerGetAttribute(Pointer.to(type), 2 /* MEMORY_TYPE */, ptr(address)), call);
        } catch (CudaException e) {
            throw translate(e, call);
        }
        return new PointerInfo(ctx[0], type[0]);
    }

    // ---------------------------------------------------------------- streams and events

    @Override
    public long streamCreate(int flags) {
        CUstream s = new CUstream();
        try {
            check(JCudaDriver.cuStreamCreate(s, flags), "cuStreamCreate");
        } catch (CudaException e) {
            throw translate(e, "cuStreamCreate");
        }
        return JCudaHandles.raw(s);
    }

    @Override
    public void streamDestroy(long stream) {
        try {
            check(JCudaDriver.cuStreamDestroy(JCudaHandles.wrap(new CUstream(), stream)), "cuStreamDestroy");
        } catch (CudaException e) {
            throw translate(e, "cuStreamDestroy");
        }
        if (stream == lastStreamRaw) {
            lastStreamRaw = -1;
            lastStream = null;
        }
    }

    @Override
    public void streamSynchronize(long stream) {
        try {
            check(JCudaDriver.cuStreamSynchronize(stream(stream)), "cuStreamSynchronize");
        } catch (CudaException e) {
            throw translate(e, "cuStreamSynchronize");
        }
    }

    @Override
    public void streamWaitEvent(long stream, long event) {
        try {
            check(JCudaDriver.cuStreamWaitEvent(stream(stream), JCudaHandles.wrap(new CUevent(), event), 0),
                    "cuStreamWaitEvent");
        } catch (CudaException e) {
            throw translate(e, "cuStreamWaitEvent");
        }
    }

    @Override
    public long eventCreate(int flags) {
        CUevent ev = new CUevent();
        try {
            check(JCudaDriver.cuEventCreate(ev, flags), "cuEventCreate");
        } catch (CudaException e) {
            throw translate(e, "cuEventCreate");
        }
        return JCudaHandles.raw(ev);
    }

    @Override
    public void eventRecord(long event, long stream) {
        try {
            check(JCudaDriver.cuEventRecord(JCudaHandles.wrap(new CUevent(), event), stream(stream)), "cuEventRecord");
        } catch (CudaException e) {
            throw translate(e, "cuEventRecord");
        }
    }

    @Override
    public void eventSynchronize(long event) {
        try {
            check(JCudaDriver.cuEventSynchronize(JCudaHandles.wrap(new CUevent(), event)), "cuEventSynchronize");
        } catch (CudaException e) {
            throw translate(e, "cuEventSynchronize");
        }
    }

    @Override
    public float eventElapsedTime(long start, long end) {
        float[] ms = new float[1];
        try {
            check(JCudaDriver.cuEventElapsedTime(ms, JCudaHandles.wrap(new CUevent(), start),
                    JCudaHandles.wrap(new CUevent(), end)), "cuEventElapsedTime");
        } catch (CudaException e) {
            throw translate(e, "cuEventElapsedTime");
        }
        return ms[0];
    }

    @Override
    public void eventDestroy(long event) {
        try {
            check(JCudaDriver.cuEventDestroy(JCudaHandles.wrap(new CUevent(), event)), "cuEventDestroy");
        } catch (CudaException e) {
            throw translate(e, "cuEventDestroy");
        }
    }

    // ---------------------------------------------------------------- graphs

    @Override
    public void streamBeginCapture(long stream, int mode) {
        try {
            check(JCudaDriver.cuStreamBeginCapture(stream(stream), mode), "cuStreamBeginCapture");
        } catch (CudaException e) {
            throw translate(e, "cuStreamBeginCapture");
        }
    }

    @Override
    public long streamEndCapture(long stream) {
        CUgraph g = new CUgraph();
        try {
            check(JCudaDriver.cuStreamEndCapture(stream(stream), g), "cuStreamEndCapture");
        } catch (CudaException e) {
            throw translate(e, "cuStreamEndCapture");
        }
        return JCudaHandles.raw(g);
    }

    @Override
    public long graphInstantiate(long graph) {
        CUgraphExec x = new CUgraphExec();
        try {
            check(JCudaDriver.cuGraphInstantiate(x, JCudaHandles.wrap(new CUgraph(), graph), 0L), "cuGraphInstantiate");
        } catch (CudaException e) {
            throw translate(e, "cuGraphInstantiate");
        }
        return JCudaHandles.raw(x);
    }

    @Override
    public void graphLaunch(long graphExec, long stream) {
        try {
            check(JCudaDriver.cuGraphLaunch(JCudaHandles.wrap(new CUgraphExec(), graphExec), stream(stream)),
                    "cuGraphLaunch");
        } catch (CudaException e) {
            throw translate(e, "cuGraphLaunch");
        }
    }

    @Override
    public void graphDestroy(long graph) {
        try {
            check(JCudaDriver.cuGraphDestroy(JCudaHandles.wrap(new CUgraph(), graph)), "cuGraphDestroy");
        } catch (CudaException e) {
            throw translate(e, "cuGraphDestroy");
        }
    }

    @Override
    public void graphExecDestroy(long graphExec) {
        try {
            check(JCudaDriver.cuGraphExecDestroy(JCudaHandles.wrap(new CUgraphExec(), graphExec)), "cuGraphExecDestroy");
        } catch (CudaException e) {
            throw translate(e, "cuGraphExecDestroy");
        }
    }

    // ---------------------------------------------------------------- launch

    /**
     * One CUfunction object and one kernelParams Pointer (to the block's pointer array, a direct buffer JCuda passes
     * by address) are made here, once per kernel.
     */
    @Override
    public Launcher launcher(long function, String name, ParamBlock params) {
        CUfunction f = JCudaHandles.wrap(new CUfunction(), function);
        Pointer kernelParams = Pointer.to(params.pointerArray().asByteBuffer());
        return (gx, gy, gz, bx, by, bz, smem, streamRaw) -> {
            int rc;
            try {
                rc = JCudaDriver.cuLaunchKernel(f, gx, gy, gz, bx, by, bz, smem, stream(streamRaw), kernelParams, null);
            } catch (CudaException e) {
                throw translate(e, "cuLaunchKernel(" + name + ") grid (" + gx + ", " + gy + ", " + gz + ") block ("
                        + bx + ", " + by + ", " + bz + ")");
            }
            check(rc, "cuLaunchKernel(" + name + ")");
        };
    }
}
