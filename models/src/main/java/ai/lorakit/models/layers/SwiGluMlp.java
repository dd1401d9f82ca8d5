package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * The Llama MLP (Shazeer 2020, SwiGLU): out = down(silu(gate(x)) * up(x)), F wide. x, out [B,T,C]. Cache: the
 * input, gate(x), up(x) and their product h [B,T,F]. Backward scratch (dh, dgate, dup [B,T,F], the up branch's dx
 * [B,T,C]) is shared.
 */
public final class SwiGluMlp implements Sublayer {

    private final Linear gate;
    private final Linear up;
    private final Linear down;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor g;
        final Tensor u;
        final Tensor h;

        Cache(Buffers buf, int f) {
            g = buf.act(buf.b, buf.t, f);
            u = buf.act(buf.b, buf.t, f);
            h = buf.act(buf.b, buf.t, f);
        }
    }

    /** gate, up: C -> F; down: F -> C. */
    public SwiGluMlp(Linear gate, Linear up, Linear down) {
        if (up.in() != gate.in() || up.out() != gate.out() || down.in() != gate.out() || down.out() != gate.in()) {
            throw new IllegalArgumentException("SwiGLU MLP needs gate, up C -> F and down F -> C, got " + gate + ", "
                    + up + ", " + down);
        }
        this.gate = gate;
        this.up = up;
        this.down = down;
        this.be = gate.weight().value().backend();
    }

    @Override
    public void forward(Buffers buf, Tensor x, Tensor out) {
        Cache k = buf.cache(this, b -> new Cache(b, gate.out()));
        k.x = x;
        gate.forward(x, k.g);               // [B,T,C] -> [B,T,F]
        up.forward(x, k.u);
        be.swigluForward(k.g, k.u, k.h);    // silu(g) * u
        down.forward(k.h, out);             // [B,T,F] -> [B,T,C]
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache k = buf.cacheOf(this);
        int f = gate.out();
        int c = gate.in();
        Tensor dh = buf.shared("swiglu.dh." + f, buf.b, buf.t, f);
        Tensor dg = buf.shared("swiglu.dgate." + f, buf.b, buf.t, f);
        Tensor du = buf.shared("swiglu.dup." + f, buf.b, buf.t, f);
        Tensor dxUp = buf.shared("swiglu.dxup." + c, buf.b, buf.t, c);
        down.backward(k.h, dout, dh);
        be.swigluBackward(dh, k.g, k.u, dg, du);
        gate.backward(k.x, dg, dx);
        up.backward(k.x, du, dxUp);
        be.axpby(1f, dxUp, 1f, dx);         // x feeds both branches
    }
}
