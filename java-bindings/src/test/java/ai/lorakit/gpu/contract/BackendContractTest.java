package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Dropout;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static ai.lorakit.gpu.contract.Ref.assertClose;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The backend contract for memory, elementwise ops, reductions, dropout and the error rules, on every backend
 * in {@link ContractBackends}: each op against a naive double reference on structured (ones, arange) and
 * seeded random inputs over awkward shapes, outputs NaN-poisoned before the call and checked fully written,
 * NaN/Inf propagating, BF16/F16 outputs rounded, and bad shapes / foreign tensors (ShapeException) and closed
 * tensors or backends (GpuException) rejected before anything is written. GEMM, the optimizer and the LoRA
 * default methods have their own contract classes.
 */
class BackendContractTest {
    static final String SRC = "ai.lorakit.gpu.contract.ContractBackends#all";

    /** Awkward shapes: tiny, odd, just over powers of two, rank 1..3. */
    static final int[][] SHAPES = {{1}, {7}, {33}, {65}, {130}, {7, 33}, {65, 1}, {1, 130}, {33, 65}, {2, 3, 7}};

    static float[] input(int kind, long seed, int n) {
        return switch (kind) {
            case 0 -> Ref.ones(n);
            case 1 -> Ref.arange(n, 0.5f);
            default -> Ref.random(seed, n);
        };
    }

    static String inputName(int kind, long seed) {
        return kind == 0 ? "ones" : kind == 1 ? "arange" : "random(seed=" + seed + ")";
    }

    // ---------------------------------------------------------------- memory

    @ParameterizedTest
    @MethodSource(SRC)
    void memoryRoundTripsAndRounds(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            float[] x = {1f, -2.5f, 1.00390625f, 3.14159265f, 65504f, 1e-8f, Float.NaN, Float.POSITIVE_INFINITY};
            for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                try (Tensor t = be.upload(x, dt, 2, 4)) {
                    float[] got = be.download(t);
                    for (int i = 0; i < x.length; i++) {
                        assertEquals(dt.round(x[i]), got[i], 0f, dt + " upload/download element " + i);
                    }
                    assertArrayEquals(new int[] {2, 4}, t.shape());
                    assertEquals(dt, t.dtype());
                }
            }
            try (Tensor z = be.zeros(DType.F32, 3, 5); Tensor zi = be.zeros(DType.I32, 4)) {
                assertArrayEquals(new float[15], be.download(z));
                assertArrayEquals(new int[4], be.downloadInts(zi));
            }
            int[] ids = {0, 5, -3, 1 << 20};
            try (Tensor t = be.uploadInts(ids, 2, 2)) {
                assertArrayEquals(ids, be.downloadInts(t));
                assertArrayEquals(new float[] {0, 5, -3, 1 << 20}, be.download(t), "I32 download as float");
                assertEquals(DType.I32, t.dtype());
                int[] next = {7, -1, 1 << 21, 3};
                be.write(t, next);
                assertArrayEquals(next, be.downloadInts(t), "write into an existing I32 tensor");
                ShapeException e = assertThrows(ShapeException.class, () -> be.write(t, new int[3]));
                assertTrue(e.getMessage().contains("write"), e.getMessage());
                assertArrayEquals(next, be.downloadInts(t), "a refused write left the tensor alone");
                try (Tensor fl = be.zeros(DType.F32, 4)) {
                    assertThrows(ShapeException.class, () -> be.write(fl, next), "write ints into an F32 tensor");
                    assertThrows(ShapeException.class, () -> be.write(t, new float[4]), "write floats into I32");
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void writeIntoAnExistingTensorRounds(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            float[] x = {1f, -2.5f, 1.00390625f, 3.14159265f, 65504f, 1e-8f, Float.NaN, Float.POSITIVE_INFINITY};
            for (DType dt : new DType[] {DType.F32, DType.BF16, DType.F16}) {
                try (Tensor t = be.upload(Ref.nans(8), dt, 2, 4)) {
                    be.write(t, x);
                    float[] got = be.download(t);
                    for (int i = 0; i < x.length; i++) {
                        assertEquals(dt.round(x[i]), got[i], 0f, dt + " write element " + i);
                    }
                    ShapeException e = assertThrows(ShapeException.class, () -> be.write(t, new float[7]));
                    assertTrue(e.getMessage().contains("write"), e.getMessage());
                    assertArrayEquals(got, be.download(t), dt + ": a refused write left the tensor alone");
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void workTensorsHaveTheirShapeAndNeverAlias(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int round = 0; round < 2; round++) {                  // round 1 gets returned tensors back
                Tensor a = be.borrowWork(DType.F32, 3, 5);
                Tensor b = be.borrowWork(DType.F32, 3, 5);             // same shape while a is out: another tensor
                assertArrayEquals(new int[] {3, 5}, a.shape());
                assertEquals(DType.F32, a.dtype());
                be.write(a, Ref.arange(15, 0.5f));
                be.write(b, Ref.ones(15));
                assertArrayEquals(Ref.arange(15, 0.5f), be.download(a), "round " + round + ": b overwrote a");
                be.returnWork(a);
                be.returnWork(b);
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void copyAndFillRoundToDestination(Supplier<Backend> f) {
        long seed = 11;
        try (Backend be = f.get()) {
            float[] x = Ref.random(seed, 65);
            try (Tensor src = be.upload(x, 65);
                 Tensor bf = be.upload(Ref.nans(65), DType.BF16, 5, 13);
                 Tensor f16 = be.upload(Ref.nans(65), DType.F16, 65);
                 Tensor back = be.upload(Ref.nans(65), 65)) {
                be.copy(src, bf);
                be.copy(src, f16);
                be.copy(bf, back);
                float[] gotBf = be.download(bf);
                float[] gotF16 = be.download(f16);
                for (int i = 0; i < 65; i++) {
                    assertEquals(DType.BF16.round(x[i]), gotBf[i], 0f, "copy F32->BF16 [" + i + "] seed " + seed);
                    assertEquals(DType.F16.round(x[i]), gotF16[i], 0f, "copy F32->F16 [" + i + "] seed " + seed);
                }
                assertArrayEquals(gotBf, be.download(back), "copy BF16->F32 is exact");
                be.fill(bf, 0.1f);
                be.fill(back, 0.1f);
                assertArrayEquals(Ref.filled(65, DType.BF16.round(0.1f)), be.download(bf), "fill rounds to BF16");
                assertArrayEquals(Ref.filled(65, 0.1f), be.download(back), "fill F32");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void memoryRejectsBadArguments(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            assertThrows(ShapeException.class, () -> be.upload(new float[5], 2, 3));
            assertThrows(ShapeException.class, () -> be.uploadInts(new int[5], 6));
            assertThrows(ShapeException.class, () -> be.zeros(DType.F32, 2, -1));
            try (Tensor a = be.upload(Ref.ones(6), 2, 3); Tensor b = be.upload(Ref.filled(5, 7f), 5)) {
                ShapeException e = assertThrows(ShapeException.class, () -> be.copy(a, b));
                assertTrue(e.getMessage().contains("copy"), e.getMessage());
                assertArrayEquals(Ref.filled(5, 7f), be.download(b), "copy wrote before failing");
                assertThrows(ShapeException.class, () -> be.downloadInts(a), "downloadInts of an F32 tensor");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void closedTensorsAndBackendsThrow(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            Tensor a = be.upload(Ref.ones(4), 4);
            Tensor out = be.upload(Ref.filled(4, 9f), 4);
            a.close();
            a.close();   // idempotent
            assertTrue(a.isClosed());
            assertThrows(GpuException.class, () -> be.download(a));
            GpuException e = assertThrows(GpuException.class, () -> be.add(a, out, out));
            assertTrue(e.getMessage().contains("closed"), e.getMessage());
            assertArrayEquals(Ref.filled(4, 9f), be.download(out), "add wrote before failing");
            assertThrows(GpuException.class, () -> be.fill(a, 1f));
            out.close();
        }
        Backend be = f.get();
        Tensor t = be.upload(Ref.ones(3), 3);
        be.close();
        assertThrows(GpuException.class, () -> be.download(t), "tensor of a closed backend");
        assertThrows(GpuException.class, () -> be.zeros(DType.F32, 2), "zeros on a closed backend");
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void foreignTensorsAreRejected(Supplier<Backend> f) {
        try (Backend be = f.get(); Backend other = f.get()) {
            try (Tensor a = be.upload(Ref.ones(4), 4);
                 Tensor mine = be.upload(Ref.filled(4, 9f), 4);
                 Tensor theirs = other.upload(Ref.ones(4), 4)) {
                ShapeException e = assertThrows(ShapeException.class, () -> be.add(a, theirs, mine));
                assertTrue(e.getMessage().contains("add"), e.getMessage());
                assertArrayEquals(Ref.filled(4, 9f), be.download(mine), "add wrote before failing");
                assertThrows(ShapeException.class, () -> be.download(theirs));
                assertThrows(ShapeException.class, () -> be.copy(a, theirs));
                assertThrows(ShapeException.class, () -> be.sum(theirs));
            }
        }
    }

    // ---------------------------------------------------------------- elementwise

    interface Binary {
        void apply(Backend be, Tensor a, Tensor b, Tensor out);
    }

    interface RefBinary {
        double apply(double a, double b);
    }

    private void checkBinary(Supplier<Backend> f, String op, Binary call, RefBinary ref) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                for (int kind = 0; kind < 3; kind++) {
                    long seed = 1000L * n + kind;
                    float[] x = input(kind, seed, n);
                    float[] y = input(2, seed + 1, n);
                    String what = op + " " + java.util.Arrays.toString(shape) + " " + inputName(kind, seed);
                    double[] want = new double[n];
                    for (int i = 0; i < n; i++) {
                        want[i] = ref.apply(x[i], y[i]);
                    }
                    try (Tensor a = be.upload(x, shape); Tensor b = be.upload(y, shape);
                         Tensor out = be.upload(Ref.nans(n), shape)) {
                        call.apply(be, a, b, out);
                        assertClose(Tolerance.F32, what, be.download(out), want);
                    }
                    // BF16 output: rounded result
                    try (Tensor a = be.upload(x, shape); Tensor b = be.upload(y, shape);
                         Tensor out = be.upload(Ref.nans(n), DType.BF16, shape)) {
                        call.apply(be, a, b, out);
                        float[] got = be.download(out);
                        assertRounded(DType.BF16, what + " -> BF16", got);
                        assertClose(Tolerance.BF16, what + " -> BF16", got, want);
                    }
                }
            }
            // NaN / Inf propagate
            float[] x = {Float.NaN, Float.POSITIVE_INFINITY, 1f, Float.NEGATIVE_INFINITY, 2f};
            float[] y = {1f, 1f, Float.NaN, 3f, Float.POSITIVE_INFINITY};
            double[] want = new double[5];
            for (int i = 0; i < 5; i++) {
                want[i] = (float) ref.apply(x[i], y[i]);
            }
            try (Tensor a = be.upload(x, 5); Tensor b = be.upload(y, 5); Tensor out = be.upload(Ref.ones(5), 5)) {
                call.apply(be, a, b, out);
                assertClose(Tolerance.F32, op + " non-finite inputs", be.download(out), want);
            }
            // shape mismatch: nothing written
            try (Tensor a = be.upload(Ref.ones(6), 6); Tensor b = be.upload(Ref.ones(6), 6);
                 Tensor out = be.upload(Ref.filled(7, 5f), 7)) {
                ShapeException e = assertThrows(ShapeException.class, () -> call.apply(be, a, b, out));
                assertTrue(e.getMessage().contains(op), op + ": message should name the op: " + e.getMessage());
                assertArrayEquals(Ref.filled(7, 5f), be.download(out), op + " wrote before failing");
            }
            // I32 is not a math dtype
            try (Tensor a = be.uploadInts(new int[3], 3); Tensor b = be.upload(Ref.ones(3), 3);
                 Tensor out = be.upload(Ref.filled(3, 5f), 3)) {
                assertThrows(ShapeException.class, () -> call.apply(be, a, b, out));
                assertArrayEquals(Ref.filled(3, 5f), be.download(out), op + " wrote before failing");
            }
        }
    }

    static void assertRounded(DType dt, String what, float[] got) {
        for (int i = 0; i < got.length; i++) {
            assertEquals(dt.round(got[i]), got[i], 0f, what + ": element " + i + " not rounded to " + dt);
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void add(Supplier<Backend> f) {
        checkBinary(f, "add", Backend::add, Double::sum);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void mul(Supplier<Backend> f) {
        checkBinary(f, "mul", Backend::mul, (p, q) -> p * q);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void divide(Supplier<Backend> f) {
        checkBinary(f, "divide", Backend::divide, (p, q) -> p / q);
        checkBf16Inputs(f, "divide", (be, a, out) -> be.divide(a, a, out), p -> p / p);
    }

    interface Unary {
        void apply(Backend be, Tensor x, Tensor out);
    }

    interface RefUnary {
        double apply(double x);
    }

    /**
     * A one-input op through checkBinary's cases (F32 and BF16 outputs, non-finite inputs, bad shapes, I32), then
     * BF16 inputs.
     */
    private void checkUnary(Supplier<Backend> f, String op, Unary call, RefUnary ref) {
        checkBinary(f, op, (be, a, b, out) -> call.apply(be, a, out), (p, q) -> ref.apply(p));
        checkBf16Inputs(f, op, call, ref);
    }

    /** BF16 input, F32 and BF16 outputs, against the reference on the bf16-rounded input; also in place. */
    private void checkBf16Inputs(Supplier<Backend> f, String op, Unary call, RefUnary ref) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                float[] x = Ref.random(77L * n, n);
                double[] want = new double[n];
                for (int i = 0; i < n; i++) {
                    want[i] = ref.apply(DType.BF16.round(x[i]));
                }
                String what = op + " BF16 in " + java.util.Arrays.toString(shape);
                try (Tensor a = be.upload(x, DType.BF16, shape); Tensor out = be.upload(Ref.nans(n), shape)) {
                    call.apply(be, a, out);
                    assertClose(Tolerance.F32, what + " -> F32", be.download(out), want);
                }
                try (Tensor a = be.upload(x, DType.BF16, shape)) {
                    call.apply(be, a, a);
                    float[] got = be.download(a);
                    assertRounded(DType.BF16, what + " -> BF16 in place", got);
                    assertClose(Tolerance.BF16, what + " -> BF16 in place", got, want);
                }
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void sqrt(Supplier<Backend> f) {
        checkUnary(f, "sqrt", Backend::sqrt, Math::sqrt);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void reciprocal(Supplier<Backend> f) {
        checkUnary(f, "reciprocal", Backend::reciprocal, p -> 1 / p);
    }

    /**
     * The IEEE results of the three ops on zeros, negatives and infinities (what DoRA's k = m / n and 1 / n give for
     * a zero norm): x / ±0 = ±Inf, 0 / 0 = NaN, sqrt(-1) = NaN, sqrt(-0) = -0, 1 / ±0 = ±Inf, 1 / ±Inf = ±0, exact
     * bit patterns in F32 and in BF16 storage.
     */
    @ParameterizedTest
    @MethodSource(SRC)
    void divideSqrtReciprocalFollowIeee(Supplier<Backend> f) {
        float inf = Float.POSITIVE_INFINITY;
        float nan = Float.NaN;
        float[] a = {1f, -1f, 0f, -0f, 2f, inf, 6f};
        float[] b = {0f, 0f, 0f, 1f, -0f, inf, 3f};
        float[] quotient = {inf, -inf, nan, -0f, -inf, nan, 2f};
        float[] x = {-1f, -0f, 0f, inf, -inf, 4f, nan};
        float[] root = {nan, -0f, 0f, inf, nan, 2f, nan};
        float[] inverse = {-1f, -inf, inf, 0f, -0f, 0.25f, nan};
        try (Backend be = f.get()) {
            for (DType dt : new DType[] {DType.F32, DType.BF16}) {
                try (Tensor at = be.upload(a, dt, 7); Tensor bt = be.upload(b, dt, 7);
                     Tensor xt = be.upload(x, dt, 7); Tensor out = be.upload(Ref.ones(7), dt, 7)) {
                    be.divide(at, bt, out);
                    assertBits(dt + " divide", quotient, be.download(out));
                    be.sqrt(xt, out);
                    assertBits(dt + " sqrt", root, be.download(out));
                    be.reciprocal(xt, out);
                    assertBits(dt + " reciprocal", inverse, be.download(out));
                }
            }
        }
    }

    /** Same values, signed zeros told apart, any NaN equal to any NaN. */
    private static void assertBits(String what, float[] want, float[] got) {
        for (int i = 0; i < want.length; i++) {
            assertEquals(Float.valueOf(want[i]), Float.valueOf(got[i]), what + " element " + i);
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void scale(Supplier<Backend> f) {
        checkBinary(f, "scale", (be, a, b, out) -> be.scale(a, -1.75f, out), (p, q) -> -1.75 * p);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void axpby(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                for (int kind = 0; kind < 3; kind++) {
                    long seed = 13L * n + kind;
                    float[] x = input(kind, seed, n);
                    float[] y = Ref.random(seed + 1, n);
                    double[] want = new double[n];
                    for (int i = 0; i < n; i++) {
                        want[i] = 0.5 * x[i] - 2.0 * y[i];
                    }
                    String what = "axpby " + java.util.Arrays.toString(shape) + " " + inputName(kind, seed);
                    try (Tensor xt = be.upload(x, shape); Tensor yt = be.upload(y, shape)) {
                        be.axpby(0.5f, xt, -2f, yt);
                        assertClose(Tolerance.F32, what, be.download(yt), want);
                    }
                    try (Tensor xt = be.upload(x, shape); Tensor yt = be.upload(y, DType.BF16, shape)) {
                        for (int i = 0; i < n; i++) {
                            want[i] = 0.5 * x[i] - 2.0 * DType.BF16.round(y[i]);
                        }
                        be.axpby(0.5f, xt, -2f, yt);
                        float[] got = be.download(yt);
                        assertRounded(DType.BF16, what + " BF16 y", got);
                        assertClose(Tolerance.BF16, what + " BF16 y", got, want);
                    }
                }
            }
            try (Tensor x = be.upload(Ref.ones(6), 6); Tensor y = be.upload(Ref.filled(7, 5f), 7)) {
                ShapeException e = assertThrows(ShapeException.class, () -> be.axpby(1f, x, 1f, y));
                assertTrue(e.getMessage().contains("axpby"), e.getMessage());
                assertArrayEquals(Ref.filled(7, 5f), be.download(y), "axpby wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void axpbyWithZeroBetaIgnoresY(Supplier<Backend> f) {
        try (Backend be = f.get(); Tensor x = be.upload(Ref.arange(33, 1f), 33);
             Tensor y = be.upload(Ref.nans(33), 33)) {
            be.axpby(2f, x, 0f, y);
            double[] want = Ref.toDouble(Ref.arange(33, 2f));
            assertClose(Tolerance.F32, "axpby beta=0 over NaN y", be.download(y), want);
        }
    }

    interface VecOp {
        void apply(Backend be, Tensor a, Tensor v, Tensor out);
    }

    private void checkVector(Supplier<Backend> f, String op, VecOp call, boolean perColumn, boolean add) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                int cols = shape[shape.length - 1];
                int rows = n / cols;
                for (int kind = 0; kind < 3; kind++) {
                    long seed = 77L * n + kind;
                    float[] x = input(kind, seed, n);
                    int vn = perColumn ? cols : rows;
                    float[] v = Ref.random(seed + 5, vn);
                    double[] want = new double[n];
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < cols; c++) {
                            double vv = v[perColumn ? c : r];
                            want[r * cols + c] = add ? x[r * cols + c] + vv : (double) x[r * cols + c] * vv;
                        }
                    }
                    String what = op + " " + java.util.Arrays.toString(shape) + " " + inputName(kind, seed);
                    try (Tensor a = be.upload(x, shape); Tensor vt = be.upload(v, vn);
                         Tensor out = be.upload(Ref.nans(n), shape)) {
                        call.apply(be, a, vt, out);
                        assertClose(Tolerance.F32, what, be.download(out), want);
                        call.apply(be, a, vt, a);   // in place
                        assertClose(Tolerance.F32, what + " in place", be.download(a), want);
                    }
                }
            }
            try (Tensor a = be.upload(Ref.ones(12), 3, 4); Tensor v = be.upload(Ref.ones(5), 5);
                 Tensor out = be.upload(Ref.filled(12, 5f), 3, 4)) {
                ShapeException e = assertThrows(ShapeException.class, () -> call.apply(be, a, v, out));
                assertTrue(e.getMessage().contains(op), e.getMessage());
                assertArrayEquals(Ref.filled(12, 5f), be.download(out), op + " wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void addRowVector(Supplier<Backend> f) {
        checkVector(f, "addRowVector", Backend::addRowVector, true, true);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void mulRowVector(Supplier<Backend> f) {
        checkVector(f, "mulRowVector", Backend::mulRowVector, true, false);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void mulColVector(Supplier<Backend> f) {
        checkVector(f, "mulColVector", Backend::mulColVector, false, false);
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void transpose(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            int[][] dims = {{1, 1}, {1, 7}, {7, 1}, {33, 65}, {130, 7}, {64, 64}};
            for (int[] d : dims) {
                for (int kind = 1; kind < 3; kind++) {
                    long seed = 31L * d[0] + d[1] + kind;
                    float[] x = input(kind, seed, d[0] * d[1]);
                    double[] want = Ref.transpose(Ref.toDouble(x), d[0], d[1]);
                    try (Tensor a = be.upload(x, d[0], d[1]); Tensor out = be.upload(Ref.nans(x.length), d[1], d[0])) {
                        be.transpose(a, out);
                        assertClose(Tolerance.F32, "transpose " + d[0] + "x" + d[1] + " " + inputName(kind, seed),
                                be.download(out), want);
                    }
                }
            }
            try (Tensor a = be.upload(Ref.ones(6), 2, 3); Tensor out = be.upload(Ref.filled(6, 5f), 2, 3)) {
                assertThrows(ShapeException.class, () -> be.transpose(a, out));
                assertArrayEquals(Ref.filled(6, 5f), be.download(out), "transpose wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void dropoutMaskMatchesTheCounterHash(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (float p : new float[] {0f, 0.1f, 0.5f}) {
                for (long seed : new long[] {0L, 42L, -7L}) {
                    int n = 4099;
                    try (Tensor mask = be.upload(Ref.nans(n), n)) {
                        be.dropoutMask(mask, p, seed);
                        float[] got = be.download(mask);
                        int dropped = 0;
                        for (int i = 0; i < n; i++) {
                            assertEquals(Dropout.maskValue(seed, i, p), got[i], 0f,
                                    "dropout p=" + p + " seed=" + seed + " element " + i);
                            if (got[i] == 0f) {
                                dropped++;
                            }
                        }
                        double sd = Math.sqrt(n * p * (1 - p));
                        assertTrue(Math.abs(dropped - n * p) <= 5 * sd + 1,
                                "dropped " + dropped + " of " + n + " at p=" + p + " seed=" + seed);
                    }
                }
            }
        }
    }

    // ---------------------------------------------------------------- reductions

    @ParameterizedTest
    @MethodSource(SRC)
    void sumRows(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                int cols = shape[shape.length - 1];
                for (int kind = 0; kind < 3; kind++) {
                    long seed = 5L * n + kind;
                    float[] x = input(kind, seed, n);
                    float[] old = Ref.random(seed + 9, cols);
                    double[] sums = new double[cols];
                    for (int i = 0; i < n; i++) {
                        sums[i % cols] += x[i];
                    }
                    String what = "sumRows " + java.util.Arrays.toString(shape) + " " + inputName(kind, seed);
                    try (Tensor a = be.upload(x, shape); Tensor out = be.upload(Ref.nans(cols), cols)) {
                        be.sumRows(a, 0f, out);   // beta = 0: NaN in out must not propagate
                        assertClose(Tolerance.F32, what + " beta=0", be.download(out), sums);
                        try (Tensor o2 = be.upload(old, cols)) {
                            be.sumRows(a, 0.5f, o2);
                            double[] want = new double[cols];
                            for (int c = 0; c < cols; c++) {
                                want[c] = 0.5 * old[c] + sums[c];
                            }
                            assertClose(Tolerance.F32, what + " beta=0.5", be.download(o2), want);
                        }
                    }
                }
            }
            try (Tensor a = be.upload(Ref.ones(12), 3, 4); Tensor out = be.upload(Ref.filled(3, 5f), 3)) {
                assertThrows(ShapeException.class, () -> be.sumRows(a, 0f, out));
                assertArrayEquals(Ref.filled(3, 5f), be.download(out), "sumRows wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void rowDotSumDot(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            for (int[] shape : SHAPES) {
                int n = (int) Tensor.numel(shape);
                int cols = shape[shape.length - 1];
                int rows = n / cols;
                for (int kind = 0; kind < 3; kind++) {
                    long seed = 3L * n + kind;
                    float[] x = input(kind, seed, n);
                    float[] y = Ref.random(seed + 1, n);
                    double[] rd = new double[rows];
                    double[] sq = new double[rows];
                    double sum = 0;
                    double dot = 0;
                    for (int i = 0; i < n; i++) {
                        rd[i / cols] += (double) x[i] * y[i];
                        sq[i / cols] += (double) x[i] * x[i];
                        sum += x[i];
                        dot += (double) x[i] * y[i];
                    }
                    String what = java.util.Arrays.toString(shape) + " " + inputName(kind, seed);
                    try (Tensor a = be.upload(x, shape); Tensor b = be.upload(y, shape);
                         Tensor out = be.upload(Ref.nans(rows), rows)) {
                        be.rowDot(a, b, out);
                        assertClose(Tolerance.F32, "rowDot " + what, be.download(out), rd);
                        be.rowDot(a, a, out);
                        assertClose(Tolerance.F32, "rowDot self " + what, be.download(out), sq);
                        assertEquals(sum, be.sum(a), 1e-9 * n + 1e-6 * Math.abs(sum), "sum " + what);
                        assertEquals(dot, be.dot(a, b), 1e-9 * n + 1e-6 * Math.abs(dot), "dot " + what);
                    }
                }
            }
            // sum and dot accumulate in double: 2^24 + many ones is not lost
            int n = 1 << 12;
            float[] x = Ref.ones(n);
            x[0] = 1 << 24;
            try (Tensor a = be.upload(x, n)) {
                assertEquals((1 << 24) + n - 1, be.sum(a), 0.0, "sum must accumulate in double");
                assertEquals((double) (1L << 48) + n - 1, be.dot(a, a), 0.0, "dot must accumulate in double");
            }
            try (Tensor a = be.upload(Ref.ones(12), 3, 4); Tensor b = be.upload(Ref.ones(12), 4, 3);
                 Tensor out = be.upload(Ref.filled(3, 5f), 3)) {
                assertThrows(ShapeException.class, () -> be.rowDot(a, b, out));
                assertArrayEquals(Ref.filled(3, 5f), be.download(out), "rowDot wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void countNonFinite(Supplier<Backend> f) {
        try (Backend be = f.get()) {
            float[] x = Ref.random(3, 130);
            x[0] = Float.NaN;
            x[64] = Float.POSITIVE_INFINITY;
            x[129] = Float.NEGATIVE_INFINITY;
            x[7] = Float.MAX_VALUE;
            try (Tensor a = be.upload(x, 130); Tensor ok = be.upload(Ref.ones(7), 7)) {
                assertEquals(3, be.countNonFinite(a));
                assertEquals(0, be.countNonFinite(ok));
            }
            try (Tensor h = be.upload(new float[] {70000f, 1f}, DType.F16, 2)) {
                assertEquals(1, be.countNonFinite(h), "70000 overflows F16 to infinity");
            }
        }
    }

    // ---------------------------------------------------------------- AdaLoRA elementwise ops

    @ParameterizedTest
    @MethodSource(SRC)
    void adaloraSensitivity(Supplier<Backend> f) {
        long seed = 2024;
        int n = 130;
        float b1 = 0.85f, b2 = 0.95f;
        float[] p = Ref.random(seed, n), ipt = Ref.random(seed + 2, n), unc = Ref.random(seed + 3, n);
        for (int i = 0; i < n; i++) {
            ipt[i] = Math.abs(ipt[i]);
            unc[i] = Math.abs(unc[i]);
        }
        try (Backend be = f.get(); Tensor pt = be.upload(p, 10, 13); Tensor it = be.upload(ipt, 10, 13);
             Tensor ut = be.upload(unc, 10, 13)) {
            double[] wi = Ref.toDouble(ipt), wu = Ref.toDouble(unc);
            for (int step = 0; step < 3; step++) {
                float[] g = Ref.random(seed + 10 + step, n);
                try (Tensor gt = be.upload(g, 10, 13)) {
                    be.adaloraSensitivity(pt, gt, it, ut, b1, b2);
                }
                for (int i = 0; i < n; i++) {
                    double cur = Math.abs((double) p[i] * g[i]);
                    wi[i] = b1 * wi[i] + (1 - b1) * cur;
                    wu[i] = b2 * wu[i] + (1 - b2) * Math.abs(cur - wi[i]);
                }
                assertClose(Tolerance.F32, "adalora Ibar step " + step + " seed " + seed, be.download(it), wi);
                assertClose(Tolerance.F32, "adalora Ubar step " + step + " seed " + seed, be.download(ut), wu);
            }
            try (Tensor bad = be.upload(Ref.ones(7), 7)) {
                float[] before = be.download(it);
                assertThrows(ShapeException.class, () -> be.adaloraSensitivity(pt, bad, it, ut, b1, b2));
                assertArrayEquals(before, be.download(it), "adaloraSensitivity wrote before failing");
            }
        }
    }

    @ParameterizedTest
    @MethodSource(SRC)
    void maskWhereAtMost(Supplier<Backend> f) {
        float[] target = Ref.random(5, 65);
        float[] scores = Ref.arange(65, 1f);
        scores[3] = Float.NaN;
        try (Backend be = f.get(); Tensor t = be.upload(target, 65); Tensor s = be.upload(scores, 5, 13)) {
            be.maskWhereAtMost(t, s, 0f);
            float[] got = be.download(t);
            for (int i = 0; i < 65; i++) {
                float want = scores[i] <= 0f ? 0f : target[i];
                assertEquals(want, got[i], 0f, "maskWhereAtMost element " + i + " score " + scores[i]);
            }
            try (Tensor bad = be.upload(Ref.ones(64), 64)) {
                assertThrows(ShapeException.class, () -> be.maskWhereAtMost(t, bad, 0f));
                assertArrayEquals(got, be.download(t), "maskWhereAtMost wrote before failing");
            }
            assertFalse(got.length == 0);
        }
    }
}
