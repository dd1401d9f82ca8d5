package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * RMSNorm (Zhang and Sennrich 2019; Llama's LlamaRMSNorm) over C: out = x * rstd * gamma,
 * rstd = 1/sqrt(mean(x^2) + eps). Cache: the input, out [B,T,C] and rstd [N]. For a frozen gamma the op's dgamma
 * goes to a shared sink that is never read.
 */
public final class RmsNorm implements Norm {

    private final Parameter gamma;
    private final float eps;
    private final int c;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor out;
        final Tensor rstd;

        Cache(Buffers buf, int c) {
            out = buf.act(buf.b, buf.t, c);
            rstd = buf.f32(buf.n());
        }
    }

    /** gamma [C]. */
    public RmsNorm(Parameter gamma, float eps) {
        this.gamma = gamma;
        this.eps = eps;
        this.c = gamma.value().dim(0);
        this.be = gamma.value().backend();
    }

    @Override
    public Tensor forward(Buffers buf, Tensor x) {
        Cache k = buf.cache(this, b -> new Cache(b, c));
        k.x = x;
        be.rmsNormForward(x, gamma.value(), eps, k.out, k.rstd);
        return k.out;
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache k = buf.cacheOf(this);
        be.rmsNormBackward(dout, k.x, gamma.value(), k.rstd, dx,
                gamma.trainable() ? gamma.gradForAccumulation() : buf.sharedF32("norm.sink.gamma", c));
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(gamma);
    }

    @Override
    public String toString() {
        return "RmsNorm(" + gamma.name() + ")";
    }
}
