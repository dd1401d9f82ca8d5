package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * A pre-norm transformer block, the composition GPT-2 and the Llama family share:
 * <pre>
 * mid = x + attn(norm1(x))          [B,T,C]
 * out = mid + mlp(norm2(mid))       [B,T,C]
 * </pre>
 * A family picks the norms (LayerNorm, RMSNorm) and branches (attention options, GELU or SwiGLU MLP). Cache: mid
 * and out. A branch's output before its residual add is not needed by the backward: one shared [B,T,C] buffer.
 */
public final class PreNormBlock {

    private final Norm norm1;
    private final Sublayer attn;
    private final Norm norm2;
    private final Sublayer mlp;
    private final int c;
    private final Backend be;

    private static final class Cache {
        final Tensor mid;
        final Tensor out;

        Cache(Buffers buf, int c) {
            mid = buf.act(buf.b, buf.t, c);
            out = buf.act(buf.b, buf.t, c);
        }
    }

    /** c = C, the residual width. */
    public PreNormBlock(Norm norm1, Sublayer attn, Norm norm2, Sublayer mlp, int c, Backend be) {
        this.norm1 = norm1;
        this.attn = attn;
        this.norm2 = norm2;
        this.mlp = mlp;
        this.c = c;
        this.be = be;
    }

    /** The block's output [B,T,C] (cached) for x [B,T,C] (kept unchanged until the backward). */
    public Tensor forward(Buffers buf, Tensor x) {
        Cache k = buf.cache(this, b -> new Cache(b, c));
        Tensor branch = buf.shared("block.branch", buf.b, buf.t, c);
        attn.forward(buf, norm1.forward(buf, x), branch);
        be.add(x, branch, k.mid);
        mlp.forward(buf, norm2.forward(buf, k.mid), branch);
        be.add(k.mid, branch, k.out);
        return k.out;
    }

    /** dres [B,T,C]: dL/d out on entry, dL/d x on return (residual gradients add in place). */
    public void backward(Buffers buf, Tensor dres) {
        Tensor d1 = buf.shared("block.d1", buf.b, buf.t, c);
        Tensor d2 = buf.shared("block.d2", buf.b, buf.t, c);
        mlp.backward(buf, dres, d1);
        norm2.backward(buf, d1, d2);
        be.axpby(1f, d2, 1f, dres);             // dL/d mid
        attn.backward(buf, dres, d1);
        norm1.backward(buf, d1, d2);
        be.axpby(1f, d2, 1f, dres);             // dL/d x
    }
}
