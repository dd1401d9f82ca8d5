package ai.lorakit.adapters.io;

import java.util.Arrays;

/**
 * One header entry of a safetensors file: the tensor's dtype, shape (row-major, 0-rank = scalar) and its byte
 * range [begin, end) relative to the start of the data buffer (after the 8-byte length and the header).
 */
public record TensorInfo(String name, SafeDType dtype, long[] shape, long begin, long end) {

    public TensorInfo {
        shape = shape.clone();
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** The number of dimensions. */
    public int rank() {
        return shape.length;
    }

    /** Number of elements: product of the dims (1 for a 0-rank tensor). */
    public long numel() {
        return numel(shape);
    }

    /** end - begin. */
    public long byteSize() {
        return end - begin;
    }

    /** The shape as ints (tensor shapes of the Backend API); throws if a dim exceeds Integer.MAX_VALUE. */
    public int[] intShape() {
        int[] s = new int[shape.length];
        for (int i = 0; i < s.length; i++) {
            s[i] = Math.toIntExact(shape[i]);
        }
        return s;
    }

    /** True if the shape equals {@code dims}. */
    public boolean hasShape(long... dims) {
        return Arrays.equals(shape, dims);
    }

    /** Product of dims; ArithmeticException on overflow; dims must be non-negative. */
    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public String toString() {
        return name + " " + dtype + Arrays.toString(shape) + " @[" + begin + "," + end + ")";
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && t.name.equals(name) && t.dtype == dtype
                && Arrays.equals(t.shape, shape) && t.begin == begin && t.end == end;
    }

    @Override
    public int hashCode() {
        return name.hashCode() * 31 + Arrays.hashCode(shape);
    }
}
