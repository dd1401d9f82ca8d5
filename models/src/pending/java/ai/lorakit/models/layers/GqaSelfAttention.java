package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;

/**
 * Causal self-attention with separate q/k/v projections, the Llama family's form (Llama, Mistral, Qwen2):
 * <pre>
 * q = x Wq^T (+ bq)                 [B,T,H*D]
 * k = x Wk^T (+ bk), v = x Wv^T (+ bv)   [B,T,Hkv*D]   (MHA: Hkv = H; GQA: H % Hkv == 0; MQA: Hkv = 1)
 * q, k = rope(q), rope(k)           (optional; HF's rotate_half layout, cos/sin [T,D/2] from inverse frequencies)
 * y = softmax(q k^T / sqrt(D) + causal mask) v     [B,T,H*D]  (query head h reads kv head h / (H/Hkv))
 * out = y Wo^T                      [B,T,C]
 * </pre>
 * Biases are the projections' own (Qwen2 has them on q/k/v). Cache: the input, q and k after RoPE, v, att
 * [B,H,T,T], y and the cos/sin tables of this T. Backward scratch is shared.
 * TODO(issue 10): per-head q/k RMSNorm (Qwen3) needs a [B*T*H, D] view of q and k, which Tensor does not have yet.
 */
public final class GqaSelfAttention implements Sublayer {

    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final int nHead;
    private final int nKvHead;
    private final int headDim;
    /** RoPE's inverse frequencies [D/2] (theta^(-2i/D), after any rope_scaling), or null for no RoPE. */
    private final float[] invFreq;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor q;
        final Tensor k;
        final Tensor v;
        final Tensor att;
        final Tensor y;
        final Tensor cos;
        final Tensor sin;

        Cache(Buffers buf, int nHead, int nKvHead, int d, float[] invFreq) {
            q = buf.f32(buf.b, buf.t, nHead * d);
            k = buf.f32(buf.b, buf.t, nKvHead * d);
            v = buf.f32(buf.b, buf.t, nKvHead * d);
            att = buf.f32(buf.b, nHead, buf.t, buf.t);
            y = buf.f32(buf.b, buf.t, nHead * d);
            if (invFreq == null) {
                cos = null;
                sin = null;
                return;
            }
            int half = d / 2;
            float[] c = new float[buf.t * half];
            float[] s = new float[buf.t * half];
            for (int t = 0; t < buf.t; t++) {
                for (int i = 0; i < half; i++) {
                    double angle = (double) t * invFreq[i];     // position t, frequency i
                    c[t * half + i] = (float) Math.cos(angle);
                    s[t * half + i] = (float) Math.sin(angle);
                }
            }
            Backend be = buf.backend();
            cos = buf.f32(buf.t, half);
            sin = buf.f32(buf.t, half);
            try (Tensor hc = be.upload(c, buf.t, half); Tensor hs = be.upload(s, buf.t, half)) {
                be.copy(hc, cos);
                be.copy(hs, sin);
            }
        }
    }

    /**
     * @param q       C -> H*D
     * @param k       C -> Hkv*D
     * @param v       C -> Hkv*D
     * @param o       H*D -> C
     * @param invFreq RoPE's inverse frequencies [D/2], or null
     */
    public GqaSelfAttention(Linear q, Linear k, Linear v, Linear o, int nHead, int nKvHead, float[] invFreq) {
        if (nHead < 1 || nKvHead < 1 || nHead % nKvHead != 0 || q.out() % nHead != 0) {
            throw new IllegalArgumentException("attention heads: num_attention_heads=" + nHead
                    + " must be a multiple of num_key_value_heads=" + nKvHead + " and divide q's width " + q.out());
        }
        int d = q.out() / nHead;
        if (k.out() != nKvHead * d || v.out() != nKvHead * d || o.in() != nHead * d || o.out() != q.in()
                || k.in() != q.in() || v.in() != q.in()) {
            throw new IllegalArgumentException("attention projections disagree with H=" + nHead + ", Hkv=" + nKvHead
                    + ", D=" + d + ": " + q + ", " + k + ", " + v + ", " + o);
        }
        if (invFreq != null && (d % 2 != 0 || invFreq.length != d / 2)) {
            throw new IllegalArgumentException("RoPE needs an even head_dim and D/2 inverse frequencies, got D=" + d
                    + " and " + invFreq.length);
        }
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.nHead = nHead;
        this.nKvHead = nKvHead;
        this.headDim = d;
        this.invFreq = invFreq == null ? null : invFreq.clone();
        this.be = q.weight().value().backend();
    }

    @Override
    public void forward(Buffers buf, Tensor x, Tensor out) {
        Cache c = buf.cache(this, b -> new Cache(b, nHead, nKvHead, headDim, invFreq));
        c.x = x;
        q.forward(x, c.q);                                  // [B,T,C] -> [B,T,H*D]
        k.forward(x, c.k);                                  // [B,T,C] -> [B,T,Hkv*D]
        v.forward(x, c.v);
        if (c.cos != null) {
            be.ropeForward(c.q, nHead, c.cos, c.sin, c.q);  // in place
            be.ropeForward(c.k, nKvHead, c.cos, c.sin, c.k);
        }
        be.gqaAttentionForward(c.q, c.k, c.v, nHead, nKvHead, c.y, c.att);
        o.forward(c.y, out);                                // [B,T,H*D] -> [B,T,C]
    }

    @Override
    public void backward(Buffers buf, Tensor dout, Tensor dx) {
        Cache c = buf.cacheOf(this);
        int qw = nHead * headDim;
        int kw = nKvHead * headDim;
        Tensor dy = buf.shared("gqa.dy." + qw, buf.b, buf.t, qw);
        Tensor dq = buf.shared("gqa.dq." + qw, buf.b, buf.t, qw);
        Tensor dk = buf.shared("gqa.dk." + kw, buf.b, buf.t, kw);
        Tensor dv = buf.shared("gqa.dv." + kw, buf.b, buf.t, kw);
        Tensor dxPart = buf.shared("gqa.dxpart." + q.in(), buf.b, buf.t, q.in());
        o.backward(c.y, dout, dy);
        be.gqaAttentionBackward(dy, c.q, c.k, c.v, c.att, nHead, nKvHead, dq, dk, dv);
        if (c.cos != null) {                                // d(pre-RoPE) = rope^T(d(post-RoPE))
            Tensor dqPre = buf.shared("gqa.dqpre." + qw, buf.b, buf.t, qw);
            Tensor dkPre = buf.shared("gqa.dkpre." + kw, buf.b, buf.t, kw);
            be.ropeBackward(dq, nHead, c.cos, c.sin, dqPre);
            be.ropeBackward(dk, nKvHead, c.cos, c.sin, dkPre);
            dq = dqPre;
            dk = dkPre;
        }
        q.backward(c.x, dq, dx);                            // x feeds q, k and v: their dx add up
        k.backward(c.x, dk, dxPart);
        be.axpby(1f, dxPart, 1f, dx);
        v.backward(c.x, dv, dxPart);
        be.axpby(1f, dxPart, 1f, dx);
    }
}
