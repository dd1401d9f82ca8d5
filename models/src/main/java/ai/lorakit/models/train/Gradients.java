package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * The global gradient norm over the trainable parameters, kept on the device; clipping by it (torch's
 * clip_grad_norm_ semantics, {@link DeviceSums#clipCoefficient}) is done by the optimizer's kernel
 * ({@link ai.lorakit.adapters.optim.Optimizer#stepClipped}).
 */
public final class Gradients {

    private Gradients() {
    }

    /** The trainable parameters that hold a gradient. */
    public static List<Parameter> withGrad(List<Parameter> params) {
        return params.stream().filter(p -> p.trainable() && p.grad() != null).toList();
    }

    /**
     * Slot {@code at} of stats = ‖g‖₂² over every trainable gradient, on the device ({@link
     * ai.lorakit.gpu.Backend#sumSquaresTo}: no host transfer); {@link ai.lorakit.adapters.optim.Optimizer#stepClipped}
     * clips by it.
     */
    public static void squaredNormTo(List<Parameter> params, Tensor stats, int at) {
        List<Tensor> grads = withGrad(params).stream().map(Parameter::grad).toList();
        stats.backend().sumSquaresTo(grads, stats, at);
    }
}
