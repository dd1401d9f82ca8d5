package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * VeRA's frozen random pair shared by every adapted layer of a model: A [r, in_max], B [out_max, r]
 * (VARIANTS.md section 4). Layer l uses A_l = A[:, :in_l] and B_l = B[:out_l, :].
 *
 * <p>SKELETON: filled in by the adapters work.
 */
public record VeraProjections(Tensor a, Tensor b) implements AutoCloseable {

    /** Kaiming-uniform (gain sqrt 2) A then B from the config's projection_prng_key. */
    public static VeraProjections create(Backend backend, VeraConfig config, int inMax, int outMax) {
        throw new UnsupportedOperationException("skeleton");
    }

    @Override
    public void close() {
        a.close();
        b.close();
    }
}
