package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.HashMap;
import java.util.Map;

/**
 * Device scratch space of one {@link CudaBackend} (and so of its one stream), kept between calls so that the steady
 * state of a training step allocates nothing (cuMemFree synchronises the device, and a CUDA graph cannot capture
 * cuMemAlloc). Each named slot is one device allocation, grown (never shrunk) when a call needs more; {@link
 * #tensor} hands out a view of a slot as a tensor: no driver call, closing it frees nothing. Views of one slot alias
 * each other, so a caller uses one view of a slot at a time; calls queued on the same stream may reuse a slot (stream
 * order). Every slot starts at a cuMemAlloc base (256-byte aligned), so views are 16-byte aligned for the vector
 * kernels. The contents are not zeroed. Closed (everything freed) with the tier that owns it.
 */
public final class CudaScratch implements AutoCloseable {
    /** A slot grows to at least this factor of its previous size, so slowly growing shapes reallocate rarely. */
    static final double GROWTH = 1.5;

    private final CudaBackend be;
    private final Map<String, CudaBuffer> slots = new HashMap<>();

    public CudaScratch(CudaBackend backend) {
        this.be = backend;
    }

    /** A {@code dtype} tensor of {@code shape} over slot {@code slot}, grown first if it is too small. Not zeroed. */
    public Tensor tensor(String slot, DType dtype, int... shape) {
        long need = Math.max(1, Tensor.numel(shape) * dtype.bytes());
        CudaDevice dev = be.cudaDevice();
        CudaBuffer buf = slots.get(slot);
        if (buf == null || buf.isFreed() || buf.bytes() < need) {
            long size = buf == null ? need : Math.max(need, (long) Math.ceil(buf.bytes() * GROWTH));
            if (buf != null) {
                slots.remove(slot);
                buf.close();
            }
            buf = (CudaBuffer) dev.alloc(size);
            slots.put(slot, buf);
        }
        return be.adopt(dev.view(buf, need), dtype, shape);
    }

    /** Bytes held by all slots. */
    public long bytes() {
        return slots.values().stream().mapToLong(CudaBuffer::bytes).sum();
    }

    /** Frees every slot (views handed out must be closed already). */
    @Override
    public void close() {
        RuntimeException first = null;
        for (CudaBuffer b : slots.values()) {
            try {
                b.close();
            } catch (RuntimeException e) {
                first = first == null ? e : first;
            }
        }
        slots.clear();
        if (first != null) {
            throw first;
        }
    }
}
