package ai.lorakit.gpu;

/**
 * lorakit's one tolerance rule (ARCHITECTURE.md, "Precision"): |x - ref| <= atol + rtol * |ref| per element,
 * with atol/rtol from one table per dtype; a NaN or infinity on either side fails unless both are the same
 * non-finite value. A failed comparison describes the first mismatches, the worst index, the max difference
 * and the share of the tolerance it used.
 */
public record Tolerance(double atol, double rtol) {

    /** fp32 math against an fp32/fp64 reference. */
    public static final Tolerance F32 = new Tolerance(1e-5, 1e-4);
    /** bf16 storage or tensor-core math. */
    public static final Tolerance BF16 = new Tolerance(1e-2, 1e-2);
    /** fp16 storage. */
    public static final Tolerance F16 = new Tolerance(1e-3, 1e-3);

    /** The table entry for a dtype. */
    public static Tolerance of(DType dtype) {
        return switch (dtype) {
            case F32, I32 -> F32;
            case BF16 -> BF16;
            case F16 -> F16;
        };
    }

    /** Result of {@link #compare}: ok, and a human-readable description either way. */
    public record Result(boolean ok, String describe, double maxAbsDiff, double worstShare) {
        @Override
        public String toString() {
            return describe;
        }
    }

    public Result compare(String what, float[] actual, float[] ref) {
        double[] r = new double[ref.length];
        for (int i = 0; i < r.length; i++) {
            r[i] = ref[i];
        }
        return compare(what, actual, r);
    }

    public Result compare(String what, float[] actual, double[] ref) {
        if (actual.length != ref.length) {
            return new Result(false, what + ": length " + actual.length + " != reference length " + ref.length,
                    Double.POSITIVE_INFINITY, Double.POSITIVE_INFINITY);
        }
        StringBuilder first = new StringBuilder();
        int bad = 0;
        int worst = -1;
        double worstShare = 0;
        double maxDiff = 0;
        for (int i = 0; i < actual.length; i++) {
            double x = actual[i];
            double y = ref[i];
            double share;
            if (!Double.isFinite(x) || !Double.isFinite(y)) {
                share = (Double.compare(x, y) == 0) ? 0 : Double.POSITIVE_INFINITY;
            } else {
                double diff = Math.abs(x - y);
                maxDiff = Math.max(maxDiff, diff);
                share = diff / (atol + rtol * Math.abs(y));
            }
            if (share > worstShare || worst < 0) {
                worstShare = Math.max(worstShare, share);
                if (share >= worstShare) {
                    worst = i;
                }
            }
            if (share > 1) {
                if (bad < 5) {
                    first.append(String.format("  [%d] got %.8g want %.8g%n", i, x, y));
                }
                bad++;
            }
        }
        String head = String.format("%s: %d of %d elements outside |x-ref| <= %.1e + %.1e|ref|; max |diff| %.3e;"
                        + " worst [%d] used %.1f%% of its tolerance",
                what, bad, actual.length, atol, rtol, maxDiff, worst, 100 * worstShare);
        return new Result(bad == 0, bad == 0 ? head : head + "\n" + first, maxDiff, worstShare);
    }
}
