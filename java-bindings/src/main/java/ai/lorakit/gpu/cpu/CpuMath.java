package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * Bit-reproducible math for the Vector API paths: the same input gives the same bits on every call, in every
 * lane position and at every JIT tier.
 *
 * <p>Why this exists: the Vector API's transcendental lanewise ops ({@code VectorOperators.EXP}, TANH, LOG...)
 * run as a per-lane {@code Math.exp} loop while interpreted or C1-compiled, but as an SVML routine once C2
 * intrinsifies them, and the two differ by an ulp on some inputs; {@code reduceLanes(ADD)} sums the lanes in
 * index order in the fallback but as a tree in the intrinsic. A loss evaluated repeatedly in one JVM therefore
 * changed in its last bits once C2 kicked in (~1e-8 in GPT-2's evalLoss). This class builds exp from IEEE
 * basic operations only (add, mul, fma, min/max, integer shifts), each correctly rounded by definition in both
 * the fallback and the intrinsic, and sums lanes in a fixed order.
 *
 * <p>exp(x), x = n ln2 + r with n = rint(x log2 e) (read from the mantissa of x log2 e + 1.5 * 2^23, no
 * float-to-int conversion), |r| <= ln2/2 (plus an ulp): r from a two-part ln2 (Cody and Waite),
 * e^r from its degree-7 Taylor polynomial (truncation < 6e-9 relative, below half an fp32 ulp) by Horner with
 * fma, 2^n applied as two exponent-field factors so that results down to the subnormal range stay exact. Max
 * error about 1 ulp against the correctly rounded exp over [-104, 89]; x < -104 (including -inf) gives 0,
 * x > 88.72 (including +inf) gives +inf, NaN gives NaN. {@link #exp(float)} is the same sequence of float
 * operations, so scalar tails agree bit for bit with the vector lanes.
 */
final class CpuMath {
    static final VectorSpecies<Float> S = species();
    static final int L = S.length();

    private static final float LOG2E = 1.44269504088896341f;
    /** ln2 = LN2_HI + LN2_LO; LN2_HI has 9 significant bits, so n * LN2_HI is exact for |n| <= 2^15. */
    private static final float LN2_HI = 0.693359375f;
    private static final float LN2_LO = -2.12194440e-4f;
    /** 1.5 * 2^23: adding and subtracting it rounds a float of magnitude < 2^22 to the nearest integer. */
    private static final float RINT = 12582912f;
    /** The bits of RINT: RINT + n (|n| < 2^22) has the bits RINT_BITS + n. */
    private static final int RINT_BITS = Float.floatToRawIntBits(RINT);
    /** Inputs are clamped to [X_MIN, X_MAX]: e^-104 rounds to 0 and e^89 overflows to +inf. */
    private static final float X_MIN = -104f;
    private static final float X_MAX = 89f;
    /** 1/k! for the Taylor polynomial of e^r. */
    private static final float C2 = 1f / 2, C3 = 1f / 6, C4 = 1f / 24, C5 = 1f / 120, C6 = 1f / 720, C7 = 1f / 5040;
    /** Lane i <- lane i + L/2^(k+1) (mod L): the steps of the fixed lane-folding tree. */
    private static final VectorShuffle<Float> FOLD1 = fold(L / 2), FOLD2 = fold(L / 4), FOLD3 = fold(L / 8),
            FOLD4 = fold(L / 16);

    private static VectorShuffle<Float> fold(int by) {
        return VectorShuffle.fromOp(S, i -> (i + Math.max(by, 1)) % L);
    }

    private CpuMath() {
    }

    /** The preferred float species, at most 16 lanes (the lane-folding tree's depth). */
    private static VectorSpecies<Float> species() {
        VectorSpecies<Float> s = FloatVector.SPECIES_PREFERRED;
        return s.length() <= 16 ? s : FloatVector.SPECIES_512;
    }

    /** e^x per lane (see the class comment). */
    static FloatVector exp(FloatVector x) {
        FloatVector xc = x.max(X_MIN).min(X_MAX);   // lanewise max/min propagate NaN
        FloatVector t = xc.fma(FloatVector.broadcast(S, LOG2E), FloatVector.broadcast(S, RINT));   // RINT + n
        FloatVector n = t.sub(RINT);
        FloatVector r = n.fma(FloatVector.broadcast(S, -LN2_HI), xc);
        r = n.fma(FloatVector.broadcast(S, -LN2_LO), r);
        FloatVector p = r.fma(C7, C6).fma(r, FloatVector.broadcast(S, C5)).fma(r, FloatVector.broadcast(S, C4))
                .fma(r, FloatVector.broadcast(S, C3)).fma(r, FloatVector.broadcast(S, C2))
                .fma(r, FloatVector.broadcast(S, 1f)).fma(r, FloatVector.broadcast(S, 1f));
        IntVector ni = t.reinterpretAsInts().sub(RINT_BITS);   // n from the low mantissa bits of RINT + n
        IntVector n1 = ni.lanewise(VectorOperators.ASHR, 1);
        IntVector n2 = ni.sub(n1);
        FloatVector s1 = n1.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        FloatVector s2 = n2.add(127).lanewise(VectorOperators.LSHL, 23).reinterpretAsFloats();
        return p.mul(s1).mul(s2);
    }

    /** e^x, the scalar twin of {@link #exp(FloatVector)}: the same float operations in the same order. */
    static float exp(float x) {
        float xc = Math.min(Math.max(x, X_MIN), X_MAX);
        float t = Math.fma(xc, LOG2E, RINT);
        float n = t - RINT;
        float r = Math.fma(n, -LN2_HI, xc);
        r = Math.fma(n, -LN2_LO, r);
        float p = Math.fma(r, C7, C6);
        p = Math.fma(p, r, C5);
        p = Math.fma(p, r, C4);
        p = Math.fma(p, r, C3);
        p = Math.fma(p, r, C2);
        p = Math.fma(p, r, 1f);
        p = Math.fma(p, r, 1f);
        int ni = Float.floatToRawIntBits(t) - RINT_BITS;
        int n1 = ni >> 1;
        int n2 = ni - n1;
        return p * Float.intBitsToFloat((n1 + 127) << 23) * Float.intBitsToFloat((n2 + 127) << 23);
    }

    /**
     * The sum of v's lanes by a fixed pairwise tree (lane i + lane i + L/2, then + L/4, ...: rearranges and
     * lanewise adds, exact data movement and IEEE adds on every tier), unlike reduceLanes(ADD) whose order is
     * the fallback's or the intrinsic's. Supports up to 16 lanes (AVX-512 floats).
     */
    static float sumLanes(FloatVector v) {
        if (L > 1) {
            v = v.add(v.rearrange(FOLD1));
        }
        if (L > 2) {
            v = v.add(v.rearrange(FOLD2));
        }
        if (L > 4) {
            v = v.add(v.rearrange(FOLD3));
        }
        if (L > 8) {
            v = v.add(v.rearrange(FOLD4));
        }
        return v.lane(0);
    }

    /** The largest lane of v (lanewise max, i.e. Math.max: NaN wins, +0 over -0), by the same tree. */
    static float maxLanes(FloatVector v) {
        if (L > 1) {
            v = v.max(v.rearrange(FOLD1));
        }
        if (L > 2) {
            v = v.max(v.rearrange(FOLD2));
        }
        if (L > 4) {
            v = v.max(v.rearrange(FOLD3));
        }
        if (L > 8) {
            v = v.max(v.rearrange(FOLD4));
        }
        return v.lane(0);
    }
}
