package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.api.function.Executable;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;
import java.util.function.UnaryOperator;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Backend#copyStrided on every backend in {@link ContractBackends}: a pitched pack (x [5,7] into columns 3..9 of
 * [5,12]), a transpose ([4,6] -> [6,4], and into the margin of a wider buffer), a copy into middle rows, every
 * other element of dst left at its sentinel, F32->BF16/F16 rounding against this test's own round-to-nearest-even
 * rule (ties and carries included), BF16->F32 exact, src sharing dst's storage read as before the call, empty
 * copies writing nothing, and the host's bounds refusals (message names op, tensor and range; dst untouched).
 */
class CopyStridedContractTest {
    static final String SRC = "ai.lorakit.gpu.contract.ContractBackends#all";

    /** The value every dst element outside the copied block keeps (exact in F32, BF16 and F16). */
    static final float SENTINEL = 99.5f;

    /**
     * fp32 -> the nearest bf16 value, ties to even, written from the rule (not from DType): of the two bf16
     * neighbours of a finite x (x with its low 16 bits cleared, and that plus one bf16 ulp away from zero, which
     * is 2^128 past the largest bf16), the nearer in exact double arithmetic, or on a tie the one whose last kept
     * mantissa bit is 0. A result of 2^128 is Inf (overflow).
     */
    static float bf16(float x) {
        int bits = Float.floatToRawIntBits(x);
        float toward0 = Float.intBitsToFloat(bits & 0xffff0000);
        double away = toward0 + Math.copySign(Math.ulp(Math.abs(toward0)) * 65536.0, x);   // bf16 ulp = 2^16 fp32 ulps
        double dLow = Math.abs((double) x - toward0), dHigh = Math.abs(away - x);
        if (dLow != dHigh) {
            return dLow < dHigh ? toward0 : (float) away;
        }
        return (bits & 0x10000) == 0 ? toward0 : (float) away;
    }

    /** The reference: dst with the block written (values passed through {@code round}). */
    static float[] expected(float[] src, long srcOff, int rs, int cs, float[] dst, long dstOff, int ld, int rows,
                            int cols, UnaryOperator<Float> round) {
        float[] out = dst.clone();
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[(int) (dstOff + (long) i * ld + j)] = round.apply(src[(int) (srcOff + (long) i * rs + (long) j * cs)]);
            }
        }
        return out;
    }

    static void assertBits(String what, float[] want, float[] got) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.floatToIntBits(want[i]), Float.floatToIntBits(got[i]),
                    what + " [" + i + "]: want " + want[i] + " got " + got[i]);
        }
    }

    /** Runs one F32 -> F32 copy on fresh tensors and checks all of dst. */
    static void checkF32(Backend be, String what, int[] srcShape, long srcOff, int rs, int cs, int[] dstShape,
                         long dstOff, int ld, int rows, int cols, long seed) {
        float[] x = Ref.random(seed, (int) Tensor.numel(srcShape));
        float[] before = Ref.filled((int) Tensor.numel(dstShape), SENTINEL);
        try (Tensor s = be.upload(x, srcShape); Tensor d = be.upload(before, dstShape)) {
            be.copyStrided(s, srcOff, rs, cs, d, dstOff, ld, rows, cols);
            assertBits(what + " seed " + seed, expected(x, srcOff, rs, cs, before, dstOff, ld, rows, cols, v -> v),
                    be.download(d));
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void pitchedPackTransposeAndMiddleRows(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            // x [5,7] into Xm [5,12] at column 3: columns 0..2 and 10..11 keep the sentinel
            checkF32(be, "pack [5,7] -> [5,12] col 3", new int[] {5, 7}, 0, 7, 1, new int[] {5, 12}, 3, 12, 5, 7, 1);
            // A [4,6] -> A^T [6,4]
            checkF32(be, "transpose [4,6] -> [6,4]", new int[] {4, 6}, 0, 1, 6, new int[] {6, 4}, 0, 4, 6, 4, 2);
            // A^T [6,4] into the right margin (columns 5..8) of W [6,9]
            checkF32(be, "transpose into margin [6,9] col 5", new int[] {4, 6}, 0, 1, 6, new int[] {6, 9}, 5, 9, 6, 4,
                    3);
            // a [3,5] block of x [6,8] (from row 2, column 1) into rows 2..4, columns 4..8 of [8,12]
            checkF32(be, "sub-block into middle rows", new int[] {6, 8}, 2 * 8 + 1, 8, 1, new int[] {8, 12},
                    2 * 12 + 4, 12, 3, 5, 4);
            // one row with dstLd < cols (allowed: nothing can overlap), and a broadcast read (srcRowStride 0)
            checkF32(be, "one row, ld 0", new int[] {9}, 2, 0, 1, new int[] {10}, 1, 0, 1, 7, 5);
            checkF32(be, "row broadcast", new int[] {7}, 0, 0, 1, new int[] {4, 7}, 0, 7, 4, 7, 6);
            // enough elements for many groups and a partial last one
            checkF32(be, "pack [130,70] -> [130,77] col 4", new int[] {130, 70}, 0, 70, 1, new int[] {130, 77}, 4, 77,
                    130, 70, 7);
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void roundsToTheDestinationDtype(Supplier<Backend> f) {
        float one = 1f;
        float[] x = {
            one + 0x1p-8f,                 // tie between 1 and 1+2^-7: even is 1
            one + 3 * 0x1p-8f,             // tie between 1+2^-7 and 1+2^-6: even is 1+2^-6
            one + 0x1p-8f + 0x1p-20f,      // just above the tie: 1+2^-7
            -(one + 3 * 0x1p-8f),          // negative tie: -(1+2^-6)
            3.14159265f,                   // 0x40490FDB: low half < 0x8000, truncates to 3.140625
            0x1.fffffep127f,               // largest float: rounds past bf16's largest to Inf
            1e-40f,                        // subnormal
            -0f,
            0.1f, -2.5f, 65504f, 1e-8f
        };
        float[] want = {one, one + 0x1p-6f, one + 0x1p-7f, -(one + 0x1p-6f), 3.140625f, Float.POSITIVE_INFINITY};
        for (int i = 0; i < want.length; i++) {
            assertEquals(want[i], bf16(x[i]), 0f, "the test's own bf16 rule, case " + i);
        }
        float[] r = Ref.random(21, 24);
        float[] src = new float[x.length + r.length];   // [3,12]
        System.arraycopy(x, 0, src, 0, x.length);
        System.arraycopy(r, 0, src, x.length, r.length);
        try (Backend be = f.get()) {
            float[] before = Ref.filled(4 * 14, SENTINEL);
            try (Tensor s = be.upload(src, 3, 12);
                 Tensor bf = be.upload(before, DType.BF16, 4, 14);
                 Tensor f16 = be.upload(before, DType.F16, 4, 14);
                 Tensor back = be.upload(before, 4, 14)) {
                // F32 [3,12] -> BF16 [4,14] from row 1, column 2; and -> F16 likewise
                be.copyStrided(s, 0, 12, 1, bf, 14 + 2, 14, 3, 12);
                assertBits("F32 -> BF16", expected(src, 0, 12, 1, before, 16, 14, 3, 12, CopyStridedContractTest::bf16),
                        be.download(bf));
                be.copyStrided(s, 0, 12, 1, f16, 14 + 2, 14, 3, 12);
                assertBits("F32 -> F16", expected(src, 0, 12, 1, before, 16, 14, 3, 12,
                        v -> Float.float16ToFloat(Float.floatToFloat16(v))), be.download(f16));
                // BF16 -> F32 is exact: the same block back, transposed ([3,12] block -> [12,3] at column 1)
                try (Tensor t = be.upload(Ref.filled(12 * 4, SENTINEL), 12, 4)) {
                    be.copyStrided(bf, 16, 1, 14, t, 1, 4, 12, 3);
                    float[] bfv = be.download(bf);
                    assertBits("BF16 -> F32 transposed", expected(bfv, 16, 1, 14, Ref.filled(48, SENTINEL), 1, 4, 12,
                            3, v -> v), be.download(t));
                }
                // BF16 -> F32 over all of [4,14] (sentinels included) is exact
                be.copyStrided(bf, 0, 14, 1, back, 0, 14, 4, 14);
                assertBits("BF16 -> F32 whole", be.download(bf), be.download(back));
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void sharedStorageReadsSrcAsBeforeTheCall(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            float[] x = Ref.random(41, 32);
            try (Tensor t = be.upload(x, 4, 8)) {
                // shift columns 0..5 right by 2 in place: overlapping ranges
                be.copyStrided(t, 0, 8, 1, t, 2, 8, 4, 6);
                assertBits("in-place shift", expected(x, 0, 8, 1, x, 2, 8, 4, 6, v -> v), be.download(t));
            }
            try (Tensor t = be.upload(x, 4, 8); Tensor flat = t.view(32)) {
                // a view of the same storage as src: the first [4,4] block transposed onto itself
                be.copyStrided(flat, 0, 1, 8, t, 0, 8, 4, 4);
                assertBits("in-place transpose through a view", expected(x, 0, 1, 8, x, 0, 8, 4, 4, v -> v),
                        be.download(t));
                // the same elements: nothing changes
                float[] now = be.download(t);
                be.copyStrided(t, 0, 8, 1, t, 0, 8, 4, 8);
                assertBits("identity", now, be.download(t));
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void refusesOutOfBoundsBeforeWriting(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            float[] before = Ref.filled(60, SENTINEL);
            try (Tensor s = be.upload(Ref.random(51, 35), 5, 7).named("x");
                 Tensor d = be.upload(before, 5, 12).named("xm");
                 Tensor ids = be.uploadInts(new int[60], 5, 12)) {
                refused(be, d, before, "src past its end", () -> be.copyStrided(s, 0, 8, 1, d, 3, 12, 5, 7),
                        "copyStrided", "src reads elements 0..38", "x", "35 elements");
                refused(be, d, before, "src offset", () -> be.copyStrided(s, 1, 7, 1, d, 3, 12, 5, 7),
                        "copyStrided", "src reads elements 1..35", "35 elements");
                refused(be, d, before, "offset past 2^31", () -> be.copyStrided(s, 1L << 33, 7, 1, d, 3, 12, 5, 7),
                        "copyStrided", "src reads elements 8589934592..8589934626");
                refused(be, d, before, "offset near 2^63", () -> be.copyStrided(s, 0, 7, 1, d, Long.MAX_VALUE, 12, 5, 7),
                        "copyStrided", "dst writes elements " + Long.MAX_VALUE + ".." + Long.MAX_VALUE + "+54");
                refused(be, d, before, "dst past its end", () -> be.copyStrided(s, 0, 7, 1, d, 6, 12, 5, 7),
                        "copyStrided", "dst writes elements 6..60", "xm", "60 elements");
                refused(be, d, before, "dst ld < cols", () -> be.copyStrided(s, 0, 7, 1, d, 0, 6, 5, 7),
                        "copyStrided", "leading dimension 6 < cols 7");
                refused(be, d, before, "negative rows", () -> be.copyStrided(s, 0, 7, 1, d, 0, 12, -1, 7),
                        "copyStrided", "negative size rows=-1");
                refused(be, d, before, "negative stride", () -> be.copyStrided(s, 0, 7, -1, d, 0, 12, 5, 7),
                        "copyStrided", "must be >= 0");
                refused(be, d, before, "negative offset", () -> be.copyStrided(s, 0, 7, 1, d, -1, 12, 5, 7),
                        "copyStrided", "must be >= 0");
                refused(be, d, before, "I32 dst", () -> be.copyStrided(s, 0, 7, 1, ids, 0, 12, 5, 7),
                        "copyStrided", "must be F32, BF16 or F16");
                // empty copies write nothing and need no range inside the tensors
                be.copyStrided(s, 1000, 7, 1, d, 1000, 12, 0, 7);
                be.copyStrided(s, 1000, 7, 1, d, 1000, 12, 5, 0);
                assertBits("empty copies", before, be.download(d));
            }
        }
    }

    private static void refused(Backend be, Tensor d, float[] before, String what, Executable call, String... parts) {
        ShapeException e = assertThrows(ShapeException.class, call, what);
        for (String p : parts) {
            assertTrue(e.getMessage().contains(p), what + ": message lacks '" + p + "': " + e.getMessage());
        }
        assertArrayEquals(before, be.download(d), what + ": dst written before the refusal");
    }
}
