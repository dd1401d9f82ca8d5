package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.RopeTables;
import ai.lorakit.gpu.Tensor;

/**
 * Causal self-attention with separate q/k/v projections, the Llama family's form (Llama, Mistral, Qwen2, Qwen3):
 * <pre>
 * q = x Wq^T (+ bq)                      [B,T,H*D]
 * k = x Wk^T (+ bk), v = x Wv^T (+ bv)   [B,T,Hkv*D]   (MHA: Hkv = H; GQA: H % Hkv == 0; MQA: Hkv = 1)
 * q, k = rmsNorm_D(q), rmsNorm_D(k)      (optional, Qwen3: per head over D, gammas [D], on a [B*T*H, D] view)
 * q, k = rope(q), rope(k)                (optional; HF's rotate_half layout, {@link RopeTables})
 * y = softmax(q k^T / sqrt(D) + causal mask) v     [B,T,H*D]  (query head h reads kv head h / (H/Hkv))
 * out = y Wo^T                           [B,T,C]
 * </pre>
 * Biases are the projections' own (Qwen2 has them on q/k/v). Cache: the input, q and k before the norm (with
 * q/k norm), q and k as attention reads them, v, att [B,H,T,T], y, the norms' rstd and the cos/sin tables of this
 * T. Backward scratch is shared.
 */
public final class GqaSelfAttention implements Sublayer {

    /** RoPE's parameters: HF's rope_theta and rope_scaling of type llama3 (null: none). */
    public record Rope(double theta, RopeTables.Llama3Scaling scaling) {
    }

    /** Qwen3's per-head RMSNorm of q and k: gammas [D] and eps. */
    public record QkNorm(Parameter q, Parameter k, float eps) {
    }

    private final Linear q;
    private final Linear k;
    private final Linear v;
    private final Linear o;
    private final int nHead;
    private final int nKvHead;
    private final int headDim;
    private final Rope rope;
    private final QkNorm qkNorm;
    private final Backend be;

    private static final class Cache {
        Tensor x;
        final Tensor qRaw;     // q before the q norm (== q without one)
        final Tensor kRaw;
        final Tensor q;        // q as attention reads it (after norm and RoPE)
        final Tensor k;
        final Tensor v;
        final Tensor att;
        final Tensor y;
        final Tensor qRstd;    // [B*T*H]
        final Tensor kRstd;    // [B*T*Hkv]
        final Tensor cos;
        final Tensor sin;

        Cache(Buffers buf, int nHead, int nKvHead, int d, Rope rope, boolean qkNorm) {
            q = buf.act(buf.b, buf.t, nHead * d);
            k = buf.act(buf.b, buf.t, nKvHead * d);
            qRaw = qkNorm ? buf.act(buf.b, buf.t, nHead * d) : q;
            kRaw = qkNorm ? buf.act(buf.b, buf.t, nKvHead * d) : k;
            qRstd = qkNorm ? buf.f32(buf.n() * nHead) : null;
            kRstd = qkNorm ? buf.f32(buf.n() * nKvHead) : null;
            v = buf.act(buf.b, buf.t, nKvHead * d);
            att = buf.f32(buf.b, nHead, buf.t, buf.t);
            y = buf.act(buf.b, buf.t, nHead * d);
            if (rope == null) {
                cos = null;
                sin = null;
                return;
            }
            RopeTables tab = RopeTables.forWindow(buf.t, d, rope.theta(), rope.scaling());
            Backend be = buf.backend();
            cos = buf.f32(buf.t, d / 2);
            sin = buf.f32(buf.t, d / 2);
            try (Tensor hc = be.upload(tab.cos(), buf.t, d / 2); Tensor hs = be.upload(tab.sin(), buf.t, d / 2)) {
                be.copy(hc, cos);
                be.copy(hs, sin);
            }
        }
    }

    /**
     * @param q      C -> H*D
     * @param k      C -> Hkv*D
     * @param v      C -> Hkv*D
     * @param o      H*D -> C
     * @param rope   RoPE, or null
     * @param qkNorm per-head q/k RMSNorm (gammas [D]), or null
     */
    public GqaSelfAttention(Linear q, Linear k, Linear v, Linear o, int nHead, int nKvHead, Rope rope,
                            QkNorm qkNorm) {
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
        if (rope != null && d % 2 != 0) {
            throw new IllegalArgumentException("RoPE needs an even head_dim, got D=" + d);
        }
        if (qkNorm != null && (qkNorm.q().value().numel() != d || qkNorm.k().value().numel() != d)) {
            throw new IllegalArgumentException("q/k norm gammas must be [D=" + d + "], got " + qkNorm.q().value()
                    + " and " + qkNorm.k().value());
        }
        this.q = q;
        this.k = k;
        this.v = v;
        this.o = o;
        this.nHead = nHead;
        this.nKvHead = nKvHead;
        this.headDim = d;
        this.rope = rope;
        this.qkNorm = qkNorm;
        this.be = q.weight().value().backend();
    }

    @Override
    public void forward(Buffers buf, Tensor x, Tensor out) {
        Cache c = buf.cache(this, b -> new Cache(b, nHead, nKvHead, headDim, rope, qkNorm != null));
        c.x = x;
        q.forward(x, c.qRaw);                               // [B,T,C] -> [B,T,H*D]
        k.forward(x, c.kRaw);                               // [B,T,C] -> [B,T,Hkv*D]
        v.forward(x, c.v);
        if (qkNorm != null) {                               // per head: [B*T*H, D] views
            be.rmsNormForward(heads(c.qRaw), qkNorm.q().value(), qkNorm.eps(), heads(c.q), c.qRstd);
            be.rmsNormForward(heads(c.kRaw), qkNorm.k().value(), qkNorm.eps(), heads(c.k), c.kRstd);
        }
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
        if (c.cos != null) {                                // d(pre-RoPE) = R^T d(post-RoPE), in place
            be.ropeBackward(dq, nHead, c.cos, c.sin, dq);
            be.ropeBackward(dk, nKvHead, c.cos, c.sin, dk);
        }
        if (qkNorm != null) {                               // d(pre-norm), per head
            Tensor dqRaw = buf.shared("gqa.dqraw." + qw, buf.b, buf.t, qw);
            Tensor dkRaw = buf.shared("gqa.dkraw." + kw, buf.b, buf.t, kw);
            be.rmsNormBackward(heads(dq), heads(c.qRaw), qkNorm.q().value(), c.qRstd, heads(dqRaw),
                    gammaGrad(buf, qkNorm.q()));
            be.rmsNormBackward(heads(dk), heads(c.kRaw), qkNorm.k().value(), c.kRstd, heads(dkRaw),
                    gammaGrad(buf, qkNorm.k()));
            dq = dqRaw;
            dk = dkRaw;
        }
        q.backward(c.x, dq, dx);                            // x feeds q, k and v: their dx add up
        k.backward(c.x, dk, dxPart);
        be.axpby(1f, dxPart, 1f, dx);
        v.backward(c.x, dv, dxPart);
        be.axpby(1f, dxPart, 1f, dx);
    }

    /** A [B,T,n*D] tensor as [B*T*n, D] rows, one per head. */
    private Tensor heads(Tensor t) {
        return t.view((int) (t.numel() / headDim), headDim);
    }

    /** The gamma's gradient, or a shared sink that is never read when it is frozen. */
    private Tensor gammaGrad(Buffers buf, Parameter gamma) {
        return gamma.trainable() ? gamma.gradForAccumulation() : buf.sharedF32("qknorm.sink.gamma." + headDim, headDim);
    }
}
