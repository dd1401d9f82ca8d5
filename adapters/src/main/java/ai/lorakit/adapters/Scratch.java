package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * One layer's work tensors by key, F32 unless asked otherwise (u [N,r], g B [N,r], dropout masks ...), kept
 * between calls so that a training step of the same shape allocates nothing (issue 9: no device allocation in the
 * steady state). A key asked for with another shape (a new N) gets a new tensor, the old one is closed. Contents
 * are meaningless between uses unless the key's user keeps them (the adapter's bf16 stages): {@link #get} is for
 * outputs that are fully written, {@link #zeroed} for accumulators. Each key has
 * one user at a time; the owner closes the scratch with the layer. Not thread-safe.
 */
final class Scratch implements AutoCloseable {
    private final Backend be;
    private final Map<String, Tensor> slots = new HashMap<>();

    Scratch(Backend be) {
        this.be = be;
    }

    /** The F32 tensor of this key and shape (allocated on first use or when the shape changes), contents stale. */
    Tensor get(String key, int... shape) {
        return get(key, DType.F32, shape);
    }

    /**
     * The tensor of this key, dtype and shape (allocated on first use or when either changes). Contents are what
     * the last user left: stale for an output, or kept on purpose (the adapter's bf16 stages, refreshed by their
     * owner when the adapter changes).
     */
    Tensor get(String key, DType dtype, int... shape) {
        Tensor t = slots.get(key);
        if (t != null && t.dtype() == dtype && Arrays.equals(t.shape(), shape)) {
            return t;
        }
        if (t != null) {
            t.close();
            slots.remove(key);
        }
        t = be.zeros(dtype, shape);
        slots.put(key, t);
        return t;
    }

    /** {@link #get} filled with zeros (an accumulator). */
    Tensor zeroed(String key, int... shape) {
        Tensor t = get(key, shape);
        be.fill(t, 0f);
        return t;
    }

    /** Whether the key has a tensor now. */
    boolean has(String key) {
        return slots.containsKey(key);
    }

    /** Bytes the slots hold now (numel times dtype size). */
    long bytes() {
        long n = 0;
        for (Tensor t : slots.values()) {
            n += t.numel() * t.dtype().bytes();
        }
        return n;
    }

    @Override
    public void close() {
        slots.values().forEach(Tensor::close);
        slots.clear();
    }
}
