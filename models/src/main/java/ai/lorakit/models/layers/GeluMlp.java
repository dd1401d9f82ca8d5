package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * The GPT-2 MLP: out = gelu(x Wfc + b) Wproj + b, F wide (GELU's tanh approximation, the Backend's geluForward).
 * x, out [B,T,C]. Cache: the input, h = x Wfc + b and gelu(h) [B,T,F]. Backward scratch [B,T,F] x 2 is shared.
 */
public final class GeluMlp implements Sublayer {

    private final Linear fc;
    private final Linear proj;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor h;
        final Tensor hGelu;

        Cache(Buffers buf, int f) {
            h = buf.act(buf.b, buf.t, f);
            hGelu = buf.act(buf.b, buf.t, f);
        }
    }

    /** fc: C -> F, proj: F -> C. */
    public GeluMlp(Linear fc, Linear proj) {
        if (proj.in() != fc.out() || proj.out() != fc.in()) {
            throw new IllegalArgumentException("MLP needs fc C -> F and proj F -> C, got " + fc + ", " + proj);
        }
        this.fc = fc;
        this.proj = proj;
        this.be = fc.weight().value().backend();
    }

    @Override
    public void forward(Buffers buf, Tensor x, Tensor out) {
        Cache k = buf.cache(this, b -> new Cache(b, fc.out()));
        k.x = x;
        fc.forward(x, k.h);                 // [B,T,C] -> [B,T,F]
        be.geluForward(k.h, k.hGelu);
        proj.forward(k.hGelu, out);         // [B,T,F] -> [B,T,C]
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache k = buf.cacheOf(this);
        int f = fc.out();
        Tensor dAct = buf.shared("mlp.dact." + f, buf.b, buf.t, f);
        Tensor dPre = buf.shared("mlp.dpre." + f, buf.b, buf.t, f);
        proj.backward(k.hGelu, dout, dAct);
        be.geluBackward(k.h, dAct, dPre);
        fc.backward(k.x, dPre, dx);
    }
}
