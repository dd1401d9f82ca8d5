package ai.lorakit.adapters;

/**
 * lorakit's own, fully specified random stream for adapter initialisation and VeRA's shared projections
 * (VARIANTS.md section 4, "Java caveat"). It is SplitMix64 (Steele, Lea, Flood 2014), the stream of
 * {@code new java.util.SplittableRandom(seed).nextLong()}: state += 0x9E3779B97F4A7C15, output = mix64(state)
 * with Stafford's variant 13 finaliser; doubles take the top 53 bits. Written out here so the values do not
 * depend on a JDK version and can be reproduced in any language.
 *
 * <p>It is not torch's mt19937, so tensors drawn from it cannot be reproduced by PEFT from a seed: adapter files
 * must carry them (for VeRA: save_projection = true).
 */
final class SplitMix64 {
    private static final long GOLDEN = 0x9E3779B97F4A7C15L;
    private long state;

    SplitMix64(long seed) {
        this.state = seed;
    }

    /** Stafford variant 13 finaliser (the same mix as {@link ai.lorakit.gpu.Dropout}). */
    static long mix64(long z) {
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    long nextLong() {
        state += GOLDEN;
        return mix64(state);
    }

    /** Uniform in [0, 1): the top 53 bits of {@link #nextLong()}. */
    double nextDouble() {
        return (nextLong() >>> 11) * 0x1.0p-53;
    }

    /** Uniform in [-bound, bound). */
    float uniform(double bound) {
        return (float) ((2 * nextDouble() - 1) * bound);
    }

    /** N(0, std^2) by Box-Muller, one draw per pair of uniforms (the second value is discarded). */
    float gaussian(double std) {
        double u1 = 1.0 - nextDouble();   // (0, 1]: log is finite
        double u2 = nextDouble();
        return (float) (std * Math.sqrt(-2 * Math.log(u1)) * Math.cos(2 * Math.PI * u2));
    }

    /** count values uniform in [-bound, bound). */
    float[] uniformArray(int count, double bound) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = uniform(bound);
        }
        return v;
    }

    /** count values N(0, std^2). */
    float[] gaussianArray(int count, double std) {
        float[] v = new float[count];
        for (int i = 0; i < count; i++) {
            v[i] = gaussian(std);
        }
        return v;
    }
}
