package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * AdaLoRA's SVD-form parametrisation (Zhang et al., ICLR 2023; VARIANTS.md section 6), as PEFT:
 * y = x op(W) + b + (x_d (A∘E)^T) B^T · scaling with Q = A [r,in], Λ = E [r,1] (broadcast over A's columns),
 * P = B [out,r] and scaling = alpha / (init_r + 1e-5) (PEFT keeps ranknum = init_r, also after pruning).
 * Init: E = 0, A, B ~ N(0, 0.02^2), so ΔW = 0 at start.
 *
 * <p>Backward with u = x_d (A∘E)^T, g = dL/dy and dAE = scaling (g B)^T x_d [r,in]: dB = scaling g^T u,
 * dA = dAE ∘ E, dE_k = Σ_i dAE_ki A_ki, dx = g op(W)^T + dropout_bwd(scaling (g B)(A∘E)).
 * Merge: ΔW = transpose(B (A∘E) · scaling, fifo). The rank allocator (which zeroes entries of E) is a schedule
 * and lives elsewhere.
 *
 * <p>Staged path (bf16 input, no dropout): {@link MarginStage} on A∘E, B and scaling, restaged when A, E or B
 * changed (the optimizer, the rank allocator's masking).
 *
 * <p>Rank: init_r, or the number of kept triplets when the config's rank_pattern has an entry for this layer's
 * lora_E (a pruned adapter being loaded, PEFT resizes such layers).
 */
final class AdaLoraVariant implements Variant {
    /** A = Q [r,in]. */
    final Parameter a;
    /** B = P [out,r]. */
    final Parameter b;
    /** E = Λ [r,1]. */
    final Parameter e;
    private final float scaling;
    private final int r;
    private final List<Parameter> params;
    /** The staged path's buffers (made at the first bf16 forward), staged from A∘E, B and scaling. */
    private MarginStage stage;

    private AdaLoraVariant(Parameter a, Parameter b, Parameter e, float scaling, int r) {
        this.a = a;
        this.b = b;
        this.e = e;
        this.scaling = scaling;
        this.r = r;
        this.params = List.of(a, b, e);
    }

    /** Init hook: E = 0, then A ~ N(0, 0.02^2), then B ~ N(0, 0.02^2) from {@link SplitMix64}(seed). */
    static AdaLoraVariant create(BaseLinear base, AdaLoraConfig c, long seed) {
        int r = rankOf(base.name(), c);
        int in = base.in();
        int out = base.out();
        SplitMix64 rng = new SplitMix64(seed);
        float[] av = rng.gaussianArray(r * in, 0.02);
        float[] bv = rng.gaussianArray(out * r, 0.02);
        Backend be = base.backend();
        Parameter a = Params.create(be, base.name(), ".lora_A", Parameter.Role.LORA_A, av, r, in);
        Parameter b = null;
        try {
            b = Params.create(be, base.name(), ".lora_B", Parameter.Role.LORA_B, bv, out, r);
            Parameter e = Params.create(be, base.name(), ".lora_E", Parameter.Role.LORA_E, new float[r], r, 1);
            return new AdaLoraVariant(a, b, e, c.scaling(), r);
        } catch (RuntimeException ex) {
            a.value().close();
            if (b != null) {
                b.value().close();
            }
            throw ex;
        }
    }

    /** init_r, or the kept-triplet count of rank_pattern[name + ".lora_E"]. */
    static int rankOf(String name, AdaLoraConfig c) {
        if (c.rankPattern() != null) {
            boolean[] kept = c.rankPattern().get(name + ".lora_E");
            if (kept != null) {
                int n = 0;
                for (boolean k : kept) {
                    n += k ? 1 : 0;
                }
                return n;
            }
        }
        return c.initR();
    }

    @Override
    public List<Parameter> parameters() {
        return params;
    }

    @Override
    public int rank() {
        return r;
    }

    @Override
    public float scaling() {
        return scaling;
    }

    @Override
    public boolean needsInput() {
        return a.trainable() || e.trainable();
    }

    @Override
    public void forward(BaseLinear base, Tensor x, Tensor xd, Tensor y, ForwardCache cache) {
        Backend be = base.backend();
        Tensor ev = base.scratch().get("ada.e", r);
        be.copy(e.value(), ev);                          // E [r,1] as a vector [r]
        Tensor ae = base.scratch().get("ada.ae", r, base.in());
        be.mulColVector(a.value(), ev, ae);              // A ∘ E: row k of A times E_k
        if (MarginStage.applies(x, xd)) {
            if (stage == null) {
                stage = new MarginStage(base, r, true);
            }
            stage.forward(base, x, ae, b.value(), scaling, y, cache, a.version(), e.version(), b.version());
        } else {
            Tensor u = base.scratch().get("u", x.rows(), r);
            LoraVariant.lowRankForward(base, x, xd, ae, b.value(), scaling, u, y);
            if (cache != null) {
                cache.u = u;
            }
        }
        if (cache != null) {
            cache.e = ev;
            cache.ae = ae;
        }
    }

    @Override
    public void backward(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx, Tensor dxd) {
        Backend be = base.backend();
        boolean staged = cache.stage != null && dx == dxd;
        Tensor dA = Params.gradOrNull(a);
        Tensor dE = Params.gradOrNull(e);
        // dAE = scaling (g B)^T x_d, formed by the low-rank backward (beta 1 into zeros)
        Tensor dAE = dA == null && dE == null ? null : base.scratch().zeroed("ada.dAE", r, base.in());
        if (staged) {
            stage.backward(base, g, cache, b.value(), scaling, dx, dAE, Params.gradOrNull(b));
        } else {
            base.inputGrad(g, dx, 0f);
            LoraVariant.lowRankBackward(base, g, cache, cache.ae, b.value(), scaling, Params.gradOrNull(b), dAE, dxd);
        }
        if (dAE == null) {
            return;
        }
        if (dA != null) {
            Tensor t = base.scratch().get("ada.rIn", r, base.in());
            be.mulColVector(dAE, cache.e, t);            // dA = dAE ∘ E
            be.axpby(1f, t, 1f, dA);
        }
        if (dE != null) {
            Tensor t = base.scratch().get("ada.r", r);
            be.rowDot(dAE, a.value(), t);                // dE_k = Σ_i dAE_ki A_ki
            be.axpby(1f, t, 1f, dE);                     // [r] into [r,1]: same numel
        }
    }

    /** ΔW = transpose(B (A∘E) · scaling, fifo). */
    @Override
    public Tensor delta(BaseLinear base) {
        Backend be = base.backend();
        try (Tensor ev = be.zeros(DType.F32, r); Tensor ae = be.zeros(DType.F32, r, base.in())) {
            be.copy(e.value(), ev);
            be.mulColVector(a.value(), ev, ae);
            return LoraVariant.lowRankDelta(base, ae, b.value(), scaling);
        }
    }

    @Override
    public boolean stagesMargins() {
        return true;
    }

    @Override
    public void weightChanged() {
        MarginStage.weightChanged(stage);
    }

    @Override
    public void close() {
        Params.closeAll(params);
    }
}
