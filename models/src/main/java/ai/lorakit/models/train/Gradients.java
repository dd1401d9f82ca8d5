package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.DeviceSums;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/** Global gradient norm and clipping over the trainable parameters (torch's clip_grad_norm_ semantics). */
public final class Gradients {

    private Gradients() {
    }

    /** The trainable parameters that hold a gradient. */
    public static List<Parameter> withGrad(List<Parameter> params) {
        return params.stream().filter(p -> p.trainable() && p.grad() != null).toList();
    }

    /** ‖g‖₂ over every trainable gradient (accumulated in double); NaN/Inf if any element is. */
    public static double globalNorm(List<Parameter> params) {
        double sq = 0;
        for (Parameter p : withGrad(params)) {
            Tensor g = p.grad();
            sq += g.backend().dot(g, g);
        }
        return Math.sqrt(sq);
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

    /**
     * Scales every gradient by min(1, maxNorm / (norm + 1e-6)) (torch.nn.utils.clip_grad_norm_); returns the
     * coefficient applied (1 = unchanged). {@code maxNorm} 0 disables clipping.
     */
    public static double clip(List<Parameter> params, double norm, double maxNorm) {
        if (maxNorm <= 0) {
            return 1.0;
        }
        double coef = DeviceSums.clipCoefficient(norm, maxNorm);
        if (coef >= 1.0) {
            return 1.0;
        }
        for (Parameter p : withGrad(params)) {
            Tensor g = p.grad();
            g.backend().scale(g, (float) coef, g);
        }
        return coef;
    }
}
