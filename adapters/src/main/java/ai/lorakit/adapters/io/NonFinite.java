package ai.lorakit.adapters.io;

/**
 * Finds NaN and Inf in tensor values read from a file, so a loader can refuse them with a message that names the
 * tensor, the count and the first bad element (base checkpoints and PEFT adapters alike).
 */
public final class NonFinite {

    private NonFinite() {
    }

    /** Index of the first NaN or Inf in {@code v}, or -1 when every value is finite. */
    public static int first(float[] v) {
        for (int i = 0; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                return i;
            }
        }
        return -1;
    }

    /**
     * "holds 3 non-finite values (first: element 17 = NaN)", or null when every value is finite.
     */
    public static String describe(float[] v) {
        int first = first(v);
        if (first < 0) {
            return null;
        }
        long n = 0;
        for (int i = first; i < v.length; i++) {
            if (!Float.isFinite(v[i])) {
                n++;
            }
        }
        return "holds " + n + " non-finite value" + (n == 1 ? "" : "s") + " (first: element " + first + " = "
                + v[first] + ")";
    }
}
