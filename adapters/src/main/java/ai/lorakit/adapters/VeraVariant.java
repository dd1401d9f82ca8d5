package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * VeRA (Kopiczko et al., ICLR 2024; VARIANTS.md section 4): y = x op(W) + b + λb ∘ ((λd ∘ (x_d A_l^T)) B_l^T),
 * A_l = A[:, :in] and B_l = B[:out, :] slices of the model's shared, frozen {@link VeraProjections}; per layer
 * only λb [out] (init 0) and λd [r] (init d_initial) train; no scaling (s = 1).
 *
 * <p>Backward with u = x_d A_l^T, v = λd ∘ u, z = v B_l^T and g = dL/dy: dλb = Σ_tokens g ∘ z,
 * dλd = Σ_tokens ((λb ∘ g) B_l) ∘ u, dx = g op(W)^T + dropout_bwd((((λb ∘ g) B_l) ∘ λd) A_l). A_l and B_l get
 * no gradient, and the backward never needs x (only u and v are kept).
 *
 * <p>The unstaged path never copies the slices: A_l is A read with row pitch in_max, B_l is the first out rows of B.
 * The staged path (bf16 input, no dropout) is LoRA's K-concat ({@link MarginStage}) with A = A_l (copied once into
 * the layer's scratch), B' = λb ∘ B_l ∘ λd^T (refolded when λb or λd changed) and s = 1; the λ gradients follow
 * exactly from B''s (see backwardStaged).
 */
final class VeraVariant implements Variant {
    /** The model's shared A [r,in_max], B [out_max,r] (not owned). */
    final VeraProjections shared;
    /** λb [out]. */
    final Parameter lambdaB;
    /** λd [r]. */
    final Parameter lambdaD;
    private final List<Parameter> params;
    /** The staged path's buffers (made at the first bf16 forward): LoRA's, on A_l and λb ∘ B_l ∘ λd^T. */
    private MarginStage stage;
    /** A_l is in the scratch; the versions of λb, λd that the folded factor holds (-1: not yet). */
    private boolean aCopied;
    private long foldedB = -1;
    private long foldedD = -1;

    private VeraVariant(VeraProjections shared, Parameter lambdaB, Parameter lambdaD) {
        this.shared = shared;
        this.lambdaB = lambdaB;
        this.lambdaD = lambdaD;
        this.params = List.of(lambdaB, lambdaD);
    }

    /** Init hook: λb = 0, λd = d_initial; checks the layer fits the shared projections. */
    static VeraVariant create(BaseLinear base, VeraConfig c, VeraProjections shared) {
        if (shared == null) {
            throw new IllegalArgumentException("layer " + base.name() + ": VeRA needs the model's shared"
                    + " VeraProjections, got null");
        }
        if (shared.r() != c.r()) {
            throw new IllegalArgumentException("layer " + base.name() + ": shared VeRA projections have r="
                    + shared.r() + " but the config has r=" + c.r());
        }
        if (base.in() > shared.inMax() || base.out() > shared.outMax()) {
            throw new IllegalArgumentException("layer " + base.name() + " [in=" + base.in() + ", out=" + base.out()
                    + "] is larger than the shared VeRA projections A [r=" + shared.r() + ", in_max="
                    + shared.inMax() + "], B [out_max=" + shared.outMax() + ", r=" + shared.r() + "]");
        }
        if (shared.a().backend() != base.backend()) {
            throw new IllegalArgumentException("layer " + base.name() + ": shared VeRA projections live on backend "
                    + shared.a().backend().name() + ", W on " + base.backend().name());
        }
        Backend be = base.backend();
        float[] d = new float[c.r()];
        java.util.Arrays.fill(d, c.dInitial());
        Parameter lb = Params.create(be, base.name(), ".vera_lambda_b", Parameter.Role.VERA_LAMBDA_B,
                new float[base.out()], base.out());
        try {
            Parameter ld = Params.create(be, base.name(), ".vera_lambda_d", Parameter.Role.VERA_LAMBDA_D, d, c.r());
            return new VeraVariant(shared, lb, ld);
        } catch (RuntimeException e) {
            lb.value().close();
            throw e;
        }
    }

    @Override
    public List<Parameter> parameters() {
        return params;
    }

    @Override
    public int rank() {
        return shared.r();
    }

    @Override
    public float scaling() {
        return 1f;
    }

    @Override
    public boolean needsInput() {
        return false;
    }

    @Override
    public void forward(BaseLinear base, Tensor x, Tensor xd, Tensor y, ForwardCache cache) {
        Backend be = base.backend();
        int r = shared.r();
        if (MarginStage.applies(x, xd)) {
            if (stage == null) {
                stage = new MarginStage(base, r, true);
            }
            stage.forward(base, x, aSlice(base), folded(base), 1f, y, cache, lambdaB.version(), lambdaD.version());
            return;
        }
        Tensor u = base.scratch().get("u", x.rows(), r);
        base.forward(x, y, true);
        Tensor v = base.scratch().get("vera.v", x.rows(), r);
        be.veraForward(xd, shared.a(), shared.b(), lambdaD.value(), lambdaB.value(), u, v, y);
        if (cache != null) {
            cache.u = u;
            cache.v = v;
        }
    }

    /** A_l = A[:, :in] [r,in] fp32, copied once into the layer's scratch (A is frozen): what the stage reads. */
    private Tensor aSlice(BaseLinear base) {
        if (!aCopied) {
            Tensor al = base.scratch().get("vera.A_l", shared.r(), base.in());
            base.backend().copyStrided(shared.a(), 0, shared.inMax(), 1, al, 0, base.in(), shared.r(), base.in());
            aCopied = true;
        }
        return base.scratch().get("vera.A_l", shared.r(), base.in());
    }

    /**
     * λb ∘ B_l ∘ λd^T [out,r] fp32 (B_l = the first out rows of the shared B): the low-rank factor with both
     * scalings folded in, so that VeRA is LoRA with A = A_l, B = this, s = 1. Recomputed when λb or λd changed.
     */
    private Tensor folded(BaseLinear base) {
        Tensor f = base.scratch().get("vera.bFolded", base.out(), shared.r());
        if (lambdaB.version() != foldedB || lambdaD.version() != foldedD) {
            Backend be = base.backend();
            be.copyStrided(shared.b(), 0, shared.r(), 1, f, 0, shared.r(), base.out(), shared.r());   // B_l
            be.mulColVector(f, lambdaB.value(), f);                                                     // λb ∘ rows
            be.mulRowVector(f, lambdaD.value(), f);                                                     // ∘ λd cols
            foldedB = lambdaB.version();
            foldedD = lambdaD.version();
        }
        return f;
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
    public void backward(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx, Tensor dxd) {
        Backend be = base.backend();
        if (cache.stage != null && dx == dxd) {
            backwardStaged(base, g, cache, dx);
            return;
        }
        int n = g.rows();
        int r = shared.r();
        int in = base.in();
        int out = base.out();
        Tensor sa = shared.a();
        Tensor sb = shared.b();
        base.inputGrad(g, dx, 0f);
        Tensor dLb = Params.gradOrNull(lambdaB);
        if (dLb != null) {
            Tensor z = base.scratch().get("vera.nOut", n, out);
            be.gemm(false, true, n, out, r, 1f, cache.v, 0, r, sb, 0, r, 0f, z, 0, out);       // z = v B_l^T
            be.mul(g, z, z);
            be.sumRows(z, 1f, dLb);                                                           // += Σ g ∘ z
        }
        Tensor gb = base.scratch().get("vera.nOut", n, out);                                  // z is done
        Tensor w = base.scratch().get("vera.w", n, r);
        be.mulRowVector(g, lambdaB.value(), gb);                                              // λb ∘ g
        be.gemm(false, false, n, r, out, 1f, gb, 0, out, sb, 0, r, 0f, w, 0, r);              // (λb∘g) B_l
        Tensor dLd = Params.gradOrNull(lambdaD);
        if (dLd != null) {
            Tensor t = base.scratch().get("vera.t", n, r);
            be.mul(w, cache.u, t);
            be.sumRows(t, 1f, dLd);                                                           // += Σ w ∘ u
        }
        be.mulRowVector(w, lambdaD.value(), w);                                               // w ∘ λd
        be.gemm(false, false, n, in, r, 1f, w, 0, r, sa, 0, sa.cols(), 1f, dxd, 0, in);     // += (w∘λd) A_l
    }

    /**
     * The staged backward: LoRA's with B' = λb ∘ B_l ∘ λd^T (dx = g op(W)^T + (g B') A_l, one GEMM), whose B'
     * gradient dB' = g^T u [out,r] gives both scalings' exactly (B' is elementwise in them): with T = dB' ∘ B_l,
     * dλb += T λd and dλd += T^T λb.
     */
    private void backwardStaged(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx) {
        Backend be = base.backend();
        int r = shared.r();
        int out = base.out();
        Tensor dLb = Params.gradOrNull(lambdaB);
        Tensor dLd = Params.gradOrNull(lambdaD);
        Tensor dFolded = dLb == null && dLd == null ? null : base.scratch().zeroed("vera.dbFolded", out, r);
        stage.backward(base, g, cache, folded(base), 1f, dx, null, dFolded);
        if (dFolded == null) {
            return;
        }
        Tensor t = base.scratch().get("vera.t", out, r);
        be.copyStrided(shared.b(), 0, r, 1, t, 0, r, out, r);                                 // B_l
        be.mul(dFolded, t, t);                                                                 // T = dB' ∘ B_l
        if (dLb != null) {
            be.gemm(false, false, out, 1, r, 1f, t, 0, r, lambdaD.value(), 0, 1, 1f, dLb, 0, 1);   // += T λd
        }
        if (dLd != null) {
            be.gemm(true, false, r, 1, out, 1f, t, 0, r, lambdaB.value(), 0, 1, 1f, dLd, 0, 1);    // += T^T λb
        }
    }

    /** ΔW = transpose((λb ∘ B_l) (λd ∘ A_l), fifo). */
    @Override
    public Tensor delta(BaseLinear base) {
        Backend be = base.backend();
        int r = shared.r();
        int in = base.in();
        int out = base.out();
        float[] eye = new float[r * r];
        for (int i = 0; i < r; i++) {
            eye[i * r + i] = 1f;
        }
        Tensor d = be.zeros(DType.F32, out, in);
        try (Tensor id = be.upload(eye, DType.F32, r, r); Tensor ad = be.zeros(DType.F32, r, in)) {
            be.gemm(false, false, r, in, r, 1f, id, 0, r, shared.a(), 0, shared.a().cols(), 0f, ad, 0, in); // A_l
            be.mulColVector(ad, lambdaD.value(), ad);                                          // λd ∘ A_l
            be.gemm(false, false, out, in, r, 1f, shared.b(), 0, r, ad, 0, in, 0f, d, 0, in);  // B_l (λd∘A_l)
            be.mulColVector(d, lambdaB.value(), d);                                            // λb ∘ rows
        } catch (RuntimeException e) {
            d.close();
            throw e;
        }
        return base.toWeightLayout(d);
    }

    /** Releases λb, λd and their gradients; the shared projections belong to the model. */
    @Override
    public void close() {
        Params.closeAll(params);
    }
}
