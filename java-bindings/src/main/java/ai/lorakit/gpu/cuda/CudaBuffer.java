package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.Device;
import ai.lorakit.gpu.DeviceBuffer;

/**
 * A block of CUDA device memory seen by a {@link CudaDevice}: its raw address and size. Three kinds:
 * <ul>
 *   <li>{@link Kind#OWNED}: cuMemAlloc'ed by the device, freed by {@link #close()} or with the device;</li>
 *   <li>{@link Kind#BORROWED}: a user's memory wrapped without a copy (interop); closing it only forgets it;</li>
 *   <li>{@link Kind#CAPTURED}: allocated while a CUDA graph was being captured (a graph memory node); it must be
 *       freed inside the same capture.</li>
 * </ul>
 */
public final class CudaBuffer implements DeviceBuffer {

    /** Who owns the memory. */
    public enum Kind { OWNED, BORROWED, CAPTURED }

    final CudaDevice owner;
    final long address;
    final long bytes;
    final Kind kind;
    boolean freed;

    CudaBuffer(CudaDevice owner, long address, long bytes, Kind kind) {
        this.owner = owner;
        this.address = address;
        this.bytes = bytes;
        this.kind = kind;
    }

    @Override
    public Device device() {
        return owner;
    }

    /** The raw device address (CUdeviceptr). */
    public long address() {
        return address;
    }

    @Override
    public long bytes() {
        return bytes;
    }

    public Kind kind() {
        return kind;
    }

    @Override
    public boolean isFreed() {
        return freed || owner.isClosed();
    }

    @Override
    public void close() {
        owner.free(this);
    }

    @Override
    public String toString() {
        return "buffer(" + bytes + " bytes at 0x" + Long.toHexString(address)
                + (kind == Kind.OWNED ? "" : ", " + kind.name().toLowerCase(java.util.Locale.ROOT))
                + (isFreed() ? ", freed" : "") + ")@" + owner.name();
    }
}
