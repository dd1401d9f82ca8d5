package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * Every buffer one forward and backward of a (B,T) batch needs (llm.c's ActivationTensors, split by layer): each
 * layer keeps its own small cache here ({@link #cache}), created on its first forward of this shape and reused by
 * every later step; backward scratch that no layer needs after its own backward is shared by key ({@link
 * #shared}), so L blocks allocate it once. A model keeps one Buffers per batch shape it runs (training, inference).
 * N = B*T tokens. Not thread-safe.
 *
 * <p>Dtypes follow the set's {@link Precision}: {@link #act} and {@link #shared} tensors (activations and their
 * gradients) are stored in {@link Precision#activations()}; {@link #f32} tensors (statistics, softmax
 * probabilities, logits, loss, gradient sinks) are always F32.
 */
public final class Buffers implements AutoCloseable {
    /** Batch size B and sequence length T. */
    public final int b;
    public final int t;
    private final Backend be;
    private final Precision precision;
    private final Map<Object, Object> caches = new IdentityHashMap<>();
    private final Map<String, Tensor> shared = new HashMap<>();
    private final Map<String, Tensor> slots = new HashMap<>();
    private final List<Tensor> owned = new ArrayList<>();
    private boolean closed;

    /** An fp32 set ({@link Precision#FP32}). */
    public Buffers(Backend be, int b, int t) {
        this(be, b, t, Precision.FP32);
    }

    public Buffers(Backend be, int b, int t, Precision precision) {
        if (precision == null) {
            throw new IllegalArgumentException("precision must not be null (use Precision.FP32)");
        }
        if (b < 1 || t < 1) {
            throw new IllegalArgumentException("batch shape must be positive, got B=" + b + ", T=" + t);
        }
        this.be = be;
        this.precision = precision;
        this.b = b;
        this.t = t;
    }

    public Backend backend() {
        return be;
    }

    /** The policy that picks {@link #act}'s dtype. */
    public Precision precision() {
        return precision;
    }

    /** N = B*T. */
    public int n() {
        return b * t;
    }

    /** Whether this set is for a batch of this shape. */
    public boolean fits(int b, int t) {
        return this.b == b && this.t == t;
    }

    /** A new zeroed F32 tensor owned (and closed) by this set: statistics, probabilities, logits, losses. */
    public Tensor f32(int... shape) {
        return alloc(DType.F32, shape);
    }

    /** A new zeroed activation tensor ({@link Precision#activations()}) owned (and closed) by this set. */
    public Tensor act(int... shape) {
        return alloc(precision.activations(), shape);
    }

    private Tensor alloc(DType dt, int... shape) {
        checkOpen();
        Tensor x = be.zeros(dt, shape);
        owned.add(x);
        return x;
    }

    /** Bytes of every tensor this set owns (numel times the dtype's size: what a device stores). */
    public long bytes() {
        long n = 0;
        for (Tensor x : owned) {
            n += x.numel() * x.dtype().bytes();
        }
        for (Tensor x : slots.values()) {
            n += x.numel() * x.dtype().bytes();
        }
        return n;
    }

    /**
     * The activation-gradient scratch tensor of this key ({@link Precision#activations()}), allocated on first use: a
     * buffer several layers use in turn (its content is meaningless between uses). Each key has one shape.
     */
    public Tensor shared(String key, int... shape) {
        return shared(key, precision.activations(), shape);
    }

    /** As {@link #shared(String, int...)}, stored in F32 (e.g. the sink of a frozen gain's gradient). */
    public Tensor sharedF32(String key, int... shape) {
        return shared(key, DType.F32, shape);
    }

    private Tensor shared(String key, DType dt, int... shape) {
        Tensor x = shared.get(key);
        if (x == null) {
            x = alloc(dt, shape);
            shared.put(key, x);
        } else if (!Arrays.equals(x.shape(), shape) || x.dtype() != dt) {
            throw new IllegalStateException("shared buffer '" + key + "' is " + Arrays.toString(x.shape())
                    + " " + x.dtype() + ", asked for " + Arrays.toString(shape) + " " + dt
                    + ": give buffers of another shape another key");
        }
        return x;
    }

    /** The cache of {@code layer}, made by {@code make} on first use (its tensors from {@link #act}, {@link #f32}). */
    @SuppressWarnings("unchecked")
    public <K> K cache(Object layer, Function<Buffers, K> make) {
        checkOpen();
        Object k = caches.get(layer);
        if (k == null) {
            k = make.apply(this);
            caches.put(layer, k);
        }
        return (K) k;
    }

    /** The cache {@code layer}'s forward made; an IllegalStateException when its backward runs first. */
    @SuppressWarnings("unchecked")
    public <K> K cacheOf(Object layer) {
        Object k = caches.get(layer);
        if (k == null) {
            throw new IllegalStateException(layer + ": backward before any forward of this B=" + b + ", T=" + t);
        }
        return (K) k;
    }

    /** Puts a per-call tensor (token ids, targets) under key, closing the one it replaces; null clears the slot. */
    public Tensor replace(String key, Tensor x) {
        Tensor old = x == null ? slots.remove(key) : slots.put(key, x);
        if (old != null) {
            old.close();
        }
        return x;
    }

    /**
     * The I32 per-call tensor under key set to data [shape] (token ids, targets): written into the slot's tensor
     * when it has this shape, so a step of the same shape allocates nothing; otherwise a new one replaces it.
     */
    public Tensor ints(String key, int[] data, int... shape) {
        checkOpen();
        Tensor x = slots.get(key);
        if (x != null && Arrays.equals(x.shape(), shape)) {
            be.write(x, data);
            return x;
        }
        return replace(key, be.uploadInts(data, shape));
    }

    /** The per-call tensor under key, or null. */
    public Tensor slot(String key) {
        return slots.get(key);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("Buffers(B=" + b + ", T=" + t + ") are closed");
        }
    }

    @Override
    public void close() {
        closed = true;
        slots.values().forEach(Tensor::close);
        slots.clear();
        owned.forEach(Tensor::close);
        owned.clear();
        shared.clear();
        caches.clear();
    }
}
