package ai.lorakit.adapters.io;

import java.lang.foreign.MemorySegment;
import java.lang.foreign.ValueLayout;
import java.nio.ByteOrder;

/**
 * Decodes little-endian safetensors elements of every {@link SafeDType} from a memory segment (a mapped file
 * slice or a heap byte[]). Floating-point conversions to fp32 are exact except F64 (rounded to nearest) and
 * the 64-bit integers above 2^24 (rounded to nearest).
 */
final class ElementCodec {
    static final ValueLayout.OfShort SHORT = ValueLayout.JAVA_SHORT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfInt INT = ValueLayout.JAVA_INT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfLong LONG = ValueLayout.JAVA_LONG_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfFloat FLOAT = ValueLayout.JAVA_FLOAT_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);
    static final ValueLayout.OfDouble DOUBLE = ValueLayout.JAVA_DOUBLE_UNALIGNED.withOrder(ByteOrder.LITTLE_ENDIAN);

    /** fp8 E4M3 ("fn") byte -> fp32, all 256 codes. */
    private static final float[] E4M3 = new float[256];
    /** fp8 E8M0 byte -> fp32 (2^(e-127), 0xFF NaN). */
    private static final float[] E8M0 = new float[256];

    static {
        for (int b = 0; b < 256; b++) {
            E4M3[b] = e4m3ToFloat(b);
            E8M0[b] = b == 0xff ? Float.NaN : (float) Math.scalb(1.0, b - 127);
        }
    }

    private ElementCodec() {
    }

    /** fp8 E4M3FN: sign, 4 exponent bits (bias 7), 3 mantissa bits; exponent 0 = subnormal; S.1111.111 = NaN. */
    static float e4m3ToFloat(int b) {
        int sign = (b >>> 7) & 1;
        int e = (b >>> 3) & 0xf;
        int m = b & 0x7;
        float v;
        if (e == 0xf && m == 0x7) {
            v = Float.NaN;
        } else if (e == 0) {
            v = Math.scalb(m / 8f, -6);
        } else {
            v = Math.scalb(1f + m / 8f, e - 7);
        }
        return sign == 1 ? -v : v;
    }

    /** Unsigned 64-bit -> nearest float. */
    static float unsignedToFloat(long x) {
        if (x >= 0) {
            return (float) x;
        }
        // halve keeping the sticky bit so rounding stays correct, then double (exact)
        return ((float) ((x >>> 1) | (x & 1))) * 2f;
    }

    /** {@code n} elements of type {@code t} from {@code s} (starting at byte 0) as fp32. */
    static float[] floats(MemorySegment s, SafeDType t, int n) {
        float[] out = new float[n];
        switch (t) {
            case F32 -> MemorySegment.copy(s, FLOAT, 0, out, 0, n);
            case F64 -> { for (int i = 0; i < n; i++) out[i] = (float) s.getAtIndex(DOUBLE, i); }
            case F16 -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat(s.getAtIndex(SHORT, i)); }
            case BF16 -> { for (int i = 0; i < n; i++) out[i] = Float.intBitsToFloat((s.getAtIndex(SHORT, i) & 0xffff) << 16); }
            case F8_E5M2 -> { for (int i = 0; i < n; i++) out[i] = Float.float16ToFloat((short) ((byteAt(s, i) & 0xff) << 8)); }
            case F8_E4M3 -> { for (int i = 0; i < n; i++) out[i] = E4M3[byteAt(s, i) & 0xff]; }
            case F8_E8M0 -> { for (int i = 0; i < n; i++) out[i] = E8M0[byteAt(s, i) & 0xff]; }
            case BOOL -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i) != 0 ? 1f : 0f; }
            case U8 -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i) & 0xff; }
            case I8 -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i); }
            case I16 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(SHORT, i); }
            case U16 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(SHORT, i) & 0xffff; }
            case I32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(INT, i); }
            case U32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(INT, i) & 0xffffffffL; }
            case I64 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(LONG, i); }
            case U64 -> { for (int i = 0; i < n; i++) out[i] = unsignedToFloat(s.getAtIndex(LONG, i)); }
        }
        return out;
    }

    /**
     * {@code n} elements of an integer type (BOOL as 0/1) as longs; null for a float type. A U64 value above
     * Long.MAX_VALUE throws ArithmeticException naming it.
     */
    static long[] longs(MemorySegment s, SafeDType t, int n) {
        long[] out = new long[n];
        switch (t) {
            case BOOL -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i) != 0 ? 1 : 0; }
            case U8 -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i) & 0xff; }
            case I8 -> { for (int i = 0; i < n; i++) out[i] = byteAt(s, i); }
            case I16 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(SHORT, i); }
            case U16 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(SHORT, i) & 0xffff; }
            case I32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(INT, i); }
            case U32 -> { for (int i = 0; i < n; i++) out[i] = s.getAtIndex(INT, i) & 0xffffffffL; }
            case I64 -> MemorySegment.copy(s, LONG, 0, out, 0, n);
            case U64 -> {
                for (int i = 0; i < n; i++) {
                    long v = s.getAtIndex(LONG, i);
                    if (v < 0) {
                        throw new ArithmeticException("U64 element " + i + " = " + Long.toUnsignedString(v)
                                + " exceeds the signed 64-bit range");
                    }
                    out[i] = v;
                }
            }
            default -> {
                return null;
            }
        }
        return out;
    }

    private static byte byteAt(MemorySegment s, long i) {
        return s.get(ValueLayout.JAVA_BYTE, i);
    }
}
