package ai.lorakit.adapters;

import ai.lorakit.gpu.Tensor;

/**
 * Test helper: runs an {@link AdaptedLinear} into a new buffer the test closes (the layer itself writes only into the
 * caller's buffer). The buffer starts at zero and has the input's dtype and leading dimensions.
 */
public final class Fresh {
    private Fresh() {
    }

    /** y [..., out] = layer(x [..., in]) in a new tensor. */
    public static Tensor forward(AdaptedLinear layer, Tensor x) {
        return run(x, layer.outFeatures(), y -> layer.forward(x, y));
    }

    /** dx [..., in] for dy [..., out] (the last training forward's) in a new tensor. */
    public static Tensor backward(AdaptedLinear layer, Tensor dy) {
        return run(dy, layer.inFeatures(), dx -> layer.backward(dy, dx));
    }

    private static Tensor run(Tensor like, int last, java.util.function.Consumer<Tensor> op) {
        if (like == null) {     // let the layer report the null input with its own message
            op.accept(null);
        }
        int[] shape = like.shape();
        shape[shape.length - 1] = last;
        Tensor out = like.backend().zeros(like.dtype(), shape);
        try {
            op.accept(out);
            return out;
        } catch (RuntimeException e) {
            out.close();
            throw e;
        }
    }
}
