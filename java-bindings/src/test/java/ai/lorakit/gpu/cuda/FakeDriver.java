package ai.lorakit.gpu.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

/**
 * An in-memory {@link CudaDriver} for testing {@link CudaDevice}'s shared logic on a machine without a GPU: device
 * memory is host byte arrays at fake addresses, copies and memsets really move bytes, kernels do not run but every
 * launch is recorded with the parameter values read back from its {@link ParamBlock} (and refused when their number
 * is not the kernel source's, {@link KernelSignatures}), and every call is logged by name so tests can check which
 * driver calls a device operation makes (and in which order).
 */
final class FakeDriver implements CudaDriver {
    static final long CONTEXT = 0xC0FFEEL;

    /** One recorded kernel launch. */
    record Launch(String kernel, int[] grid, int[] block, long stream, long[] slots, ParamBlock block0) {
    }

    final List<String> calls = new ArrayList<>();
    final List<Launch> launches = new ArrayList<>();
    final Map<Long, byte[]> memory = new TreeMap<>();
    final Map<Long, Long> foreignContexts = new LinkedHashMap<>();   // address -> context, for borrow tests
    int launchersCreated;
    int deviceCount = 1;
    int maxThreads = 1024;
    boolean capturing;
    /** Where each host transfer was made from: the first caller outside the CUDA binding, per cuMemcpyHtoD/DtoH. */
    final List<String> transferSites = new ArrayList<>();
    /** Device memory size; cuMemAlloc beyond it fails with CUDA_ERROR_OUT_OF_MEMORY, as a real driver does. */
    long totalMem = 80L << 30;
    private long next = 0x7f0000000000L;

    @Override
    public String binding() {
        return "fake";
    }

    @Override
    public String bindingVersion() {
        return "fake driver";
    }

    /** The innermost stack frames outside ai.lorakit.gpu (the op's caller), for transfer diagnostics. */
    private static String caller() {
        return StackWalker.getInstance().walk(frames -> frames
                .filter(f -> !f.getClassName().startsWith("ai.lorakit.gpu.") && !f.getClassName().startsWith("java."))
                .limit(2).map(f -> f.getClassName().substring(f.getClassName().lastIndexOf('.') + 1) + "."
                        + f.getMethodName() + ":" + f.getLineNumber())
                .reduce((a, b) -> a + " < " + b).orElse("?"));
    }

    private long handle() {
        next += 0x100000;
        return next;
    }

    @Override
    public void init() {
        calls.add("cuInit");
    }

    @Override
    public int driverVersion() {
        return 13000;
    }

    @Override
    public int deviceCount() {
        return deviceCount;
    }

    @Override
    public int deviceGet(int ordinal) {
        return ordinal;
    }

    @Override
    public String deviceName(int device) {
        return "Fake GPU";
    }

    @Override
    public long deviceTotalMem(int device) {
        return totalMem;
    }

    long used() {
        return memory.values().stream().mapToLong(b -> b.length).sum();
    }

    @Override
    public long[] memGetInfo() {
        calls.add("cuMemGetInfo");
        return new long[] {totalMem - used(), totalMem};
    }

    @Override
    public int deviceAttribute(int attribute, int device) {
        return switch (attribute) {
            case CudaDevice.ATTR_MAX_THREADS_PER_BLOCK -> maxThreads;
            case CudaDevice.ATTR_CC_MAJOR -> 9;
            case CudaDevice.ATTR_CC_MINOR -> 0;
            case CudaDevice.ATTR_MULTIPROCESSOR_COUNT -> 132;
            case CudaDevice.ATTR_MEMORY_POOLS_SUPPORTED -> 1;
            default -> 0;
        };
    }

    @Override
    public long primaryCtxRetain(int device) {
        calls.add("cuDevicePrimaryCtxRetain");
        return CONTEXT;
    }

    @Override
    public void primaryCtxRelease(int device) {
        calls.add("cuDevicePrimaryCtxRelease");
    }

    @Override
    public void ctxSetCurrent(long ctx) {
        calls.add("cuCtxSetCurrent");
    }

    @Override
    public void ctxSynchronize() {
        calls.add("cuCtxSynchronize");
    }

    @Override
    public long moduleLoadData(byte[] image) {
        calls.add("cuModuleLoadData");
        return handle();
    }

    @Override
    public void moduleUnload(long module) {
        calls.add("cuModuleUnload");
    }

    @Override
    public long moduleGetFunction(long module, String name) {
        calls.add("cuModuleGetFunction(" + name + ")");
        return name.startsWith("missing") ? 0 : handle();
    }

    @Override
    public long memAlloc(long bytes) {
        calls.add("cuMemAlloc");
        if (used() + bytes > totalMem) {
            throw CudaErrors.failure("cuMemAlloc(" + bytes + " bytes)", CudaErrors.OUT_OF_MEMORY, null, "out of memory");
        }
        long a = handle();
        memory.put(a, new byte[(int) bytes]);
        return a;
    }

    @Override
    public void memFree(long dptr) {
        calls.add("cuMemFree");
        if (memory.remove(dptr) == null) {
            throw new AssertionError("cuMemFree of unknown 0x" + Long.toHexString(dptr));
        }
    }

    @Override
    public long memAllocAsync(long bytes, long stream) {
        calls.add("cuMemAllocAsync");
        long a = handle();
        memory.put(a, new byte[(int) bytes]);
        return a;
    }

    @Override
    public void memFreeAsync(long dptr, long stream) {
        calls.add("cuMemFreeAsync");
        memory.remove(dptr);
    }

    /** The allocation holding {@code address} and the offset into it. */
    private ByteBuffer at(long address, long bytes) {
        for (Map.Entry<Long, byte[]> e : memory.entrySet()) {
            long base = e.getKey();
            if (address >= base && address + bytes <= base + e.getValue().length) {
                return ByteBuffer.wrap(e.getValue()).order(ByteOrder.LITTLE_ENDIAN).position((int) (address - base));
            }
        }
        throw new AssertionError("fake device: no allocation holds [0x" + Long.toHexString(address) + ", +" + bytes + ")");
    }

    @Override
    public void memcpyHtoD(long dst, Object src, long bytes) {
        calls.add("cuMemcpyHtoD");
        transferSites.add("HtoD " + caller());
        ByteBuffer d = at(dst, bytes);
        switch (src) {
            case float[] a -> d.asFloatBuffer().put(a);
            case int[] a -> d.asIntBuffer().put(a);
            case short[] a -> d.asShortBuffer().put(a);
            case ByteBuffer b -> d.put(b.duplicate());
            default -> throw new AssertionError(src);
        }
    }

    @Override
    public void memcpyDtoH(Object dst, long src, long bytes) {
        calls.add("cuMemcpyDtoH");
        transferSites.add("DtoH " + caller());
        ByteBuffer s = at(src, bytes);
        switch (dst) {
            case float[] a -> s.asFloatBuffer().get(a);
            case int[] a -> s.asIntBuffer().get(a);
            case short[] a -> s.asShortBuffer().get(a);
            case ByteBuffer b -> b.duplicate().put(s.limit(s.position() + (int) bytes));
            default -> throw new AssertionError(dst);
        }
    }

    @Override
    public void memcpyDtoDAsync(long dst, long src, long bytes, long stream) {
        calls.add("cuMemcpyDtoDAsync");
        ByteBuffer s = at(src, bytes);
        at(dst, bytes).put(s.limit(s.position() + (int) bytes));
    }

    @Override
    public void memsetD8Async(long dst, byte value, long count, long stream) {
        calls.add("cuMemsetD8Async");
        ByteBuffer d = at(dst, count);
        for (long i = 0; i < count; i++) {
            d.put(value);
        }
    }

    @Override
    public void memsetD16Async(long dst, short value, long count, long stream) {
        calls.add("cuMemsetD16Async");
        ByteBuffer d = at(dst, 2 * count);
        for (long i = 0; i < count; i++) {
            d.putShort(value);
        }
    }

    @Override
    public void memsetD32Async(long dst, int value, long count, long stream) {
        calls.add("cuMemsetD32Async");
        ByteBuffer d = at(dst, 4 * count);
        for (long i = 0; i < count; i++) {
            d.putInt(value);
        }
    }

    @Override
    public PointerInfo pointerInfo(long address) {
        calls.add("cuPointerGetAttribute");
        Long ctx = foreignContexts.get(address);
        return new PointerInfo(ctx != null ? ctx : CONTEXT, PointerInfo.MEMORYTYPE_DEVICE);
    }

    @Override
    public long streamCreate(int flags) {
        calls.add("cuStreamCreate(" + flags + ")");
        return handle();
    }

    @Override
    public void streamDestroy(long stream) {
        calls.add("cuStreamDestroy");
    }

    @Override
    public void streamSynchronize(long stream) {
        calls.add(stream == 0 ? "cuStreamSynchronize(legacy)" : "cuStreamSynchronize");
    }

    @Override
    public void streamWaitEvent(long stream, long event) {
        calls.add("cuStreamWaitEvent");
    }

    @Override
    public long eventCreate(int flags) {
        calls.add("cuEventCreate");
        return handle();
    }

    @Override
    public void eventRecord(long event, long stream) {
        calls.add("cuEventRecord");
    }

    @Override
    public void eventSynchronize(long event) {
        calls.add("cuEventSynchronize");
    }

    @Override
    public float eventElapsedTime(long start, long end) {
        calls.add("cuEventElapsedTime");
        return 1.5f;
    }

    @Override
    public void eventDestroy(long event) {
        calls.add("cuEventDestroy");
    }

    @Override
    public void streamBeginCapture(long stream, int mode) {
        calls.add("cuStreamBeginCapture(" + mode + ")");
        capturing = true;
    }

    @Override
    public long streamEndCapture(long stream) {
        calls.add("cuStreamEndCapture");
        capturing = false;
        return handle();
    }

    @Override
    public long graphInstantiate(long graph) {
        calls.add("cuGraphInstantiate");
        return handle();
    }

    @Override
    public void graphLaunch(long graphExec, long stream) {
        calls.add("cuGraphLaunch");
    }

    @Override
    public void graphDestroy(long graph) {
        calls.add("cuGraphDestroy");
    }

    @Override
    public void graphExecDestroy(long graphExec) {
        calls.add("cuGraphExecDestroy");
    }

    @Override
    public Launcher launcher(long function, String name, ParamBlock params) {
        launchersCreated++;
        return (gx, gy, gz, bx, by, bz, smem, stream) -> {
            int n = params.count();
            KernelSignatures.checkArity(name, n);
            long[] slots = new long[n];
            for (int i = 0; i < n; i++) {
                // what the driver would read: slot i through kernelParams[i]
                java.lang.foreign.MemorySegment p = params.pointerArray()
                        .getAtIndex(java.lang.foreign.ValueLayout.ADDRESS, i).reinterpret(8);
                slots[i] = p.get(java.lang.foreign.ValueLayout.JAVA_LONG, 0);
            }
            calls.add("cuLaunchKernel(" + name + ")");
            launches.add(new Launch(name, new int[] {gx, gy, gz}, new int[] {bx, by, bz}, stream, slots, params));
        };
    }

    @Override
    public String errorName(int code) {
        return CudaErrors.name(code);
    }

    @Override
    public String errorString(int code) {
        return "fake error " + code;
    }

    /** A device over this driver (the constructor is protected). */
    static final class Device extends CudaDevice {
        Device(FakeDriver d, long externalStream) {
            super(d, 0, externalStream);
        }
    }
}
