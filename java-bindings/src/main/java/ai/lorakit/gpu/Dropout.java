package ai.lorakit.gpu;

/**
 * The counter-based dropout draw every backend implements bit for bit (portable kernels use the same
 * 64-bit integer steps): u(seed, i) = splitmix64(seed + i * golden) >>> 40, a 24-bit uniform integer;
 * element i is dropped when u < p * 2^24. No RNG state, so masks are reproducible across backends,
 * threads and resumed runs.
 */
public final class Dropout {
    private Dropout() {
    }

    /** 24-bit uniform integer for (seed, i). */
    public static int draw(long seed, long i) {
        long z = seed + i * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        z = z ^ (z >>> 31);
        return (int) (z >>> 40);
    }

    /** Whether element i survives dropout with probability p of being dropped. */
    public static boolean keep(long seed, long i, float p) {
        return draw(seed, i) >= (long) (p * (1 << 24));
    }

    /** The mask value of element i: 0 if dropped, else 1/(1-p). */
    public static float maskValue(long seed, long i, float p) {
        return keep(seed, i, p) ? 1f / (1f - p) : 0f;
    }
}
