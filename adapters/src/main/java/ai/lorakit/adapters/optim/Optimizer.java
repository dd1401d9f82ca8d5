package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * An optimizer over an adapted model's parameters, following one {@link OptimizerPolicy}. Every per-tensor update
 * is {@link Backend#adamw} with torch.optim.AdamW semantics ({@link AdamW}: decoupled decay first, then the
 * bias-corrected Adam step with eps added to the corrected sqrt(v)); the policy only chooses the param groups
 * (learning rate, weight decay) and, for LoRA-FA, the gradient fed to AdamW.
 *
 * <p>State, as torch: per parameter, moments m, v (fp32, allocated on the parameter's backend at its first update)
 * and a step count t starting at 1 (a parameter without a gradient in a step is skipped and its t does not
 * advance). Group membership is fixed at {@link #create}: parameters frozen then are never optimised.
 *
 * <p><b>LoRA-FA's two update rules</b> ({@link LoraFaPolicy.UpdateRule}). PEFT's {@code LoraFAOptimizer} is derived
 * from HF's AdamW: eps is added to the uncorrected sqrt(v), the bias correction is folded into the step size, and
 * weight decay is applied AFTER the Adam step, so there {@code B_wd = B_no_wd·(1 − lr·wd)}. By default
 * ({@code new LoraFaPolicy()}) lorakit runs the torch AdamW kernel as for every policy: decay comes first, so
 * {@code B_wd = B_no_wd − lr·wd·B_prev} (identical gradients, moments and step). {@link LoraFaPolicy#peft()} follows
 * PEFT exactly, through the same kernel with transformed hyper-parameters ({@link #hfAdamW}).
 *
 * <p>{@link #step()} refuses a non-finite gradient (or LoRA-FA projected gradient) with an
 * {@link IllegalStateException} naming the parameter, before any parameter or moment is changed.
 *
 * <p>{@link #stepClipped} is the training step's form: one {@link Backend#adamwClipped} over every tensor (one
 * fused launch on CUDA), clipped and guarded by the global gradient norm held on the device, with no host transfer;
 * it checks no gradient on the host (a non-finite gradient makes the norm non-finite, and the kernel then skips the
 * whole update; a LoRA-FA projection of finite gradients is not checked separately).
 */
public final class Optimizer implements AutoCloseable {

    /** A parameter's live optimizer state (for checkpointing): moments m, v [same shape] and its step count t. */
    public record MomentState(Tensor m, Tensor v, int step) {
    }

    /** A parameter's saved optimizer state, on the host (to resume with {@link #loadState}). */
    public record SavedMoments(float[] m, float[] v, int step) {
    }

    private static final class Slot {
        Tensor m;   // first moment, shape of the parameter, F32
        Tensor v;   // second moment
        int step;
    }

    private final OptimizerPolicy policy;
    private final OptimizerConfig config;
    private final List<Parameter> params;                    // all parameters, for zeroGrad
    private final double[] lrMultiplier;                     // group lr / base lr, fixed at create
    private final Map<Parameter, FaProjection> projections;  // LoRA-FA, keyed by B (identity)
    private final Map<String, Slot> slots = new LinkedHashMap<>();
    private List<ParamGroup> groups;
    private float lr;
    private int steps;
    private boolean closed;

    private Optimizer(OptimizerPolicy policy, OptimizerConfig config, List<Parameter> params,
                      List<ParamGroup> groups, Map<Parameter, FaProjection> projections) {
        this.policy = policy;
        this.config = config;
        this.params = params;
        this.groups = groups;
        this.projections = projections;
        this.lr = config.lr();
        this.lrMultiplier = new double[groups.size()];
        for (int i = 0; i < groups.size(); i++) {
            lrMultiplier[i] = (double) groups.get(i).lr() / config.lr();
        }
    }

    /**
     * @param params ALL parameters of the model (trainable ones are optimised, frozen ones skipped); names must
     *               be unique (they key the state)
     * @param pairs  LoRA-FA's (A, B, s) per module ({@link #pairsOf}); must then cover every trainable LORA_A and
     *               LORA_B parameter, and every A is frozen here. Ignored by the other policies (may be empty).
     */
    public static Optimizer create(OptimizerPolicy policy, OptimizerConfig config, List<Parameter> params,
                                   List<LoraPair> pairs) {
        Objects.requireNonNull(policy, "policy");
        Objects.requireNonNull(config, "config");
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(pairs, "pairs");
        Set<String> names = new HashSet<>();
        for (Parameter p : params) {
            Checks.require(p != null, "params", null, "must not contain null");
            Checks.require(names.add(p.name()), "params", p.name(), "must have unique names; duplicate");
        }
        if (policy instanceof LoraFaPolicy fa && fa.rule() == LoraFaPolicy.UpdateRule.PEFT) {
            checkPeftDecay(config.lr(), config.weightDecay());
        }
        List<Parameter> all = List.copyOf(params);
        Map<Parameter, FaProjection> proj = policy instanceof LoraFaPolicy
                ? FaProjection.prepare(all, pairs) : Map.of();      // freezes every A
        List<Parameter> trainable = all.stream().filter(Parameter::trainable).toList();
        return new Optimizer(policy, config, all, Grouping.build(policy, config, trainable), proj);
    }

    /**
     * LoRA-FA pairs of LoRA/DoRA modules: (LORA_A, LORA_B, module.scaling()). Throws for any other module: the
     * projection assumes ΔW = s·B·A, which AdaLoRA (B·diag(E)·A) and VeRA (frozen shared A, B) do not have.
     */
    public static List<LoraPair> pairsOf(List<AdaptedLinear> modules) {
        List<LoraPair> out = new ArrayList<>();
        for (AdaptedLinear m : modules) {
            Checks.require(m.config() instanceof LoraConfig, "LoRA-FA module " + m.name(), m.config().peftType(),
                    "must be a LoRA or DoRA adapter (LoRA-FA projects B's gradient for ΔW = s·B·A)");
            Parameter a = m.parameter(Parameter.Role.LORA_A);
            Parameter b = m.parameter(Parameter.Role.LORA_B);
            Checks.require(a != null && b != null, "LoRA-FA module " + m.name(), m.config(),
                    "must have LORA_A and LORA_B parameters");
            out.add(new LoraPair(a, b, m.scaling()));
        }
        return List.copyOf(out);
    }

    public OptimizerPolicy policy() {
        return policy;
    }

    public OptimizerConfig config() {
        return config;
    }

    /** The param groups with their current learning rates, in the policy's order. */
    public List<ParamGroup> groups() {
        return groups;
    }

    /** The current base learning rate (the config's until {@link #setLearningRate}). */
    public float learningRate() {
        return lr;
    }

    /**
     * Sets the base learning rate; every group keeps its ratio to it (LoRA+: B at ratio·lr, embedding at
     * lrEmbedding·lr/config.lr). For LR schedules.
     */
    public void setLearningRate(float newLr) {
        Checks.require(Float.isFinite(newLr) && newLr >= 0, "lr", newLr, "must be finite and >= 0");
        if (peftRule()) {
            checkPeftDecay(newLr, config.weightDecay());
        }
        List<ParamGroup> next = new ArrayList<>(groups.size());
        for (int i = 0; i < groups.size(); i++) {
            next.add(groups.get(i).withLr((float) (newLr * lrMultiplier[i])));
        }
        groups = List.copyOf(next);
        lr = newLr;
    }

    /** Number of completed {@link #step()} calls. */
    public int stepCount() {
        return steps;
    }

    /** What one step updates: a parameter with a gradient, its group and LoRA-FA projection (or null). */
    private record Work(Parameter p, ParamGroup group, FaProjection projection) {
    }

    /** One update of every trainable parameter that has a gradient. */
    public void step() {
        checkOpen();
        List<Work> work = work();
        for (Work w : work) {
            requireFinite(w.p.grad(), w.p.name(), "gradient");
        }
        Tensor[] grads = new Tensor[work.size()];
        for (int i = 0; i < grads.length; i++) {
            Work w = work.get(i);
            grads[i] = w.projection == null ? w.p.grad() : w.projection.project(w.p.grad());
            if (w.projection != null) {
                requireFinite(grads[i], w.p.name(), "LoRA-FA projected gradient");
            }
        }
        Slot[] state = slots(work);
        for (int i = 0; i < state.length; i++) {
            Work w = work.get(i);
            w.p.value().backend().adamw(w.p.value(), grads[i], state[i].m, state[i].v, hyper(w, state[i]));
            w.p.markChanged();
        }
        steps++;
    }

    /**
     * One update of every trainable parameter that has a gradient, in one {@link Backend#adamwClipped} call: the
     * gradients are clipped to {@code maxNorm} by the global norm that {@link Backend#sumSquaresTo} left in slot
     * {@code normAt} of {@code stats}, and a NaN or infinite norm leaves every parameter, moment and gradient as
     * it was, all on the device: no host transfer, so a training step can run as one CUDA graph. The caller reads
     * the norm after the step and reports a non-finite one (no parameter was updated); step counts still advance,
     * so such a run must not go on (the Trainer stops it). Unlike {@link #step()}, no per-parameter NaN check.
     */
    public void stepClipped(Tensor stats, int normAt, float maxNorm) {
        checkOpen();
        List<Work> work = work();
        if (work.isEmpty()) {
            steps++;
            return;
        }
        List<Tensor> ps = new ArrayList<>(work.size()), gs = new ArrayList<>(work.size());
        List<Tensor> ms = new ArrayList<>(work.size()), vs = new ArrayList<>(work.size());
        List<AdamW> hps = new ArrayList<>(work.size());
        Slot[] state = slots(work);
        for (int i = 0; i < state.length; i++) {
            Work w = work.get(i);
            ps.add(w.p.value());
            gs.add(w.projection == null ? w.p.grad() : w.projection.project(w.p.grad()));
            ms.add(state[i].m);
            vs.add(state[i].v);
            hps.add(hyper(w, state[i]));
        }
        ps.getFirst().backend().adamwClipped(ps, gs, ms, vs, hps, stats, normAt, maxNorm);
        work.forEach(w -> w.p.markChanged());   // the layers' bf16 stages are refreshed before their next forward
        steps++;
    }

    /** The parameters this step updates, each open (else nothing is updated). */
    private List<Work> work() {
        List<Work> work = new ArrayList<>();
        for (ParamGroup g : groups) {
            for (Parameter p : g.params()) {
                if (p.trainable() && p.grad() != null) {
                    work.add(new Work(p, g, projections.get(p)));
                }
            }
        }
        for (Work w : work) {
            if (w.p.value().isClosed()) {
                throw new IllegalStateException("parameter " + w.p.name() + " is closed; no parameter was updated");
            }
        }
        return work;
    }

    private Slot[] slots(List<Work> work) {
        Slot[] state = new Slot[work.size()];
        for (int i = 0; i < state.length; i++) {
            state[i] = slot(work.get(i).p);
        }
        return state;
    }

    /** Advances the slot's step count and returns this update's hyper-parameters (group lr, PEFT's rule). */
    private AdamW hyper(Work w, Slot s) {
        s.step++;
        return peftRule()
                ? hfAdamW(w.group.lr(), config.beta1(), config.beta2(), config.eps(), w.group.weightDecay(), s.step)
                : new AdamW(w.group.lr(), config.beta1(), config.beta2(), config.eps(), w.group.weightDecay(),
                        s.step);
    }

    /** Zeroes the gradient of every parameter (keeps the buffers). */
    public void zeroGrad() {
        for (Parameter p : params) {
            p.zeroGrad();
        }
    }

    /** The live state of every parameter updated at least once, by name, in first-update order. */
    public Map<String, MomentState> state() {
        checkOpen();
        Map<String, MomentState> out = new LinkedHashMap<>();
        slots.forEach((name, s) -> out.put(name, new MomentState(s.m, s.v, s.step)));
        return Collections.unmodifiableMap(out);
    }

    /**
     * Resumes from a checkpoint: sets the step count and, for each named parameter (one this optimizer updates),
     * its moments and step count. Everything is validated before anything is changed.
     */
    public void loadState(int stepCount, Map<String, SavedMoments> saved) {
        checkOpen();
        Checks.require(stepCount >= 0, "stepCount", stepCount, "must be >= 0");
        Map<String, Parameter> byName = new LinkedHashMap<>();
        for (ParamGroup g : groups) {
            g.params().forEach(p -> byName.put(p.name(), p));
        }
        saved.forEach((name, s) -> {
            Parameter p = byName.get(name);
            Checks.require(p != null, "saved optimizer state", name, "must name a parameter this optimizer updates");
            long n = p.value().numel();
            Checks.require(s.m().length == n && s.v().length == n, "saved moments of " + name,
                    s.m().length + "/" + s.v().length, "must have " + n + " elements");
            Checks.require(s.step() >= 1, "saved step of " + name, s.step(), "must be >= 1");
        });
        saved.forEach((name, s) -> {
            Parameter p = byName.get(name);
            Slot slot = slot(p);
            Backend be = p.value().backend();
            try (Tensor m = be.upload(s.m(), DType.F32, p.value().shape());
                 Tensor v = be.upload(s.v(), DType.F32, p.value().shape())) {
                be.copy(m, slot.m);
                be.copy(v, slot.v);
            }
            slot.step = s.step();
        });
        steps = stepCount;
    }

    /** Releases the moments and LoRA-FA buffers; idempotent. Parameters are not touched. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Slot s : slots.values()) {
            s.m.close();
            s.v.close();
        }
        slots.clear();
        projections.values().forEach(FaProjection::close);
    }

    private boolean peftRule() {
        return policy instanceof LoraFaPolicy fa && fa.rule() == LoraFaPolicy.UpdateRule.PEFT;
    }

    /** PEFT's rule multiplies B by (1 − lr·wd) after each step: that factor must stay positive. */
    private static void checkPeftDecay(float lr, float weightDecay) {
        Checks.require((double) lr * weightDecay < 1, "lr·weight_decay of LoRA-FA's PEFT rule", lr * weightDecay,
                "must be < 1 (B is multiplied by 1 − lr·wd after each step)");
    }

    /**
     * One step of HF's AdamW (PEFT's LoraFAOptimizer, correct_bias=True) expressed as torch's AdamW kernel. HF:
     * {@code p ← (p − lr·√bc2/bc1 · m/(√v + eps))·d} with {@code d = 1 − lr·wd}, {@code bc_i = 1 − β_i^t}. torch
     * AdamW with (lr', wd', eps') computes {@code p·(1 − lr'·wd') − lr'·√bc2/bc1 · m/(√v + eps'·√bc2)}; so
     * {@code lr' = lr·d}, {@code wd' = wd/d}, {@code eps' = eps/√bc2} give exactly HF's update (same moments).
     */
    static AdamW hfAdamW(float lr, float beta1, float beta2, float eps, float weightDecay, int step) {
        double d = 1.0 - (double) lr * weightDecay;
        double bc2 = 1.0 - Math.pow(beta2, step);
        return new AdamW((float) (lr * d), beta1, beta2, (float) (eps / Math.sqrt(bc2)),
                (float) (weightDecay / d), step);
    }

    private Slot slot(Parameter p) {
        Slot s = slots.get(p.name());
        if (s == null) {
            Backend be = p.value().backend();
            s = new Slot();
            s.m = be.zeros(DType.F32, p.value().shape()).named(p.name() + ".exp_avg");
            s.v = be.zeros(DType.F32, p.value().shape()).named(p.name() + ".exp_avg_sq");
            slots.put(p.name(), s);
        }
        return s;
    }

    private static void requireFinite(Tensor t, String name, String what) {
        long bad = t.backend().countNonFinite(t);
        if (bad > 0) {
            throw new IllegalStateException("non-finite " + what + " of parameter " + name + " (" + bad + " of "
                    + t.numel() + " elements are NaN or infinite); no parameter was updated");
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("optimizer is closed");
        }
    }
}
