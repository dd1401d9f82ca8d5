package ai.lorakit.gpu.cpu;

import jdk.incubator.vector.FloatVector;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@link CpuMath}'s bit-reproducible exp is accurate (within 1 ulp of the correctly rounded e^x on a
 * dense sweep of [-104, 89], exact 0 / +inf / NaN at the ends), that its scalar twin gives the vector lanes'
 * bits, and that the lane folds sum and max in the documented fixed tree order.
 */
class CpuMathTest {

    private static final int L = CpuMath.L;

    /** ulps between a and the float nearest to ref (ref from Math.exp in double). */
    private static long ulps(float a, double ref) {
        float r = (float) ref;
        return Math.abs((long) Float.floatToIntBits(a) - Float.floatToIntBits(r));
    }

    @Test
    void expIsWithinOneUlpAndScalarTwinMatchesTheLanes() {
        float[] x = new float[L];
        float[] y = new float[L];
        long worst = 0;
        float worstAt = 0;
        int k = 0;
        int checked = 0;
        // every 251st float in [-104, 0] and [0, 89] (about 9 million values)
        int[][] ranges = {{Float.floatToIntBits(0f), Float.floatToIntBits(89f)},
                {Float.floatToIntBits(-0f), Float.floatToIntBits(-104f)}};
        for (int[] rg : ranges) {
            for (int bits = rg[0]; bits <= rg[1]; bits += 251) {
                x[k++] = Float.intBitsToFloat(bits);
                if (k < L) {
                    continue;
                }
                CpuMath.exp(FloatVector.fromArray(CpuMath.S, x, 0)).intoArray(y, 0);
                for (int i = 0; i < L; i++) {
                    float s = CpuMath.exp(x[i]);
                    if (Float.floatToRawIntBits(s) != Float.floatToRawIntBits(y[i])) {
                        throw new AssertionError("exp(" + x[i] + "): scalar " + s + " != vector lane " + y[i]);
                    }
                    long u = ulps(y[i], Math.exp(x[i]));
                    if (u > worst) {
                        worst = u;
                        worstAt = x[i];
                    }
                    checked++;
                }
                k = 0;
            }
        }
        assertTrue(checked > 8_000_000, "sweep size " + checked);
        assertTrue(worst <= 1, "exp error " + worst + " ulp at x = " + worstAt);
    }

    @Test
    void expLimits() {
        float[] in = {Float.NEGATIVE_INFINITY, -1e30f, -104f, -103.9f, 0f, -0f, 1f, 88.72f, 88.7229f, 89f, 1e30f,
                Float.POSITIVE_INFINITY, Float.NaN};
        float[] want = {0f, 0f, 0f, Float.MIN_VALUE, 1f, 1f, (float) Math.E, (float) Math.exp(88.72f),
                Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY, Float.POSITIVE_INFINITY,
                Float.NaN};
        for (int i = 0; i < in.length; i++) {
            assertEquals(want[i], CpuMath.exp(in[i]), 0f, "exp(" + in[i] + ")");
            assertEquals(want[i], CpuMath.exp(FloatVector.broadcast(CpuMath.S, in[i])).lane(L - 1), 0f,
                    "vector exp(" + in[i] + ")");
        }
    }

    @Test
    void laneFoldsUseTheFixedPairwiseTree() {
        float[] v = new float[L];
        for (int i = 0; i < L; i++) {
            v[i] = (float) Math.scalb(1.0 + i / 7.0, (i * 11) % 23 - 11);   // magnitudes where order matters
        }
        // the documented tree: lane i += lane i + L/2, then i + L/4, ... (indices mod L; lane 0 is the result)
        float[] t = v.clone();
        for (int by = L / 2; by >= 1; by /= 2) {
            float[] n = new float[L];
            for (int i = 0; i < L; i++) {
                n[i] = t[i] + t[(i + by) % L];
            }
            t = n;
        }
        FloatVector fv = FloatVector.fromArray(CpuMath.S, v, 0);
        assertEquals(Float.floatToRawIntBits(t[0]), Float.floatToRawIntBits(CpuMath.sumLanes(fv)), "tree sum");
        float max = Float.NEGATIVE_INFINITY;
        for (float x : v) {
            max = Math.max(max, x);
        }
        assertEquals(max, CpuMath.maxLanes(fv), 0f, "max");
        v[L / 3] = Float.NaN;
        assertTrue(Float.isNaN(CpuMath.maxLanes(FloatVector.fromArray(CpuMath.S, v, 0))), "max propagates NaN");
    }
}
