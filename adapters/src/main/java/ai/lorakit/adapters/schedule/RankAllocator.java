package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * AdaLoRA's rank allocation (Zhang et al., ICLR 2023, section 3; VARIANTS.md section 6), as PEFT's
 * {@code RankAllocator} + {@code AdaLoraModel.update_and_allocate}, driven as a {@link TrainingHook}:
 * <ul>
 *   <li>{@link #beforeOptimizerStep}: the orthogonality regulariser in PEFT's form
 *       ({@link OrthogonalRegularizer.Form#PEFT_MEAN_NORM}: orth_reg_weight · mean over every A and B of the
 *       NON-squared ‖C − I‖_F), gradients added to A and B, loss value written to the step's stats on the
 *       device;</li>
 *   <li>{@link #afterOptimizerStep}(t), with T = total_step − tfinal:
 *     <ul>
 *       <li>t &lt; T: sensitivity I = |w ∘ ∇w| smoothed for every A, E, B ({@link Backend#adaloraSensitivity}:
 *           Ī ← β1 Ī + (1−β1) I, Ū ← β2 Ū + (1−β2)|I − Ī|, element score Ī·Ū); then, if the budget schedule says
 *           so, a mask of Λ to the budget b(t) is due;</li>
 *       <li>t == T: the final mask at b(T) = target budget is due;</li>
 *       <li>t &gt; T: the final rank_pattern re-applied to E every step (pruned triplets may not revive).</li>
 *     </ul></li>
 *   <li>{@link #afterStep}(t): the mask due at t, if any (at T: rank_pattern fixed, then the EMAs reset).</li>
 * </ul>
 * Where the masking runs: OUTSIDE the device step. The regulariser and afterOptimizerStep are device-only (no host
 * transfer, no allocation), so they run inside the Trainer's captured step; the masking needs the k-th smallest
 * triplet score over all layers (a host sort) and reads the scores, so it runs in {@link #afterStep}, after the
 * step's results were read and before the next step. The result is the same as PEFT's masking right after
 * optimizer.step(): between the two points only zeroGrad runs, and the masking reads the EMAs and writes E, never
 * the gradients. A mask left due (afterStep forgotten) is refused at the next step and by {@link #state()}.
 * Budget ({@link #budget}): init_bgt = Σ init_r, target_bgt = target_r · n_layers; t ≤ tinit: init_bgt, no mask;
 * t > T: target_bgt, mask; else b = floor((init_bgt − target_bgt)·(1 − (t − tinit)/(T − tinit))³ + target_bgt),
 * mask when t % deltaT == 0. Triplet score of layer l, triplet k: S_k = score(E)_k + mean_i score(A)_ki +
 * mean_o score(B)_ok. Masking: thr = the (init_bgt − b)-th smallest of all layers' S (torch.kthvalue); E_k = 0 where
 * S_k ≤ thr ({@link Backend#maskWhereAtMost}; ties may prune more than asked, as PEFT); rank_pattern[layer.lora_E] =
 * (S > thr). Pruned triplets keep training (A, B rows and E get gradients), so they may revive at the next mask.
 *
 * <p>init_r == target_r (no pruning): the budget never drops below init_bgt, nothing is masked and rank_pattern is
 * all true (PEFT would fail in kthvalue with k = 0). Modules are never resized during training; {@link
 * #adapterConfig()} gives the config with the rank_pattern, with which {@link ai.lorakit.adapters.io.PeftAdapterIO}
 * writes the pruned shapes.
 */
public final class RankAllocator implements TrainingHook {

    /** Budget and whether to mask at a step. */
    public record Budget(int budget, boolean mask) {
    }

    /** One AdaLoRA layer: Q = A [r,in], Λ = E [r,1], P = B [out,r], their EMAs (same shapes) and the kept mask. */
    private static final class Layer implements AutoCloseable {
        final String name;
        final Parameter a;
        final Parameter e;
        final Parameter b;
        final int r;
        final int in;
        final int out;
        final Tensor iptA;
        final Tensor uncA;
        final Tensor iptE;
        final Tensor uncE;
        final Tensor iptB;
        final Tensor uncB;
        /** [r,1]: 1 where the latest mask kept the triplet (the final rank_pattern once finalised). */
        final Tensor keep;
        /** Work tensors of {@link #scores} and the mask ([r] x 3, [out,r], [r,1]): made once, so an allocation
         *  step allocates no device memory. */
        final Tensor sA;
        final Tensor sB;
        final Tensor sE;
        final Tensor prodB;
        final Tensor st;

        Layer(AdaptedLinear m) {
            name = m.name();
            a = m.parameter(Parameter.Role.LORA_A);
            e = m.parameter(Parameter.Role.LORA_E);
            b = m.parameter(Parameter.Role.LORA_B);
            r = m.rank();
            in = m.inFeatures();
            out = m.outFeatures();
            Backend be = a.value().backend();
            iptA = be.zeros(DType.F32, r, in).named(a.name() + ".exp_avg_ipt");
            uncA = be.zeros(DType.F32, r, in).named(a.name() + ".exp_avg_unc");
            iptE = be.zeros(DType.F32, r, 1).named(e.name() + ".exp_avg_ipt");
            uncE = be.zeros(DType.F32, r, 1).named(e.name() + ".exp_avg_unc");
            iptB = be.zeros(DType.F32, out, r).named(b.name() + ".exp_avg_ipt");
            uncB = be.zeros(DType.F32, out, r).named(b.name() + ".exp_avg_unc");
            keep = be.zeros(DType.F32, r, 1).named(e.name() + ".rank_mask");
            be.fill(keep, 1f);
            sA = be.zeros(DType.F32, r);
            sB = be.zeros(DType.F32, r);
            sE = be.zeros(DType.F32, r);
            prodB = be.zeros(DType.F32, out, r);
            st = be.zeros(DType.F32, r, 1);
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {iptA, uncA, iptE, uncE, iptB, uncB, keep, sA, sB, sE, prodB, st}) {
                t.close();
            }
        }
    }

    private static final String META = "adalora.rank_allocator.meta";

    private final AdaLoraConfig config;
    private final List<Layer> layers;
    private final int initBgt;
    private final int targetBgt;
    /** [3]: last step seen (−1: none), finalised (0/1), has a rank_pattern (0/1); refreshed by {@link #state()}. */
    private final Tensor meta;
    /** The regulariser over every A and B (its work tensors made once). */
    private final OrthogonalRegularizer orth;
    private Map<String, boolean[]> rankPattern;
    /** Budget of the mask due at {@link #afterStep}(lastStep), or −1 when none is due. */
    private int maskDue = -1;
    private boolean finalized;
    private int lastStep = -1;
    private boolean closed;

    private RankAllocator(AdaLoraConfig config, List<Layer> layers, Tensor meta, OrthogonalRegularizer orth) {
        this.config = config;
        this.layers = layers;
        this.meta = meta;
        this.orth = orth;
        int sum = 0;
        for (Layer l : layers) {
            sum += l.r;
        }
        this.initBgt = sum;
        this.targetBgt = config.targetR() * layers.size();
    }

    /**
     * An allocator over every AdaLoRA layer of the model (all of them: the budget is global).
     *
     * @throws IllegalArgumentException no layers, duplicate names, a layer that is not AdaLoRA, whose config is not
     *                                  {@code config}'s schedule, or that is not at full rank init_r
     */
    public static RankAllocator create(AdaLoraConfig config, List<AdaptedLinear> modules) {
        if (config == null || modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("AdaLoRA rank allocator: need a config and at least one layer, got"
                    + " config=" + config + ", layers=" + modules);
        }
        Set<String> names = new HashSet<>();
        for (AdaptedLinear m : modules) {
            if (!(m.config() instanceof AdaLoraConfig c)) {
                throw new IllegalArgumentException("AdaLoRA rank allocator: layer " + m.name() + " is "
                        + m.config().peftType() + ", not ADALORA");
            }
            if (!sameSchedule(c, config)) {
                throw new IllegalArgumentException("AdaLoRA rank allocator: layer " + m.name() + " has config " + c
                        + " but the allocator's is " + config + " (one trainable AdaLoRA adapter per model)");
            }
            if (m.rank() != config.initR()) {
                throw new IllegalArgumentException("AdaLoRA rank allocator: layer " + m.name() + " has rank "
                        + m.rank() + "; allocation starts from full-rank layers (init_r=" + config.initR() + ")");
            }
            if (!names.add(m.name())) {
                throw new IllegalArgumentException("AdaLoRA rank allocator: two layers are named " + m.name());
            }
        }
        List<Layer> ls = new ArrayList<>();
        Tensor meta = null;
        OrthogonalRegularizer orth = null;
        try {
            for (AdaptedLinear m : modules) {
                ls.add(new Layer(m));
            }
            meta = modules.getFirst().weight().backend().zeros(DType.F32, 3).named(META);
            List<Parameter> ms = new ArrayList<>(2 * ls.size());
            for (Layer l : ls) {
                ms.add(l.a);
                ms.add(l.b);
            }
            orth = OrthogonalRegularizer.create(ms, config.orthRegWeight(), OrthogonalRegularizer.Form.PEFT_MEAN_NORM);
            return new RankAllocator(config, List.copyOf(ls), meta, orth);
        } catch (RuntimeException ex) {
            ls.forEach(Layer::close);
            if (meta != null) {
                meta.close();
            }
            if (orth != null) {
                orth.close();
            }
            throw ex;
        }
    }

    private static boolean sameSchedule(AdaLoraConfig a, AdaLoraConfig b) {
        return a.initR() == b.initR() && a.targetR() == b.targetR() && a.tinit() == b.tinit()
                && a.tfinal() == b.tfinal() && a.deltaT() == b.deltaT() && a.totalStep() == b.totalStep()
                && a.beta1() == b.beta1() && a.beta2() == b.beta2() && a.orthRegWeight() == b.orthRegWeight()
                && a.alpha() == b.alpha();
    }

    // ---------------------------------------------------------------- the schedule

    /** PEFT's {@code budget_schedule(step)}: see the class comment (the floor is Python's int() of a positive). */
    public static Budget budget(AdaLoraConfig c, int initBgt, int targetBgt, int step) {
        int tinit = c.tinit();
        int tEnd = c.totalStep() - c.tfinal();
        if (step <= tinit) {
            return new Budget(initBgt, false);
        }
        if (step > tEnd) {
            return new Budget(targetBgt, true);
        }
        double mul = 1.0 - (double) (step - tinit) / (tEnd - tinit);
        int b = (int) Math.floor((initBgt - targetBgt) * Math.pow(mul, 3) + targetBgt);
        return new Budget(b, step % c.deltaT() == 0);
    }

    /** This allocator's budget at {@code step}. */
    public Budget budget(int step) {
        return budget(config, initBgt, targetBgt, step);
    }

    /** Σ init_r over the layers. */
    public int initBudget() {
        return initBgt;
    }

    /** target_r · number of layers. */
    public int targetBudget() {
        return targetBgt;
    }

    // ---------------------------------------------------------------- hook

    /** True: AdaLoRA's orthogonality regulariser. */
    @Override
    public boolean hasRegulariser() {
        return true;
    }

    /**
     * The orthogonality regulariser (PEFT's form, see the class comment): gradients added to every trainable A and
     * B, orth_reg_weight · R written to slot {@code at} of {@code stats}. No host transfer.
     */
    @Override
    public void beforeOptimizerStep(int step, Tensor stats, int at) {
        checkOpen();
        orth.applyTo(stats, at, true);
    }

    /**
     * PEFT's {@code update_and_allocate(global_step)}, less the masking it decides on, which runs in
     * {@link #afterStep}; see the class comment. No host transfer.
     *
     * @throws IllegalStateException a skipped step (this must run after every optimizer step), a mask still due
     *                               (afterStep of the previous step not called), a step past
     *                               T = total_step − tfinal before the final allocation, or a missing gradient
     *                               (call after backward and optimizer.step(), before zeroGrad())
     */
    @Override
    public void afterOptimizerStep(int step) {
        checkOpen();
        if (step < 0 || (lastStep >= 0 && step != lastStep + 1)) {
            throw new IllegalStateException("AdaLoRA rank allocator: called for step " + step + " after step "
                    + lastStep + "; it must run after every optimizer step (steps 0, 1, 2, ...)");
        }
        checkNoMaskDue();
        int tEnd = config.totalStep() - config.tfinal();
        if (step < tEnd) {
            updateImportance(step);
            Budget b = budget(step);
            if (b.mask()) {
                maskDue = b.budget();
            }
        } else if (step == tEnd) {
            maskDue = budget(step).budget();
        } else {
            if (!finalized) {
                throw new IllegalStateException("AdaLoRA rank allocator: step " + step + " is past total_step - tfinal"
                        + " = " + tEnd + " but the final allocation (at that step) never ran");
            }
            for (Layer l : layers) {
                Backend be = l.e.value().backend();
                be.maskWhereAtMost(l.e.value(), l.keep, 0.5f);   // E = 0 where rank_pattern is false (masked_fill)
                l.e.markChanged();                               // the layer restages A∘E
            }
        }
        lastStep = step;
    }

    /**
     * Between steps (after step t's results were read): the mask due at t, if any, with host reads of the triplet
     * scores; at t == T also rank_pattern fixed and the EMAs reset (PEFT's reset_ipt).
     *
     * @throws IllegalStateException t is not the step afterOptimizerStep last ran for
     */
    @Override
    public void afterStep(int step) {
        checkOpen();
        if (step != lastStep) {
            throw new IllegalStateException("AdaLoRA rank allocator: afterStep(" + step + ") but the last optimizer"
                    + " step seen is " + lastStep + "; call afterStep(t) right after afterOptimizerStep(t)");
        }
        if (maskDue < 0) {
            return;
        }
        maskToBudget(maskDue);
        maskDue = -1;
        if (step == config.totalStep() - config.tfinal()) {
            finalized = true;
            for (Layer l : layers) {
                for (Tensor t : new Tensor[] {l.iptA, l.uncA, l.iptE, l.uncE, l.iptB, l.uncB}) {
                    t.backend().fill(t, 0f);          // PEFT's reset_ipt
                }
            }
        }
    }

    private void checkNoMaskDue() {
        if (maskDue >= 0) {
            throw new IllegalStateException("AdaLoRA rank allocator: the mask of step " + lastStep + " is still due;"
                    + " call afterStep(" + lastStep + ") after the step's results are read, before the next step");
        }
    }

    private void updateImportance(int step) {
        for (Layer l : layers) {
            for (Parameter p : new Parameter[] {l.a, l.e, l.b}) {
                if (p.grad() == null) {
                    throw new IllegalStateException("AdaLoRA rank allocator: " + p.name() + " has no gradient at step "
                            + step + "; call afterOptimizerStep after backward and optimizer.step(), before zeroGrad()");
                }
            }
            Backend be = l.a.value().backend();
            float b1 = config.beta1();
            float b2 = config.beta2();
            be.adaloraSensitivity(l.a.value(), l.a.grad(), l.iptA, l.uncA, b1, b2);
            be.adaloraSensitivity(l.e.value(), l.e.grad(), l.iptE, l.uncE, b1, b2);
            be.adaloraSensitivity(l.b.value(), l.b.grad(), l.iptB, l.uncB, b1, b2);
        }
    }

    /** PEFT's {@code mask_to_budget}: zero E where S ≤ the k-th smallest S, k = init_bgt − budget. */
    private void maskToBudget(int budget) {
        Map<Layer, float[]> scores = new LinkedHashMap<>();
        int total = 0;
        for (Layer l : layers) {
            float[] s = scores(l);
            scores.put(l, s);
            total += s.length;
        }
        int k = initBgt - budget;
        float thr = Float.NEGATIVE_INFINITY;                   // k <= 0 (init_r == target_r): keep everything
        if (k > 0) {
            float[] all = new float[total];
            int at = 0;
            for (float[] s : scores.values()) {
                System.arraycopy(s, 0, all, at, s.length);
                at += s.length;
            }
            Arrays.sort(all);
            thr = all[Math.min(k, total) - 1];                 // torch.kthvalue(all, k): k-th smallest (1-based)
        }
        Map<String, boolean[]> pattern = new LinkedHashMap<>();
        for (Layer l : layers) {
            float[] s = scores.get(l);
            boolean[] kept = new boolean[l.r];
            float[] keep = new float[l.r];
            for (int i = 0; i < l.r; i++) {
                kept[i] = !(s[i] <= thr);
                keep[i] = kept[i] ? 1f : 0f;
            }
            Backend be = l.e.value().backend();
            if (k > 0) {
                be.write(l.st, s);
                be.maskWhereAtMost(l.e.value(), l.st, thr);
                l.e.markChanged();
            }
            be.write(l.keep, keep);
            pattern.put(l.e.name(), kept);
        }
        rankPattern = Collections.unmodifiableMap(pattern);
    }

    /**
     * S [r] of one layer: score(E) + mean over in of score(A) + mean over out of score(B), with score = Ī·Ū,
     * computed on the layer's backend (E + (mean_A + mean_B), PEFT's order of addition).
     */
    private static float[] scores(Layer l) {
        Backend be = l.a.value().backend();
        be.rowDot(l.iptA, l.uncA, l.sA);                       // Σ_i Ī_ki Ū_ki: [r]
        be.scale(l.sA, 1f / l.in, l.sA);
        be.mul(l.iptB, l.uncB, l.prodB);                       // Ī ∘ Ū: [out,r]
        be.sumRows(l.prodB, 0f, l.sB);                         // Σ_o: [r]
        be.scale(l.sB, 1f / l.out, l.sB);
        be.add(l.sA, l.sB, l.sA);                              // mean_A + mean_B
        be.mul(l.iptE, l.uncE, l.sE);                          // score(E): [r,1] as [r]
        be.add(l.sE, l.sA, l.sE);
        return be.download(l.sE);
    }

    // ---------------------------------------------------------------- results

    /** The triplet scores S now, per lora_E parameter name (for logging and tests). */
    public Map<String, float[]> tripletScores() {
        checkOpen();
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Layer l : layers) {
            out.put(l.e.name(), scores(l));
        }
        return Collections.unmodifiableMap(out);
    }

    /**
     * The latest allocation: lora_E parameter name (module name + ".lora_E", PEFT's key) → kept triplets (a fresh
     * copy); null before the first mask. Final once {@link #finalized()}.
     */
    public Map<String, boolean[]> rankPattern() {
        if (rankPattern == null) {
            return null;
        }
        Map<String, boolean[]> out = new LinkedHashMap<>();
        rankPattern.forEach((k, v) -> out.put(k, v.clone()));
        return out;
    }

    /** Whether the final allocation (step total_step − tfinal) has run. */
    public boolean finalized() {
        return finalized;
    }

    /** The last step seen, or −1. */
    public int lastStep() {
        return lastStep;
    }

    /**
     * The adapter's config with the latest rank_pattern (null before the first mask), for
     * {@link ai.lorakit.adapters.io.PeftAdapterIO#save}: saved tensors are then pruned to the kept triplets.
     */
    public AdaLoraConfig adapterConfig() {
        AdaLoraConfig c = config;
        return new AdaLoraConfig(c.initR(), c.targetR(), c.tinit(), c.tfinal(), c.deltaT(), c.beta1(), c.beta2(),
                c.orthRegWeight(), c.totalStep(), c.alpha(), c.dropout(), c.targetModules(), rankPattern());
    }

    // ---------------------------------------------------------------- checkpoints

    @Override
    public Map<String, Tensor> state() {
        checkOpen();
        checkNoMaskDue();
        Backend be = meta.backend();
        try (Tensor m = be.upload(new float[] {lastStep, finalized ? 1 : 0, rankPattern != null ? 1 : 0}, DType.F32, 3)) {
            be.copy(m, meta);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        out.put(META, meta);
        for (Layer l : layers) {
            for (Tensor t : new Tensor[] {l.iptA, l.uncA, l.iptE, l.uncE, l.iptB, l.uncB, l.keep}) {
                out.put(t.name(), t);
            }
        }
        return Collections.unmodifiableMap(out);
    }

    @Override
    public void stateRestored() {
        checkOpen();
        float[] m = meta.backend().download(meta);
        lastStep = (int) m[0];
        maskDue = -1;                                          // saved after afterStep: no mask was due
        finalized = m[1] != 0;
        if (m[2] != 0) {
            Map<String, boolean[]> pattern = new LinkedHashMap<>();
            for (Layer l : layers) {
                float[] k = l.keep.backend().download(l.keep);
                boolean[] kept = new boolean[l.r];
                for (int i = 0; i < l.r; i++) {
                    kept[i] = k[i] != 0;
                }
                pattern.put(l.e.name(), kept);
            }
            rankPattern = Collections.unmodifiableMap(pattern);
        } else {
            rankPattern = null;
        }
    }

    @Override
    public void close() {
        if (!closed) {
            closed = true;
            layers.forEach(Layer::close);
            meta.close();
            orth.close();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("AdaLoRA rank allocator is closed");
        }
    }

    @Override
    public String toString() {
        return "RankAllocator(" + layers.size() + " layers, init_bgt=" + initBgt + ", target_bgt=" + targetBgt
                + ", last step " + lastStep + (finalized ? ", final" : "") + ")";
    }
}
