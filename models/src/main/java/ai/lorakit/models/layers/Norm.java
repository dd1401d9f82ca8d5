package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/** A normalisation over the last dimension C (LayerNorm, RMSNorm), with its cache in {@link Buffers}. */
public interface Norm {

    /** Normalises x [B,T,C]; returns the output [B,T,C], held in this layer's cache. x is kept for the backward. */
    Tensor forward(Buffers buf, Tensor x);

    /** dx [B,T,C] (written) from dout [B,T,C]; its parameters' gradients accumulate when trainable. */
    void backward(Buffers buf, Tensor dout, Tensor dx);

    /** Its parameters (gamma, and beta where it has one). */
    List<Parameter> parameters();
}
