package ai.lorakit.gpu;

import java.util.ArrayDeque;
import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;

/**
 * A backend's returned work tensors by dtype and shape ({@link Backend#borrowWork}, {@link Backend#returnWork}): a
 * default composition that borrows the same shape every step reuses one tensor instead of allocating per call (no
 * device allocation in the steady state; no garbage on the CPU). The tensors stay the backend's: it frees them with
 * its other tensors when it closes; {@link #clear} only forgets them.
 */
public final class WorkPool {
    private final Map<String, ArrayDeque<Tensor>> free = new HashMap<>();

    /** A returned tensor of this dtype and shape, else a new one from {@code be} (contents undefined). */
    public synchronized Tensor borrow(Backend be, DType dtype, int... shape) {
        ArrayDeque<Tensor> q = free.get(key(dtype, shape));
        Tensor t = q == null ? null : q.poll();
        return t != null ? t : be.zeros(dtype, shape);
    }

    /** Keeps {@code t} for the next borrow of its dtype and shape (a closed tensor is dropped). */
    public synchronized void giveBack(Tensor t) {
        if (!t.isClosed()) {
            free.computeIfAbsent(key(t.dtype(), t.shape()), k -> new ArrayDeque<>()).push(t);
        }
    }

    /** Forgets every kept tensor (the backend frees them as it closes). */
    public synchronized void clear() {
        free.clear();
    }

    private static String key(DType dtype, int[] shape) {
        return dtype + Arrays.toString(shape);
    }
}
