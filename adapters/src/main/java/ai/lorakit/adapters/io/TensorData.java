package ai.lorakit.adapters.io;

import ai.lorakit.gpu.DType;

import java.lang.foreign.MemorySegment;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.function.Consumer;

/**
 * A tensor to write: dtype, shape (row-major; empty = 0-rank scalar) and its little-endian bytes. The
 * constructor checks {@code data.length == numel * dtype.bytes()}; the array is not copied, so do not change it
 * before writing.
 */
public record TensorData(SafeDType dtype, long[] shape, byte[] data) {

    public TensorData {
        if (dtype == null || shape == null || data == null) {
            throw new IllegalArgumentException("TensorData: dtype, shape and data must be non-null");
        }
        shape = shape.clone();
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("TensorData: negative dimension " + d + " in shape "
                        + Arrays.toString(shape));
            }
        }
        long need;
        try {
            need = Math.multiplyExact(TensorInfo.numel(shape), dtype.bytes());
        } catch (ArithmeticException e) {
            throw new IllegalArgumentException("TensorData: shape " + Arrays.toString(shape) + " is too large");
        }
        if (need != data.length) {
            throw new IllegalArgumentException("TensorData: shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + need + " bytes, got " + data.length);
        }
    }

    /** A copy of the shape. */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    public long numel() {
        return TensorInfo.numel(shape);
    }

    /** fp32 tensor; {@code v.length} must equal the shape's numel. */
    public static TensorData f32(float[] v, long... shape) {
        return encode(SafeDType.F32, v.length, shape, b -> b.asFloatBuffer().put(v));
    }

    /** fp64 tensor. */
    public static TensorData f64(double[] v, long... shape) {
        return encode(SafeDType.F64, v.length, shape, b -> b.asDoubleBuffer().put(v));
    }

    /** bf16 tensor from fp32 values, round-to-nearest-even ({@link DType#floatToBf16}). */
    public static TensorData bf16(float[] v, long... shape) {
        return encode(SafeDType.BF16, v.length, shape, b -> {
            for (float x : v) {
                b.putShort(DType.floatToBf16(x));
            }
        });
    }

    /** IEEE fp16 tensor from fp32 values, round-to-nearest-even ({@link Float#floatToFloat16}). */
    public static TensorData f16(float[] v, long... shape) {
        return encode(SafeDType.F16, v.length, shape, b -> {
            for (float x : v) {
                b.putShort(Float.floatToFloat16(x));
            }
        });
    }

    /** int32 tensor. */
    public static TensorData i32(int[] v, long... shape) {
        return encode(SafeDType.I32, v.length, shape, b -> b.asIntBuffer().put(v));
    }

    /** int64 tensor. */
    public static TensorData i64(long[] v, long... shape) {
        return encode(SafeDType.I64, v.length, shape, b -> b.asLongBuffer().put(v));
    }

    /** fp32 values rounded to {@code dtype} (F32, BF16 or F16). */
    public static TensorData of(DType dtype, float[] v, long... shape) {
        return switch (dtype) {
            case F32 -> f32(v, shape);
            case BF16 -> bf16(v, shape);
            case F16 -> f16(v, shape);
            case I32 -> {
                int[] iv = new int[v.length];
                for (int i = 0; i < v.length; i++) {
                    iv[i] = (int) v[i];
                }
                yield i32(iv, shape);
            }
        };
    }

    /** The values as fp32, decoded as the reader does. */
    public float[] floats() {
        return ElementCodec.floats(MemorySegment.ofArray(data), dtype, Math.toIntExact(numel()));
    }

    /**
     * n values of type t with {@code shape} (n must equal its numel), written little-endian by {@code fill} into a
     * buffer of exactly n * t.bytes() bytes.
     */
    private static TensorData encode(SafeDType t, int n, long[] shape, Consumer<ByteBuffer> fill) {
        long numel = TensorInfo.numel(shape);
        if (numel != n) {
            throw new IllegalArgumentException("TensorData." + t.name().toLowerCase(java.util.Locale.ROOT) + ": " + n
                    + " values for shape " + Arrays.toString(shape) + " (numel " + numel + ")");
        }
        ByteBuffer b = ByteBuffer.allocate(Math.multiplyExact(n, t.bytes())).order(ByteOrder.LITTLE_ENDIAN);
        fill.accept(b);
        return new TensorData(t, shape, b.array());
    }

    @Override
    public String toString() {
        return "TensorData" + dtype + Arrays.toString(shape);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorData t && t.dtype == dtype && Arrays.equals(t.shape, shape)
                && Arrays.equals(t.data, data);
    }

    @Override
    public int hashCode() {
        return dtype.hashCode() * 31 + Arrays.hashCode(shape);
    }
}
