package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;

/**
 * VeRA's frozen random pair shared by every adapted layer of a model: A [r, in_max], B [out_max, r]
 * (VARIANTS.md section 4). Layer l uses A_l = A[:, :in_l] and B_l = B[:out_l, :]; every layer holds the same
 * two Tensor objects (nothing is copied per layer). The model owns them: closing an {@link AdaptedLinear} does
 * not close them, {@link #close()} does.
 *
 * <p>Random stream: lorakit's own, not torch's. {@link #create} draws A first (r * in_max values, row-major),
 * then B (out_max * r values), each uniform in [-sqrt(6/fan_in), sqrt(6/fan_in)) (Kaiming-uniform with gain
 * sqrt 2; fan_in = in_max for A, r for B, as PEFT) from SplitMix64 seeded with projection_prng_key (the stream of
 * {@code new java.util.SplittableRandom(key)}). PEFT uses torch's CPU mt19937, so the same key gives different
 * values there: adapter files must carry vera_A / vera_B (save_projection = true), and loading constructs this
 * record from the file's tensors.
 *
 * @param a A [r, in_max]
 * @param b B [out_max, r]
 */
public record VeraProjections(Tensor a, Tensor b) implements AutoCloseable {

    public VeraProjections {
        if (a == null || b == null) {
            throw new IllegalArgumentException("VeRA projections need both A and B, got A=" + a + ", B=" + b);
        }
        if (a.rank() != 2 || b.rank() != 2 || b.cols() != a.rows()) {
            throw new ShapeException("VeRA projections must be A [r,in_max] and B [out_max,r] with the same r, got A "
                    + a + " and B " + b);
        }
        if (a.backend() != b.backend()) {
            throw new IllegalArgumentException("VeRA projections A and B live on different backends: " + a + ", " + b);
        }
    }

    /** Kaiming-uniform (gain sqrt 2) A then B from the config's projection_prng_key (lorakit's stream, above). */
    public static VeraProjections create(Backend backend, VeraConfig config, int inMax, int outMax) {
        AdapterConfig.require(inMax > 0, "in_max", inMax, "must be > 0");
        AdapterConfig.require(outMax > 0, "out_max", outMax, "must be > 0");
        int r = config.r();
        SplitMix64 rng = new SplitMix64(config.projectionPrngKey());
        float[] av = rng.uniformArray(r * inMax, Math.sqrt(6.0 / inMax));
        float[] bv = rng.uniformArray(outMax * r, Math.sqrt(6.0 / r));
        Tensor a = backend.upload(av, DType.F32, r, inMax).named("vera_A");
        try {
            Tensor b = backend.upload(bv, DType.F32, outMax, r).named("vera_B");
            return new VeraProjections(a, b);
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
    }

    /** The shared rank r. */
    public int r() {
        return a.rows();
    }

    /** Largest input size a layer may have. */
    public int inMax() {
        return a.cols();
    }

    /** Largest output size a layer may have. */
    public int outMax() {
        return b.rows();
    }

    @Override
    public void close() {
        a.close();
        b.close();
    }
}
