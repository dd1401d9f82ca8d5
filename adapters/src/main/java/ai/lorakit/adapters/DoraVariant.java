package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * DoRA (Liu et al. 2024, arXiv 2402.09353; VARIANTS.md section 5) as PEFT computes it: LoRA's A, B, s plus a
 * trainable magnitude m [out]. With n = ||transpose(W, fifo) + s B A||_row [out], a constant (paper section 4.3:
 * the norm is detached, no gradient flows into it) and k = m / n:
 * <ul>
 *   <li>no dropout, or eval: y = b + k ∘ (x op(W) + s (x A^T) B^T) (PEFT reuses the base result);</li>
 *   <li>dropout in training: y = x op(W) + b + (k - 1) ∘ (x_d op(W)) + k ∘ s (x_d A^T) B^T.</li>
 * </ul>
 * Backward with g = dL/dy and comb = x_d op(W) + s (x_d A^T) B^T: dm = Σ_tokens g ∘ comb / n; the LoRA branch
 * gets g ∘ k; dx = (g∘k) op(W)^T + s ((g∘k) B) A without dropout, and
 * dx = g op(W)^T + mask ∘ ((g∘k - g) op(W)^T + s ((g∘k) B) A) with it.
 *
 * <p>Merge: f = m / n with n from the current W and adapter; W <- f ∘ (W + ΔW) per output unit (rows of W, or
 * columns when fifo). f is cached in memory for unmerge (W <- W / f - ΔW), as PEFT does; a merged DoRA layer
 * therefore cannot be unmerged after the process restarts.
 *
 * <p>Staged path (bf16 input, no dropout): comb (bf16) and the backward's LoRA branch are LoRA's staged ops
 * ({@link MarginStage}) with dy = g ∘ k; the rescale and its backward are {@link Backend#doraScale} and
 * {@link Backend#doraScaleBackward} (one fused kernel each on the CUDA fast tier).
 *
 * <p>n and k are [out] vectors formed on the device (Backend.doraWeightNorm, divide), so a forward
 * and backward move nothing between host and device (a whole step can be captured as a CUDA Graph). Only merge
 * downloads: it keeps f on the host for unmerge.
 */
final class DoraVariant implements Variant {
    private final LoraVariant lora;
    /** m [out]. */
    final Parameter m;
    private final List<Parameter> params;
    /** f = m / n applied by the last merge [out]; null when not merged. */
    private float[] mergedF;
    /** The fp32 copy of a bf16 bias is in the scratch (the bias is frozen). */
    private boolean biasCopied;

    private DoraVariant(LoraVariant lora, Parameter m) {
        this.lora = lora;
        this.m = m;
        this.params = List.of(lora.a, lora.b, m);
    }

    /** Init hook: LoRA's init, then m = ||transpose(W, fifo) + s B A||_row (= ||W||_row when B = 0). */
    static DoraVariant create(BaseLinear base, LoraConfig c, long seed) {
        LoraVariant lora = LoraVariant.create(base, c, seed);
        try {
            Tensor n = base.backend().zeros(DType.F32, base.out());
            try {
                weightNorm(base, lora, n);
            } catch (RuntimeException e) {
                n.close();
                throw e;
            }
            String full = base.name() + ".lora_magnitude_vector";
            return new DoraVariant(lora, new Parameter(full, Parameter.Role.MAGNITUDE, n.named(full), true));
        } catch (RuntimeException e) {
            lora.close();
            throw e;
        }
    }

    /** n (written) = ||transpose(W, fifo) + s B A||_row [out] without forming B A. */
    private static void weightNorm(BaseLinear base, LoraVariant lora, Tensor n) {
        base.backend().doraWeightNorm(base.w(), base.fifo(), lora.a.value(), lora.b.value(), lora.s, n);
    }

    /** The current norm n [out] on the device, in the layer's scratch (detached: a constant to the backward). */
    private Tensor deviceNorm(BaseLinear base) {
        Tensor n = base.scratch().get("dora.n", base.out());
        weightNorm(base, lora, n);
        return n;
    }

    @Override
    public List<Parameter> parameters() {
        return params;
    }

    @Override
    public int rank() {
        return lora.r;
    }

    @Override
    public float scaling() {
        return lora.s;
    }

    @Override
    public boolean needsInput() {
        return lora.a.trainable();
    }

    @Override
    public void forward(BaseLinear base, Tensor x, Tensor xd, Tensor y, ForwardCache cache) {
        Backend be = base.backend();
        int tokens = x.rows();
        int out = base.out();
        Scratch sc = base.scratch();
        Tensor n = deviceNorm(base);
        Tensor kT = sc.get("dora.k", out);
        be.divide(m.value(), n, kT);                                      // k = m / n
        boolean staged = MarginStage.applies(x, xd);
        Tensor u = staged ? null : sc.get("u", tokens, lora.r);
        // comb = x_d op(W) + s (x_d A^T) B^T, the output before the magnitude (bf16 on the staged path)
        Tensor comb = sc.get("dora.comb", staged ? DType.BF16 : DType.F32, tokens, out);
        if (staged) {
            lora.forwardStaged(base, x, false, comb, cache);             // one GEMM over in + r
            be.doraScale(comb, kT, biasF32(base), y);                     // y = k ∘ comb + b, rounded once
        } else if (xd == x) {
            // step 1 "optimized" path: comb = x op(W) + s (x A^T) B^T; y = k ∘ comb + b
            be.loraLinearForward(x, base.w(), base.fifo(), null, lora.a.value(), lora.b.value(), lora.s, u, comb);
            be.doraScale(comb, kT, base.bias(), y);
        } else {
            // y = x op(W) + b - x_d op(W) + k ∘ (x_d op(W) + s (x_d A^T) B^T)
            base.forward(x, y, true);
            Tensor baseD = sc.get("dora.nOut", tokens, out);
            base.forward(xd, baseD, false);
            be.copy(baseD, comb);
            be.loraShrink(xd, lora.a.value(), u);
            be.loraExpand(u, lora.b.value(), lora.s, comb);
            be.axpby(-1f, baseD, 1f, y);
            be.mulRowVector(comb, kT, baseD);
            be.axpby(1f, baseD, 1f, y);
        }
        if (cache != null) {
            cache.u = u;
            cache.comb = comb;
            cache.k = kT;
            cache.norm = n;
        }
    }

    /** The bias as fp32 [out] (a copy made once when W's bias is stored in bf16; the fast rescale reads fp32). */
    private Tensor biasF32(BaseLinear base) {
        Tensor b = base.bias();
        if (b == null || b.dtype() == DType.F32) {
            return b;
        }
        Tensor c = base.scratch().get("dora.bias32", base.out());
        if (!biasCopied) {
            base.backend().copy(b, c);
            biasCopied = true;
        }
        return c;
    }

    @Override
    public boolean stagesMargins() {
        return true;
    }

    @Override
    public void backward(BaseLinear base, Tensor g, ForwardCache cache, Tensor dx, Tensor dxd) {
        Backend be = base.backend();
        int tokens = g.rows();
        int out = base.out();
        Scratch sc = base.scratch();
        boolean staged = cache.stage != null && dx == dxd;
        Tensor gk = sc.get("dora.gk", staged ? DType.BF16 : DType.F32, tokens, out);
        // gk = g ∘ k; dm += Σ_tokens g ∘ comb / n (n detached)
        be.doraScaleBackward(g, cache.comb, cache.k, cache.norm, gk, Params.gradOrNull(m));
        if (staged) {
            lora.backwardStaged(base, gk, cache, dx);                     // LoRA's backward with dy = g ∘ k
            return;
        }
        if (cache.dropout) {
            base.inputGrad(g, dx, 0f);                                    // base result: x op(W)
            Tensor t = sc.get("dora.nOut", tokens, out);
            be.copy(gk, t);
            be.axpby(-1f, g, 1f, t);                                      // (k - 1) ∘ g
            base.inputGrad(t, dxd, 1f);                                   // through x_d op(W)
        } else {
            base.inputGrad(gk, dx, 0f);                                   // (1 + (k - 1)) ∘ g = k ∘ g
        }
        LoraVariant.lowRankBackward(base, gk, cache, lora.a.value(), lora.b.value(), lora.s,
                Params.gradOrNull(lora.b), Params.gradOrNull(lora.a), dxd);
    }

    /** PEFT's get_delta_weight for DoRA: LoRA's transpose(s B A, fifo) (the magnitude is applied by merge). */
    @Override
    public Tensor delta(BaseLinear base) {
        return lora.delta(base);
    }

    /** W <- f ∘ (W + ΔW), f = m / ||W + ΔW||_row (per output unit; columns of W when fifo); f cached. */
    @Override
    public void merge(BaseLinear base) {
        Backend be = base.backend();
        float[] n = be.download(deviceNorm(base));
        float[] mh = be.download(m.value());
        float[] f = new float[n.length];
        for (int o = 0; o < f.length; o++) {
            f[o] = mh[o] / n[o];
        }
        try (Tensor d = delta(base); Tensor fT = be.upload(f, DType.F32, f.length);
             Tensor candidate = base.zerosLikeW()) {
            be.copy(base.w(), candidate);
            be.axpby(1f, d, 1f, candidate);
            scaleOutputUnits(base, candidate, fT);
            base.replaceWeightChecked(candidate);
        }
        mergedF = f;
    }

    /** W <- W / f - ΔW with the f cached by merge (PEFT; fifo applies f to columns as merge did). */
    @Override
    public void unmerge(BaseLinear base) {
        if (mergedF == null) {
            throw new IllegalStateException("DoRA layer " + base.name() + " has no cached merge factor to unmerge");
        }
        Backend be = base.backend();
        float[] inv = Params.reciprocal(mergedF);
        for (int o = 0; o < inv.length; o++) {
            if (!Float.isFinite(inv[o])) {
                throw new IllegalStateException("cannot unmerge DoRA layer " + base.name() + ": merge factor m/n of"
                        + " output " + o + " is " + mergedF[o] + " (W cannot be restored)");
            }
        }
        try (Tensor d = delta(base); Tensor invT = be.upload(inv, DType.F32, inv.length);
             Tensor candidate = base.zerosLikeW()) {
            be.copy(base.w(), candidate);
            scaleOutputUnits(base, candidate, invT);
            be.axpby(-1f, d, 1f, candidate);
            base.replaceWeightChecked(candidate);
        }
        mergedF = null;
    }

    /** t[o-th output unit] *= f[o]: rows of [out,in], columns of [in,out] (fifo). */
    private static void scaleOutputUnits(BaseLinear base, Tensor t, Tensor f) {
        if (base.fifo()) {
            base.backend().mulRowVector(t, f, t);
        } else {
            base.backend().mulColVector(t, f, t);
        }
    }

    @Override
    public void weightChanged() {
        lora.weightChanged();
    }

    @Override
    public void close() {
        mergedF = null;
        Params.closeAll(params);
    }
}
