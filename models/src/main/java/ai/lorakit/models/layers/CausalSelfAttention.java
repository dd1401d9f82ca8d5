package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * Causal multi-head self-attention (Vaswani et al. 2017) in its fused-qkv form (GPT-2):
 * <pre>
 * qkv = x Wqkv + b               [B,T,3C]   (q | k | v, H heads of D = C/H each)
 * y   = softmax(q k^T / sqrt(D) + causal mask) v      [B,T,C]   (att [B,H,T,T] kept for the backward)
 * out = y Wo + b                 [B,T,C]
 * </pre>
 * The projections are {@link Linear}s (adaptable). Cache: the input, qkv, att and y. Backward scratch (dy [B,T,C],
 * dqkv [B,T,3C]) is shared by all layers.
 * Separate q/k/v projections with kv-heads (GQA/MQA), RoPE and per-head q/k norm are {@link GqaSelfAttention}'s (the
 * Llama families).
 */
public final class CausalSelfAttention implements Sublayer {

    private final Linear qkv;
    private final Linear o;
    private final int nHead;
    private final int c;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor qkv;
        final Tensor att;
        final Tensor y;

        Cache(Buffers buf, int c, int nHead) {
            qkv = buf.act(buf.b, buf.t, 3 * c);
            att = buf.f32(buf.b, nHead, buf.t, buf.t);   // softmax probabilities: fp32
            y = buf.act(buf.b, buf.t, c);
        }
    }

    /** qkv: C -> 3C; o: C -> C; C % nHead == 0. */
    public CausalSelfAttention(Linear qkv, Linear o, int nHead) {
        if (qkv.out() != 3 * qkv.in() || o.in() != qkv.in() || o.out() != qkv.in() || qkv.in() % nHead != 0) {
            throw new IllegalArgumentException("attention needs qkv C -> 3C and o C -> C with C % heads == 0, got "
                    + qkv + ", " + o + ", " + nHead + " heads");
        }
        this.qkv = qkv;
        this.o = o;
        this.nHead = nHead;
        this.c = qkv.in();
        this.be = qkv.weight().value().backend();
    }

    @Override
    public void forward(Buffers buf, Tensor x, Tensor out) {
        Cache k = buf.cache(this, b -> new Cache(b, c, nHead));
        k.x = x;
        qkv.forward(x, k.qkv);                          // [B,T,C] -> [B,T,3C]
        be.attentionForward(k.qkv, nHead, k.y, k.att);
        o.forward(k.y, out);
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache k = buf.cacheOf(this);
        Tensor dy = buf.shared("attn.dy", buf.b, buf.t, c);
        Tensor dqkv = buf.shared("attn.dqkv", buf.b, buf.t, 3 * c);
        o.backward(k.y, dout, dy);
        be.attentionBackward(dy, k.qkv, k.att, nHead, dqkv);
        qkv.backward(k.x, dqkv, dx);
    }
}
