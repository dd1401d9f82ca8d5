package ai.lorakit.adapters.io;

import ai.lorakit.gpu.DType;

/**
 * The element types of the safetensors format (VARIANTS.md section 9, huggingface/safetensors
 * {@code src/tensor.rs}). Constant names are the exact header strings. Declared in the Rust crate's
 * {@code Dtype} order: the writer lays tensors out by descending order of this enum (which is descending
 * alignment) and then by name, as the Rust writer does. Sub-byte and complex types (F4, F6_*, C64, *FNUZ) are
 * not supported: a file using them is rejected with the type named.
 */
public enum SafeDType {
    BOOL(1),
    U8(1),
    I8(1),
    /** fp8, 5 exponent bits (bias 15), 2 mantissa bits, IEEE-like inf/NaN: the top byte of an fp16. */
    F8_E5M2(1),
    /** fp8 "fn": 4 exponent bits (bias 7), 3 mantissa bits, no infinities, NaN = S.1111.111. */
    F8_E4M3(1),
    /** fp8 scale type: 8 exponent bits (bias 127), no sign or mantissa; 0xFF = NaN. */
    F8_E8M0(1),
    I16(2),
    U16(2),
    F16(2),
    BF16(2),
    I32(4),
    U32(4),
    F32(4),
    F64(8),
    I64(8),
    U64(8);

    private final int bytes;

    SafeDType(int bytes) {
        this.bytes = bytes;
    }

    /** Size of one element in bytes (also its alignment). */
    public int bytes() {
        return bytes;
    }

    /** The header string, e.g. {@code "BF16"}. */
    public String headerName() {
        return name();
    }

    /** True for the floating-point types (F16, BF16, F32, F64 and the fp8 types). */
    public boolean isFloat() {
        return switch (this) {
            case F8_E5M2, F8_E4M3, F8_E8M0, F16, BF16, F32, F64 -> true;
            default -> false;
        };
    }

    /** True for BOOL and the signed and unsigned integer types. */
    public boolean isInteger() {
        return !isFloat();
    }

    /** The type named {@code s} (exact, case-sensitive header string), or null if unknown. */
    public static SafeDType fromHeader(String s) {
        for (SafeDType t : values()) {
            if (t.name().equals(s)) {
                return t;
            }
        }
        return null;
    }

    /** The safetensors type of a tensor dtype. */
    public static SafeDType of(DType d) {
        return switch (d) {
            case F32 -> F32;
            case BF16 -> BF16;
            case F16 -> F16;
            case I32 -> I32;
        };
    }
}
