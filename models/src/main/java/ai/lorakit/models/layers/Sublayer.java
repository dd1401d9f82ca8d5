package ai.lorakit.models.layers;

import ai.lorakit.gpu.Tensor;

/** The residual branch of a block that maps [B,T,C] to [B,T,C] (attention, MLP), with its cache in {@link Buffers}. */
public interface Sublayer {

    /** out [B,T,C] (written) = the branch applied to x [B,T,C]; x must stay unchanged until the backward. */
    void forward(Buffers buf, Tensor x, Tensor out);

    /** dx [B,T,C] (written) from dout [B,T,C], after this buffer set's forward; parameter gradients accumulate. */
    void backward(Buffers buf, Tensor dout, Tensor dx);
}
