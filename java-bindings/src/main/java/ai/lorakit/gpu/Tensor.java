package ai.lorakit.gpu;

import java.util.Arrays;

/**
 * A dense, row-major, contiguous n-d array owned by one {@link Backend}. The storage ({@link #handle()}) is
 * whatever the backend keeps (a {@code float[]} on the CPU, a device buffer elsewhere) and is only touched
 * by that backend. Closing a tensor returns its memory; any later use throws.
 *
 * <p>Tensors are created by their backend ({@link Backend#zeros}, {@link Backend#upload}); they are not
 * thread-safe.
 */
public final class Tensor implements AutoCloseable {
    private final Backend owner;
    private final DType dtype;
    private final int[] shape;
    private final long numel;
    private final Object handle;
    /** The tensor whose storage this one views, or null when it owns its storage. */
    private final Tensor base;
    private String name;
    private boolean closed;

    /** For backends only: wraps storage the backend allocated. */
    public Tensor(Backend owner, DType dtype, int[] shape, Object handle) {
        this.owner = owner;
        this.dtype = dtype;
        this.shape = shape.clone();
        this.numel = numel(this.shape);
        this.handle = handle;
        this.base = null;
    }

    private Tensor(Tensor base, int[] shape) {
        this.owner = base.owner;
        this.dtype = base.dtype;
        this.shape = shape.clone();
        this.numel = numel(this.shape);
        this.handle = base.handle;
        this.base = base;
    }

    /**
     * The same storage seen with another shape of equal element count (row-major, no copy), e.g. q [B,T,H*D] as
     * [B*T*H, D] for a per-head op. Writes through either are seen by both. The view owns nothing: closing it only
     * marks the view closed, and it is unusable once this tensor is closed.
     */
    public Tensor view(int... newShape) {
        checkOpen();
        if (numel(newShape) != numel) {
            throw new ShapeException("view " + Arrays.toString(newShape) + " of " + this + ": element counts differ ("
                    + numel(newShape) + " vs " + numel + ")");
        }
        return new Tensor(base == null ? this : base, newShape);
    }

    /** Number of elements of a shape; rejects negative dimensions. */
    public static long numel(int... shape) {
        long n = 1;
        for (int d : shape) {
            if (d < 0) {
                throw new ShapeException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    public Backend backend() {
        return owner;
    }

    public DType dtype() {
        return dtype;
    }

    /** A copy of the shape. */
    public int[] shape() {
        return shape.clone();
    }

    public int rank() {
        return shape.length;
    }

    /** Size of dimension {@code i}; negative i counts from the end. */
    public int dim(int i) {
        return shape[i < 0 ? shape.length + i : i];
    }

    public long numel() {
        return numel;
    }

    /** Rows of the tensor seen as a matrix: product of all dimensions but the last (1 for rank 0 or 1). */
    public int rows() {
        return shape.length == 0 ? 1 : (int) (numel / Math.max(1, shape[shape.length - 1]));
    }

    /** Columns of the tensor seen as a matrix: the last dimension (1 for rank 0). */
    public int cols() {
        return shape.length == 0 ? 1 : shape[shape.length - 1];
    }

    /** Optional debugging name, used in error messages. */
    public String name() {
        return name;
    }

    public Tensor named(String name) {
        this.name = name;
        return this;
    }

    /** Backend-private storage. Throws if the tensor is closed. */
    public Object handle() {
        checkOpen();
        return handle;
    }

    public boolean isClosed() {
        return closed || (base != null && base.closed);
    }

    public void checkOpen() {
        if (isClosed()) {
            throw new GpuException("use of closed tensor " + this);
        }
    }

    /** Returns the tensor's memory to its backend; idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            if (base == null) {
                owner.release(this);
            }
        }
    }

    @Override
    public String toString() {
        return (name == null ? "tensor" : name) + dtype + Arrays.toString(shape) + "@" + owner.name();
    }
}
