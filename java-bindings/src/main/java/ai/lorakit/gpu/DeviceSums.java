package ai.lorakit.gpu;

/**
 * Float-float pairs that keep a training step's scalars on the device ({@link Backend#sumTo},
 * {@link Backend#sumSquaresTo}): slot {@code at} of an F32 tensor is the pair {@code (hi, lo)} at elements
 * {@code 2·at, 2·at+1}, and {@code hi + lo} in double is the sum to about 2^-44 relative (the device reductions'
 * accuracy; the CPU stores its double sum split in two floats). The host reads the whole tensor once after the step.
 * Also the one definition of the gradient clipping factor (torch.nn.utils.clip_grad_norm_).
 */
public final class DeviceSums {

    private DeviceSums() {
    }

    /** Slot {@code at} of a downloaded stats tensor, in double. */
    public static double at(float[] stats, int at) {
        return (double) stats[2 * at] + stats[2 * at + 1];
    }

    /** Writes s as the pair (hi, lo) = (float(s), float(s − hi)) into slot {@code at} of {@code out}. */
    public static void put(float[] out, int at, double s) {
        float hi = (float) s;
        out[2 * at] = hi;
        out[2 * at + 1] = Float.isFinite(hi) ? (float) (s - hi) : 0f;
    }

    /**
     * min(1, maxNorm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_); 1 when {@code maxNorm} <= 0 (clipping off).
     */
    public static double clipCoefficient(double norm, double maxNorm) {
        if (maxNorm <= 0) {
            return 1.0;
        }
        return Math.min(1.0, maxNorm / (norm + 1e-6));
    }

    /** Checks that slot {@code at} fits an F32 stats tensor. */
    public static void checkSlot(String op, Tensor out, int at) {
        if (out == null) {
            throw new ShapeException(op + ": the stats tensor is null");
        }
        if (out.dtype() != DType.F32 || at < 0 || 2L * at + 2 > out.numel()) {
            throw new ShapeException(op + ": slot " + at + " needs an F32 stats tensor of at least " + (2L * at + 2)
                    + " elements, got " + out);
        }
    }
}
