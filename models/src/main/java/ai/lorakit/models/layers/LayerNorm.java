package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * LayerNorm (Ba et al. 2016) over C: out = (x - mean) * rstd * gamma + beta, rstd = 1/sqrt(var + eps).
 * Cache: the input, out [B,T,C], mean and rstd [N]. The backward op always produces dgamma/dbeta: for a frozen
 * gamma or beta they go to a shared sink that is never read.
 */
public final class LayerNorm implements Norm {

    private final Parameter gamma;
    private final Parameter beta;
    private final float eps;
    private final int c;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor out;
        final Tensor mean;
        final Tensor rstd;

        Cache(Buffers buf, int c) {
            out = buf.act(buf.b, buf.t, c);
            mean = buf.f32(buf.n());   // statistics: fp32
            rstd = buf.f32(buf.n());
        }
    }

    /** gamma, beta [C]. */
    public LayerNorm(Parameter gamma, Parameter beta, float eps) {
        this.gamma = gamma;
        this.beta = beta;
        this.eps = eps;
        this.c = gamma.value().dim(0);
        this.be = gamma.value().backend();
    }

    @Override
    public Tensor forward(Buffers buf, Tensor x) {
        Cache k = buf.cache(this, b -> new Cache(b, c));
        k.x = x;
        be.layerNormForward(x, gamma.value(), beta.value(), eps, k.out, k.mean, k.rstd);
        return k.out;
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache k = buf.cacheOf(this);
        be.layerNormBackward(dout, k.x, gamma.value(), k.mean, k.rstd, dx,
                gamma.trainable() ? gamma.gradForAccumulation() : buf.sharedF32("norm.sink.gamma", c),
                beta.trainable() ? beta.gradForAccumulation() : buf.sharedF32("norm.sink.beta", c));
    }

    @Override
    public List<Parameter> parameters() {
        return List.of(gamma, beta);
    }

    @Override
    public String toString() {
        return "LayerNorm(" + gamma.name() + ")";
    }
}
