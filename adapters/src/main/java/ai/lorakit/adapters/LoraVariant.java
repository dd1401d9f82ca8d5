package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * LoRA (VARIANTS.md section 1): y = x op(W) + b + s (x_d A^T) B^T, A [r,in], B [out,r], s = alpha/r (or
 * alpha/sqrt(r), rsLoRA). Backward with u = x_d A^T and g = dL/dy: dB = s g^T u, dA = s (g B)^T x_d,
 * dx = g op(W)^T + s dropout_bwd((g B) A). The fifo flag only affects merge (ΔW = transpose(s B A, fifo)).
 *
 * <p>Staged path (bf16 input x, no dropout: the bf16 precision policy's training step): {@link MarginStage}, the
 * K-concat of base GEMM and low-rank update on layer-owned margin buffers, restaged when the optimizer (or a load)
 * has changed A or B ({@link Parameter#version}) or W changed ({@link #weightChanged}).
 *
 * <p>The static low-rank helpers are reused by DoRA (with g∘k) and AdaLoRA (with A∘E in place of A).
 */
final class LoraVariant implements Variant {
    /** A [r,in]. */
    final Parameter a;
    /** B [out,r]. */
    final Parameter b;
    final float s;
    final int r;
    private final List<Parameter> params;
    /** False for A, B shared with other layers (LoRA-drop): their owner closes them, not this variant. */
    private final boolean owns;
    /** The staged path's buffers (made at the first bf16 forward). */
    private MarginStage stage;

    private LoraVariant(Parameter a, Parameter b, float s, int r, boolean owns) {
        this.a = a;
        this.b = b;
        this.s = s;
        this.r = r;
        this.params = List.of(a, b);
        this.owns = owns;
    }

    /** LoRA-drop's tie: a variant reading A [r,in], B [out,r] owned by the caller (not closed by {@link #close}). */
    static LoraVariant shared(Parameter a, Parameter b, float s) {
        return new LoraVariant(a, b, s, a.value().dim(0), false);
    }

    /**
     * Init hook (PEFT init_lora_weights): KAIMING: A ~ U(±1/sqrt(in)) (kaiming_uniform with a = sqrt 5), B = 0;
     * GAUSSIAN: A ~ N(0, (1/r)^2), B = 0; NONE: A ~ U(±1/sqrt(in)), B ~ U(±1/sqrt(r)) (torch's Linear default,
     * non-identity). A is drawn first, then B, from {@link SplitMix64} seeded with {@code seed}.
     */
    static LoraVariant create(BaseLinear base, LoraConfig c, long seed) {
        int r = c.rankFor(base.name());
        float s = c.scalingFor(base.name());
        int in = base.in();
        int out = base.out();
        SplitMix64 rng = new SplitMix64(seed);
        float[] av = switch (c.init()) {
            case KAIMING, NONE -> rng.uniformArray(r * in, 1.0 / Math.sqrt(in));
            case GAUSSIAN -> rng.gaussianArray(r * in, 1.0 / r);
        };
        float[] bv = c.init() == LoraConfig.Init.NONE ? rng.uniformArray(out * r, 1.0 / Math.sqrt(r)) : new float[out * r];
        Backend be = base.backend();
        Parameter a = Params.create(be, base.name(), ".lora_A", Parameter.Role.LORA_A, av, r, in);
        Parameter b;
        try {
            b = Params.create(be, base.name(), ".lora_B", Parameter.Role.LORA_B, bv, out, r);
        } catch (RuntimeException e) {
            a.value().close();
            throw e;
        }
        return new LoraVariant(a, b, s, r, true);
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
        return s;
    }

    @Override
    public boolean needsInput() {
        return a.trainable();   // only dA needs x_d (LoRA-FA: A frozen -> x is not kept)
    }

    @Override
    public void forward(BaseLinear base, Tensor x, Tensor xd, Tensor y, ForwardCache cache) {
        if (MarginStage.applies(x, xd)) {
            forwardStaged(base, x, true, y, cache);
            return;
        }
        Tensor u = base.scratch().get("u", x.rows(), r);
        lowRankForward(base, x, xd, a.value(), b.value(), s, u, y);
        keep(cache, u);
    }

    @Override
    public void backward(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx, Tensor dxd) {
        if (cache.stage != null && dx == dxd) {
            backwardStaged(base, g, cache, dx);
            return;
        }
        base.inputGrad(g, dx, 0f);
        lowRankBackward(base, g, cache, a.value(), b.value(), s,
                Params.gradOrNull(b), Params.gradOrNull(a), dxd);
    }

    /**
     * The staged forward ({@link MarginStage}): y = x op(W) (+ bias when withBias) + s (x A^T) B^T. DoRA passes
     * false (it adds the bias after its rescale); one variant always passes the same.
     */
    void forwardStaged(BaseLinear base, Tensor x, boolean withBias, Tensor y, ForwardCache cache) {
        if (stage == null) {
            stage = new MarginStage(base, r, withBias);
        }
        stage.forward(base, x, a.value(), b.value(), s, y, cache, a.version(), b.version());
    }

    @Override
    public boolean stagesMargins() {
        return true;
    }

    /** The staged backward for an output gradient dy (DoRA: g ∘ k), bf16 [N,out]. */
    void backwardStaged(BaseLinear base, Tensor dy, ForwardCache cache, Tensor dx) {
        stage.backward(base, dy, cache, b.value(), s, dx, Params.gradOrNull(a), Params.gradOrNull(b));
    }

    @Override
    public void weightChanged() {
        MarginStage.weightChanged(stage);
    }

    /** ΔW = transpose(s B A, fifo). */
    @Override
    public Tensor delta(BaseLinear base) {
        return lowRankDelta(base, a.value(), b.value(), s);
    }

    @Override
    public void close() {
        if (owns) {
            Params.closeAll(params);
        }
    }

    // ---------------------------------------------------------------- shared low-rank pieces

    /** Stores u (scratch) in the training cache; eval mode keeps nothing. */
    static void keep(ForwardCache cache, Tensor u) {
        if (cache != null) {
            cache.u = u;
        }
    }

    /**
     * y = x op(W) + b + s (x_d A^T) B^T with u = x_d A^T [N,r] written. Without dropout (x_d == x) this is the
     * backend's fused {@link Backend#loraLinearForward}; with dropout the base and the adapter read different
     * inputs.
     */
    static void lowRankForward(BaseLinear base, Tensor x, Tensor xd, Tensor am, Tensor bm, float s, Tensor u,
                               Tensor y) {
        Backend be = base.backend();
        if (xd == x) {
            be.loraLinearForward(x, base.w(), base.fifo(), base.bias(), am, bm, s, u, y);
        } else {
            base.forward(x, y, true);
            be.loraShrink(xd, am, u);
            be.loraExpand(u, bm, s, y);
        }
    }

    /**
     * The adapter path of the backward for an effective output gradient gEff [N,out]: dB += s gEff^T u,
     * dA += s (gEff B)^T x_d, dxd += s (gEff B) A. dB / dA null = frozen (skipped).
     */
    static void lowRankBackward(BaseLinear base, Tensor gEff, ForwardCache cache, Tensor am, Tensor bm, float s,
                                Tensor dB, Tensor dA, Tensor dxd) {
        Backend be = base.backend();
        Tensor gb = base.scratch().get("gb", gEff.rows(), bm.cols());
        be.matmul(gEff, false, bm, false, gb, 1f, 0f);                   // g B: [N,out] x [out,r]
        if (dB != null) {
            be.matmul(gEff, true, cache.u, false, dB, s, 1f);            // s g^T u: [out,N] x [N,r]
        }
        if (dA != null) {
            be.matmul(gb, true, requireInput(cache, "lora_A"), false, dA, s, 1f);   // s (gB)^T x_d: [r,in]
        }
        be.matmul(gb, false, am, false, dxd, s, 1f);                     // s (gB) A: [N,r] x [r,in]
    }

    /** x_d from the cache, or an IllegalStateException when the forward did not keep it. */
    static Tensor requireInput(ForwardCache cache, String what) {
        if (cache.xd == null) {
            throw new IllegalStateException("the gradient of " + what + " needs the layer input, which the forward"
                    + " did not keep because " + what + " was frozen then; unfreeze before the forward");
        }
        return cache.xd;
    }

    /** transpose(s B A, fifo) as a new F32 tensor in W's layout; A [r,in], B [out,r]. */
    static Tensor lowRankDelta(BaseLinear base, Tensor am, Tensor bm, float s) {
        Backend be = base.backend();
        Tensor d = base.zerosLikeW();
        try {
            if (base.fifo()) {
                be.matmul(am, true, bm, true, d, s, 0f);    // (B A)^T = A^T B^T: [in,out]
            } else {
                be.matmul(bm, false, am, false, d, s, 0f);  // B A: [out,in]
            }
            return d;
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
    }
}
