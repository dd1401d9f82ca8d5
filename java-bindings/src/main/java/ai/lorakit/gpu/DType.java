package ai.lorakit.gpu;

/**
 * Element types a {@link Tensor} may be stored in. Math is always fp32 (fp32 accumulation); BF16 and F16 are
 * storage formats (ARCHITECTURE.md, "Precision").
 */
public enum DType {
    F32(4),
    BF16(2),
    F16(2),
    /** 32-bit signed integers: token ids and targets (not a math type). */
    I32(4);

    private final int bytes;

    DType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes. */
    public int bytes() {
        return bytes;
    }

    /** Rounds an fp32 value to the nearest value representable in this dtype (round-to-nearest-even). */
    public float round(float x) {
        return switch (this) {
            case F32 -> x;
            case BF16 -> bf16ToFloat(floatToBf16(x));
            case F16 -> Float.float16ToFloat(Float.floatToFloat16(x));
            case I32 -> (float) (int) x;
        };
    }

    /** fp32 -> bf16 bits, round-to-nearest-even; NaN stays NaN (quiet). */
    public static short floatToBf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        if ((bits & 0x7fffffff) > 0x7f800000) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int rounding = 0x7fff + ((bits >>> 16) & 1);
        return (short) ((bits + rounding) >>> 16);
    }

    /** bf16 bits -> fp32 (exact). */
    public static float bf16ToFloat(short b) {
        return Float.intBitsToFloat((b & 0xffff) << 16);
    }
}
