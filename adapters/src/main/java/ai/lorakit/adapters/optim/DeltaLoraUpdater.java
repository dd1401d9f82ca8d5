package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.schedule.TrainingHook;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Delta-LoRA's update of the frozen base weight (VARIANTS.md section 7, Algorithm 1 of arXiv 2309.02411), run as a
 * {@link TrainingHook} after every optimizer step. With t = step + 1 completed optimizer steps:
 * <ul>
 *   <li>t ≤ K: nothing;</li>
 *   <li>the first call with t &gt; K: snapshot (A, B) of every module (A_K', B_K' are also kept for the export),
 *       as MyTransformers' {@code delta_lora.py} (the paper instead diffs against the pre-step A, B of step K+1);</li>
 *   <li>later calls: W += λ·s·(B'A' − BA) with (A, B) the previous snapshot and (A', B') the current values, in
 *       place ({@link Backend#deltaLoraUpdate}; W [in,out] with fan_in_fan_out gets the transpose), then
 *       snapshot (A', B').</li>
 * </ul>
 * Extra memory: 2·r·(in+out) per module (previous and first snapshot).
 *
 * <p><b>Precision.</b> An fp32 W takes the update in place. A W stored in BF16 or F16 would round most updates
 * away (|λ s ΔBA| is far below half an ulp of |W|): such a W gets an fp32 master copy that takes the update, and
 * W is re-rounded from the master after each update (the master, not W, is what {@link #state()} saves).
 *
 * <p><b>Dropout is refused</b> at {@link #create}: Delta-LoRA uses B'A' − BA as a stand-in for the gradient step
 * of W, which holds only when the adapter sees the same input as W (the paper removes dropout from the branch).
 *
 * <p><b>Export</b> ({@link #export}): the updates telescope, W_T = W_0 + λ·s·(B_T A_T − B_K' A_K'), so the trained
 * layer W_T + s·B_T A_T equals the plain LoRA on the ORIGINAL W_0 with A' = [A_T; A_K'] [2r,in],
 * B' = [(1+λ)·B_T, −λ·B_K'] [out,2r] and the same s (r' = 2r, alpha' = 2·alpha; alpha'·√2 with rsLoRA). W_0 is
 * the base checkpoint's weight; the export also reconstructs it from W_T for convenience.
 */
public final class DeltaLoraUpdater implements TrainingHook {

    private static final String META = "delta_lora.meta";

    /** One module: A [r,in], B [out,r], s, snapshots, optional fp32 master of W. */
    private static final class Slot implements AutoCloseable {
        final AdaptedLinear m;
        final Parameter a;
        final Parameter b;
        final float s;
        final Tensor aPrev;
        final Tensor bPrev;
        final Tensor aFirst;
        final Tensor bFirst;
        /** fp32 copy of W [out,in] / [in,out] when W is not F32; null otherwise. */
        final Tensor master;

        Slot(AdaptedLinear m) {
            this.m = m;
            this.a = m.parameter(Parameter.Role.LORA_A);
            this.b = m.parameter(Parameter.Role.LORA_B);
            this.s = m.scaling();
            Backend be = m.weight().backend();
            String n = m.name() + ".delta_lora.";
            Tensor[] made = new Tensor[5];
            try {
                made[0] = be.zeros(DType.F32, a.value().shape()).named(n + "A_prev");
                made[1] = be.zeros(DType.F32, b.value().shape()).named(n + "B_prev");
                made[2] = be.zeros(DType.F32, a.value().shape()).named(n + "A_first");
                made[3] = be.zeros(DType.F32, b.value().shape()).named(n + "B_first");
                if (m.weight().dtype() != DType.F32) {
                    made[4] = be.zeros(DType.F32, m.weight().shape()).named(m.name() + ".weight.fp32_master");
                    be.copy(m.weight(), made[4]);
                }
            } catch (RuntimeException e) {
                for (Tensor t : made) {
                    if (t != null) {
                        t.close();
                    }
                }
                throw e;
            }
            aPrev = made[0];
            bPrev = made[1];
            aFirst = made[2];
            bFirst = made[3];
            master = made[4];
        }

        /** The fp32 tensor that takes the update: the master, or W itself. */
        Tensor target() {
            return master != null ? master : m.weight();
        }

        @Override
        public void close() {
            for (Tensor t : new Tensor[] {aPrev, bPrev, aFirst, bFirst, master}) {
                if (t != null) {
                    t.close();
                }
            }
        }
    }

    /** One module of the rank-2r export: A' [2r,in], B' [out,2r], and W_0 in W's layout, row-major. */
    public record ExportedModule(String name, float[] a, float[] b, float[] originalWeight, int[] weightShape,
                                 boolean fanInFanOut) {
    }

    /** The export: the LoRA config (r' = 2r) and every module, in the updater's order. */
    public record Export(LoraConfig config, List<ExportedModule> modules) {
    }

    private final DeltaLoraPolicy policy;
    private final Optimizer optimizer;
    private final List<Slot> slots;
    private final Tensor meta;
    private int lastStep = -1;
    private boolean snapshotted;
    private boolean closed;

    private DeltaLoraUpdater(DeltaLoraPolicy policy, Optimizer optimizer, List<Slot> slots, Tensor meta) {
        this.policy = policy;
        this.optimizer = optimizer;
        this.slots = slots;
        this.meta = meta;
    }

    /**
     * The W updater for {@code optimizer} (whose policy must be a {@link DeltaLoraPolicy}) over every adapted module.
     *
     * @throws IllegalArgumentException another policy, no modules, duplicate names, a module that is not plain LoRA
     *                                  (DoRA, VeRA, AdaLoRA), a module with dropout, a merged module
     */
    public static DeltaLoraUpdater create(Optimizer optimizer, List<AdaptedLinear> modules) {
        Checks.require(optimizer != null, "optimizer", null, "must be set");
        if (!(optimizer.policy() instanceof DeltaLoraPolicy policy)) {
            throw new IllegalArgumentException("Delta-LoRA updater: the optimizer's policy must be DeltaLoraPolicy, got "
                    + optimizer.policy());
        }
        Checks.require(modules != null && !modules.isEmpty(), "Delta-LoRA modules", modules, "must not be empty");
        Set<String> names = new HashSet<>();
        for (AdaptedLinear m : modules) {
            if (!(m.config() instanceof LoraConfig c) || c.useDora()) {
                throw new IllegalArgumentException("Delta-LoRA: module " + m.name() + " is " + m
                        + "; Delta-LoRA updates W from a plain LoRA adapter (ΔW = s·B·A)");
            }
            if (c.dropout() != 0f) {
                throw new IllegalArgumentException("Delta-LoRA refuses dropout on the adapter: module " + m.name()
                        + " has lora_dropout=" + c.dropout() + ". The W update λ·s·(B'A' − BA) stands in for W's"
                        + " gradient step only when the adapter sees the undropped input (the paper removes dropout,"
                        + " VARIANTS.md section 7); set lora_dropout=0");
            }
            if (m.merged()) {
                throw new IllegalArgumentException("Delta-LoRA: module " + m.name() + " is merged; unmerge it first");
            }
            Checks.require(names.add(m.name()), "Delta-LoRA modules", m.name(), "must have unique names; duplicate");
        }
        List<Slot> ss = new ArrayList<>();
        Tensor meta = null;
        try {
            for (AdaptedLinear m : modules) {
                ss.add(new Slot(m));
            }
            meta = modules.getFirst().weight().backend().zeros(DType.F32, 2).named(META);
            return new DeltaLoraUpdater(policy, optimizer, List.copyOf(ss), meta);
        } catch (RuntimeException e) {
            ss.forEach(Slot::close);
            if (meta != null) {
                meta.close();
            }
            throw e;
        }
    }

    public DeltaLoraPolicy policy() {
        return policy;
    }

    /** Whether the first snapshot (A_K', B_K') has been taken. */
    public boolean snapshotted() {
        return snapshotted;
    }

    /**
     * See the class comment. {@code step} is the 0-based index of the optimizer step just taken, so the optimizer
     * must have completed exactly step + 1 steps.
     *
     * @throws IllegalStateException a skipped step, or a call before that step's optimizer.step()
     */
    @Override
    public void afterOptimizerStep(int step) {
        checkOpen();
        if (step < 0 || (lastStep >= 0 && step != lastStep + 1)) {
            throw new IllegalStateException("Delta-LoRA: called for step " + step + " after step " + lastStep
                    + "; the W update must run after every optimizer step");
        }
        if (optimizer.stepCount() != step + 1) {
            throw new IllegalStateException("Delta-LoRA: called for step " + step + " but the optimizer has completed "
                    + optimizer.stepCount() + " steps; call afterOptimizerStep(t) right after optimizer.step() of step t");
        }
        int t = step + 1;
        if (t > policy.startStep()) {
            if (!snapshotted) {
                for (Slot sl : slots) {
                    Backend be = sl.a.value().backend();
                    be.copy(sl.a.value(), sl.aFirst);
                    be.copy(sl.b.value(), sl.bFirst);
                }
                snapshotted = true;
            } else {
                for (Slot sl : slots) {
                    Backend be = sl.m.weight().backend();
                    // W += λ s (B'A' − BA): [out,in] (or its transpose with fan_in_fan_out)
                    float c = policy.lambda() * sl.s;
                    if (sl.master != null) {
                        // the fp32 master takes the update, W is re-rounded from it (one pass on the fast tier)
                        be.deltaLoraUpdateMaster(sl.m.weight(), sl.master, sl.m.fanInFanOut(), c,
                                sl.b.value(), sl.a.value(), sl.bPrev, sl.aPrev);
                    } else {
                        be.deltaLoraUpdate(sl.m.weight(), sl.m.fanInFanOut(), c, sl.b.value(), sl.a.value(),
                                sl.bPrev, sl.aPrev);
                    }
                    sl.m.weightChanged();
                }
            }
            for (Slot sl : slots) {
                Backend be = sl.a.value().backend();
                be.copy(sl.a.value(), sl.aPrev);
                be.copy(sl.b.value(), sl.bPrev);
            }
        }
        lastStep = step;
    }

    // ---------------------------------------------------------------- export

    /**
     * The rank-2r plain LoRA on the original weights that reproduces the trained layers (see the class comment).
     * Before the first snapshot the current (A, B) stands in for (A_K', B_K'), which gives the same ΔW.
     *
     * @param config the modules' LoraConfig (r, alpha, patterns, rsLoRA); the result doubles r and the patterns'
     *               ranks and scales alpha so that every module keeps its s
     * @throws IllegalStateException W missed the update of an optimizer step (the hook did not run after the last
     *                               optimizer.step())
     */
    public Export export(LoraConfig config) {
        checkOpen();
        Checks.require(config != null, "Delta-LoRA export config", null, "must be set");
        if (optimizer.stepCount() > policy.startStep() && lastStep + 1 != optimizer.stepCount()) {
            throw new IllegalStateException("Delta-LoRA export: the optimizer completed " + optimizer.stepCount()
                    + " steps but W was last updated after step " + (lastStep + 1) + "; run afterOptimizerStep after"
                    + " every optimizer step before exporting");
        }
        LoraConfig out = doubledConfig(config);
        float lambda = policy.lambda();
        List<ExportedModule> mods = new ArrayList<>();
        for (Slot sl : slots) {
            Backend be = sl.m.weight().backend();
            Tensor aK = snapshotted ? sl.aFirst : sl.a.value();
            Tensor bK = snapshotted ? sl.bFirst : sl.b.value();
            float[] aT = be.download(sl.a.value());
            float[] bT = be.download(sl.b.value());
            float[] aF = be.download(aK);
            float[] bF = be.download(bK);
            int r = sl.a.value().dim(0);
            int in = sl.a.value().dim(1);
            int o = sl.b.value().dim(0);
            double fix = sl.s / (double) out.scalingFor(sl.m.name());   // 1 unless rsLoRA's √2 rounds
            float[] a2 = new float[2 * r * in];
            System.arraycopy(aT, 0, a2, 0, r * in);                     // A' = [A_T; A_K']
            System.arraycopy(aF, 0, a2, r * in, r * in);
            float[] b2 = new float[o * 2 * r];                          // B' = [(1+λ) B_T, −λ B_K']
            for (int i = 0; i < o; i++) {
                for (int k = 0; k < r; k++) {
                    b2[i * 2 * r + k] = (float) ((1.0 + lambda) * bT[i * r + k] * fix);
                    b2[i * 2 * r + r + k] = (float) (-lambda * (double) bF[i * r + k] * fix);
                }
            }
            float[] w0;
            try (Tensor w = be.zeros(DType.F32, sl.m.weight().shape());
                 Tensor d = be.zeros(DType.F32, sl.m.weight().shape())) {
                be.copy(sl.target(), w);
                // W_0 = W_T − λ s (B_T A_T − B_K' A_K'): the difference first, so W is rounded once (exact when 0)
                be.deltaLoraUpdate(d, sl.m.fanInFanOut(), 1f, sl.b.value(), sl.a.value(), bK, aK);
                be.axpby(-lambda * sl.s, d, 1f, w);
                w0 = be.download(w);
            }
            mods.add(new ExportedModule(sl.m.name(), a2, b2, w0, sl.m.weight().shape(), sl.m.fanInFanOut()));
        }
        return new Export(out, List.copyOf(mods));
    }

    /**
     * Writes an {@link Export} as a standard PEFT LoRA adapter directory ({@link PeftAdapterIO#save}): layers are
     * built on the exported W_0 only to carry A' and B' (the file holds no W).
     */
    public static void save(Export export, Backend backend, Path dir, String baseModelNameOrPath) throws IOException {
        List<AdaptedLinear> layers = new ArrayList<>();
        List<Tensor> weights = new ArrayList<>();
        try {
            for (ExportedModule em : export.modules()) {
                Tensor w = backend.upload(em.originalWeight(), DType.F32, em.weightShape());
                weights.add(w);
                AdaptedLinear l = AdaptedLinear.create(em.name(), w, null, em.fanInFanOut(), export.config(), null, 0L);
                layers.add(l);
                for (Parameter p : l.parameters()) {
                    float[] v = p.role() == Parameter.Role.LORA_A ? em.a() : em.b();
                    try (Tensor t = backend.upload(v, DType.F32, p.value().shape())) {
                        backend.copy(t, p.value());
                    }
                }
            }
            PeftAdapterIO.save(dir, export.config(), layers, null, baseModelNameOrPath);
        } finally {
            layers.forEach(AdaptedLinear::close);
            weights.forEach(Tensor::close);
        }
    }

    /** r' = 2r, rank_pattern values doubled, alpha (and alpha_pattern) ×2, or ×√2 with rsLoRA; no dropout. */
    static LoraConfig doubledConfig(LoraConfig c) {
        double f = c.useRslora() ? Math.sqrt(2.0) : 2.0;
        Map<String, Integer> ranks = new LinkedHashMap<>();
        c.rankPattern().forEach((k, v) -> ranks.put(k, 2 * v));
        Map<String, Float> alphas = new LinkedHashMap<>();
        c.alphaPattern().forEach((k, v) -> alphas.put(k, (float) (v * f)));
        return new LoraConfig(2 * c.r(), (float) (c.alpha() * f), 0f, c.useRslora(), c.init(), false,
                c.targetModules(), ranks, alphas);
    }

    // ---------------------------------------------------------------- checkpoints

    /**
     * The snapshots, W (or its fp32 master) of every module (Delta-LoRA changes W, so W must be saved), and a
     * meta tensor (last step, snapshot taken), refreshed by this call.
     */
    @Override
    public Map<String, Tensor> state() {
        checkOpen();
        Backend be = meta.backend();
        try (Tensor m = be.upload(new float[] {lastStep, snapshotted ? 1 : 0}, DType.F32, 2)) {
            be.copy(m, meta);
        }
        Map<String, Tensor> out = new LinkedHashMap<>();
        out.put(META, meta);
        for (Slot sl : slots) {
            out.put(sl.aPrev.name(), sl.aPrev);
            out.put(sl.bPrev.name(), sl.bPrev);
            out.put(sl.aFirst.name(), sl.aFirst);
            out.put(sl.bFirst.name(), sl.bFirst);
            if (sl.master != null) {
                out.put(sl.master.name(), sl.master);
            } else {
                out.put(sl.m.name() + ".weight", sl.m.weight());
            }
        }
        return Collections.unmodifiableMap(out);
    }

    @Override
    public void stateRestored() {
        checkOpen();
        float[] m = meta.backend().download(meta);
        lastStep = (int) m[0];
        snapshotted = m[1] != 0;
        for (Slot sl : slots) {
            if (sl.master != null) {
                sl.master.backend().copy(sl.master, sl.m.weight());
            }
            sl.m.weightChanged();
        }
    }

    /** Releases the snapshots and masters (never W or the adapter). Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            slots.forEach(Slot::close);
            meta.close();
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("Delta-LoRA updater is closed");
        }
    }

    @Override
    public String toString() {
        return "DeltaLoraUpdater(" + policy + ", " + slots.size() + " modules, last step " + lastStep
                + (snapshotted ? ", snapshotted" : "") + ")";
    }
}
