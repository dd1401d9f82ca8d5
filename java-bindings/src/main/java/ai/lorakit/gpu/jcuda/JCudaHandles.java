package ai.lorakit.gpu.jcuda;

import ai.lorakit.gpu.GpuException;
import jcuda.NativePointerObject;
import jcuda.Pointer;

import java.lang.invoke.MethodHandle;
import java.lang.invoke.MethodHandles;
import java.lang.invoke.VarHandle;

/**
 * Raw values of JCuda's handle objects and back. JCuda keeps every handle (CUstream, CUfunction, CUdeviceptr, ...)
 * in the private field {@code NativePointerObject.nativePointer} (plus {@code Pointer.byteOffset} for pointers) and
 * offers no public accessor; lorakit's device logic works on raw values ({@link ai.lorakit.gpu.cuda.CudaDriver}), and
 * interop must read the address of a user's CUdeviceptr. Both fields are reached once through
 * {@link MethodHandles#privateLookupIn} (JCuda's packages are open to the class path / as an automatic module).
 */
public final class JCudaHandles {
    private static final VarHandle NATIVE_POINTER;
    private static final MethodHandle BYTE_OFFSET;

    static {
        try {
            MethodHandles.Lookup npo = MethodHandles.privateLookupIn(NativePointerObject.class, MethodHandles.lookup());
            NATIVE_POINTER = npo.findVarHandle(NativePointerObject.class, "nativePointer", long.class);
            MethodHandles.Lookup ptr = MethodHandles.privateLookupIn(Pointer.class, MethodHandles.lookup());
            BYTE_OFFSET = ptr.findVirtual(Pointer.class, "getByteOffset", java.lang.invoke.MethodType.methodType(long.class));
        } catch (ReflectiveOperationException | RuntimeException e) {
            throw new ExceptionInInitializerError(new GpuException("JCuda: cannot read NativePointerObject.nativePointer"
                    + " (JCuda internals changed?): " + e, e));
        }
    }

    private JCudaHandles() {
    }

    /** The raw handle value of a JCuda object (a CUstream's cudaStream_t, a CUfunction, ...); 0 for null. */
    public static long raw(NativePointerObject o) {
        return o == null ? 0 : (long) NATIVE_POINTER.get(o);
    }

    /** The address a JCuda Pointer / CUdeviceptr denotes: its native pointer plus its byte offset. */
    public static long address(Pointer p) {
        if (p == null) {
            return 0;
        }
        try {
            return (long) NATIVE_POINTER.get(p) + (long) BYTE_OFFSET.invokeExact(p);
        } catch (Throwable t) {
            throw new GpuException("JCuda: reading the byte offset of " + p + " failed: " + t, t);
        }
    }

    /** Sets the raw handle of a freshly constructed JCuda object (for example {@code new CUstream()}) and returns it. */
    public static <T extends NativePointerObject> T wrap(T fresh, long raw) {
        NATIVE_POINTER.set(fresh, raw);
        return fresh;
    }
}
