package ai.lorakit.adapters;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;

import java.util.Arrays;
import java.util.List;

/**
 * A frozen linear layer plus one adapter (ARCHITECTURE.md layer 3): y = x op(W) + b + Δ(x), where Δ is the
 * parametrisation chosen by the config (LoRA, DoRA, VeRA, AdaLoRA). W is [out,in] (torch Linear: y = x W^T)
 * or [in,out] when {@code fanInFanOut} (GPT-2 Conv1D: y = x W). x [N,in], y [N,out] (x may also be
 * [B,T,in]; then y is [B,T,out] and N = B*T).
 *
 * <p>API contract (other modules code against it): forward writes y into the caller's buffer (a caller that needs
 * a fresh tensor allocates it and passes it); in training mode it caches what backward needs; backward writes dx
 * into the caller's buffer likewise and accumulates (+=) into the trainable parameters' gradients. merge folds the adapter into
 * W, unmerge restores W. The layer keeps its temporaries ({@link Scratch}) between calls, so a training step of
 * an unchanged batch shape allocates no device memory.
 *
 * <p>Structure: this class does everything that is the same for all variants (shape checks, dropout, train and
 * eval, enable/disable, merged state, the forward cache, lifetimes); the maths is in one small {@link Variant}
 * per parametrisation (hooks init, forward, backward, merge, unmerge). Only {@link Backend} ops are used, so the
 * layer runs on any backend; the fused LoRA-family ops (loraLinearForward, doraWeightNorm, veraForward) are
 * called where they fit.
 *
 * <p>Ownership: W and bias belong to the caller (only merge/unmerge write W). The layer owns its adapter
 * tensors (A, B, E, m, λb, λd), their gradients, its caches and its scratch; VeRA's shared projections belong to the model.
 *
 * <p>Dropout (on the adapter input only, training mode only; VARIANTS.md section 1) is inverted dropout with the
 * backend's counter-based mask {@link Backend#dropoutMask}. The mask seed of the k-th training forward that
 * applies dropout is {@link #dropoutSeed(long) dropoutSeed(k)}: the k-th output of SplitMix64 started at
 * mix64(seed ^ "lorakitD"), seed being create()'s. Masks are thus deterministic per layer and step; a resumed run
 * restores the counter with {@link #setDropoutStep}. Element i of the mask (row-major index into x) is
 * {@link ai.lorakit.gpu.Dropout#maskValue Dropout.maskValue(dropoutSeed(k), i, p)}.
 */
public final class AdaptedLinear implements AutoCloseable {
    /** "lorakitD": separates the dropout stream from the init stream of the same seed. */
    private static final long DROPOUT_SALT = 0x6C6F72616B697444L;

    private final BaseLinear base;
    private final AdapterConfig config;
    /** Replaced only by {@link #shareLowRank} (LoRA-drop). */
    private Variant variant;
    /** Sees the input of every forward that runs the adapter (LoRA-drop's importance meter), or null. */
    private InputObserver observer;
    private final long dropoutBase;
    private long dropoutStep;
    private boolean training;
    private boolean enabled = true;
    private boolean merged;
    private boolean closed;
    /** What the last training forward kept for backward; null otherwise. */
    private ForwardCache cache;

    private AdaptedLinear(BaseLinear base, AdapterConfig config, Variant variant, long seed) {
        this.base = base;
        this.config = config;
        this.variant = variant;
        this.dropoutBase = SplitMix64.mix64(seed ^ DROPOUT_SALT);
    }

    /**
     * Attaches an adapter to a frozen layer. {@code shared} is the model's VeRA projections (required for
     * VeraConfig, null otherwise); {@code seed} seeds the initialisation of A/B.
     *
     * @param name        full module name; parameters are named name + ".lora_A" etc.
     * @param weight      W [out,in], or [in,out] when fanInFanOut (not owned)
     * @param bias        b [out] or null (not owned)
     * @param fanInFanOut W is stored [in,out] (GPT-2 Conv1D)
     * @throws ShapeException           W or bias has the wrong rank or size
     * @throws IllegalArgumentException null arguments; VeRA projections missing, of another r, or too small
     */
    public static AdaptedLinear create(String name, Tensor weight, Tensor bias, boolean fanInFanOut,
                                       AdapterConfig config, VeraProjections shared, long seed) {
        if (name == null || name.isEmpty()) {
            throw new IllegalArgumentException("layer name must be non-empty, got " + name);
        }
        if (weight == null || config == null) {
            throw new IllegalArgumentException("layer " + name + ": weight and config are required, got weight="
                    + weight + ", config=" + config);
        }
        weight.checkOpen();
        if (weight.rank() != 2) {
            throw new ShapeException("layer " + name + ": weight " + weight + " must be 2-d ("
                    + (fanInFanOut ? "[in,out] with fan_in_fan_out" : "[out,in]") + ")");
        }
        int in = fanInFanOut ? weight.dim(0) : weight.dim(1);
        int out = fanInFanOut ? weight.dim(1) : weight.dim(0);
        if (bias != null) {
            bias.checkOpen();
            if (bias.rank() != 1 || bias.dim(0) != out) {
                throw new ShapeException("layer " + name + ": bias " + bias + " must be [out=" + out + "] for weight "
                        + weight + (fanInFanOut ? " (fan_in_fan_out)" : ""));
            }
            if (bias.backend() != weight.backend()) {
                throw new IllegalArgumentException("layer " + name + ": bias " + bias + " and weight " + weight
                        + " live on different backends");
            }
        }
        if (config instanceof VeraConfig) {
            if (shared == null) {
                throw new IllegalArgumentException("layer " + name + ": VeRA needs the model's shared"
                        + " VeraProjections, got null");
            }
        } else if (shared != null) {
            throw new IllegalArgumentException("layer " + name + ": VeRA projections given for a " + config.peftType()
                    + " adapter");
        }
        BaseLinear b = new BaseLinear(name, weight.backend(), weight, bias, fanInFanOut, in, out,
                new Scratch(weight.backend()));
        return new AdaptedLinear(b, config, Variant.create(b, config, shared, seed), seed);
    }

    public String name() {
        return base.name();
    }

    public int inFeatures() {
        return base.in();
    }

    public int outFeatures() {
        return base.out();
    }

    public boolean fanInFanOut() {
        return base.fifo();
    }

    /** The base weight (frozen; changed only by merge/unmerge and Delta-LoRA). */
    public Tensor weight() {
        return base.w();
    }

    /** The base bias [out], or null. */
    public Tensor bias() {
        return base.bias();
    }

    public AdapterConfig config() {
        return config;
    }

    /** The layer's scaling s (alpha/r, alpha/sqrt(r), AdaLoRA's alpha/init_r; 1 for VeRA). */
    public float scaling() {
        return variant.scaling();
    }

    /** The adapter's parameters, trainable and frozen, with full names (name() + "." + lora_A, ...). VeRA's shared
     *  projections are the model's and are not listed. */
    public List<Parameter> parameters() {
        return variant.parameters();
    }

    /** The parameter with this role, or null. */
    public Parameter parameter(Parameter.Role role) {
        for (Parameter p : variant.parameters()) {
            if (p.role() == role) {
                return p;
            }
        }
        return null;
    }

    /**
     * y (written) = the adapted layer's output for x [N,in] (or [B,T,in]); y [N,out] (x's leading dims) is the
     * caller's. Disabled or merged: the plain base layer x op(W) + b. In training mode what backward needs is
     * kept for one {@link #backward}; a later forward replaces it. The layer keeps a reference to x (not a copy)
     * when its backward needs the input (trainable A, no dropout): x must then stay open and unchanged until
     * backward.
     *
     * @throws ShapeException x's last dimension is not in, y is not x's shape with out as last dimension, or
     *                        either lives on another backend
     */
    public void forward(Tensor x, Tensor y) {
        checkInput(x);
        if (y == null) {
            throw new IllegalArgumentException("layer " + name() + ": forward output y is null");
        }
        y.checkOpen();
        if (y.rank() < 1 || y.cols() != base.out() || y.rows() != x.rows() || y.backend() != base.backend()) {
            throw new ShapeException("layer " + name() + ": output y " + y + " must be [N=" + x.rows() + ", out="
                    + base.out() + "] for input " + x + " on backend " + base.backend().name());
        }
        dropCache();
        Backend be = base.backend();
        boolean plain = !enabled || merged;
        float p = config.dropout();
        boolean drop = !plain && training && p > 0f;
        long maskSeed = drop ? dropoutSeed(dropoutStep++) : 0L;
        ForwardCache c = training ? new ForwardCache(x.rows(), x.shape(), plain, drop, maskSeed) : null;
        if (plain) {
            base.forward(x, y, true);
        } else {
            Tensor xd = x;
            if (drop) {
                xd = base.scratch().get("xd", x.shape());
                be.dropoutMask(xd, p, maskSeed);
                be.mul(x, xd, xd);                           // x_d = x ∘ mask
            }
            // bf16 activations: the base output and the update are summed in fp32, then rounded once into y
            // (ARCHITECTURE.md "Precision"): by the variant's one GEMM, or through an fp32 temporary
            boolean once = variant.stagesMargins() && MarginStage.applies(x, xd);
            Tensor y32 = y.dtype() == DType.F32 || once ? y : base.scratch().get("y32", y.shape());
            variant.forward(base, x, xd, y32, c);
            if (y32 != y) {
                be.copy(y32, y);
            }
            if (observer != null) {
                observer.observe(this, x);
            }
            if (c != null && variant.needsInput()) {
                c.xd = xd;
            }
        }
        cache = c;
    }

    /**
     * dx (written) = dL/dx for dy = dL/dy (same shape as the last training forward's output); dx is the caller's,
     * shaped like that forward's x. Accumulates (+=) into the gradients of the trainable adapter parameters
     * (frozen ones are skipped, e.g. LoRA-FA's A); W and bias get no gradient. Consumes the forward's cache.
     *
     * @throws IllegalStateException no training-mode forward since the last backward (or merge/unmerge)
     * @throws ShapeException        dy is not [N,out] for that forward's N, or dx is not [N,in]
     */
    public void backward(Tensor dy, Tensor dx) {
        checkGradient(dy);
        if (dx == null) {
            throw new IllegalArgumentException("layer " + name() + ": backward output dx is null");
        }
        dx.checkOpen();
        if (dx.numel() != Tensor.numel(cache.xShape) || dx.cols() != base.in() || dx.backend() != base.backend()) {
            throw new ShapeException("layer " + name() + ": input gradient dx " + dx + " must be shaped like the"
                    + " forward's input " + Arrays.toString(cache.xShape) + " on backend " + base.backend().name());
        }
        Backend be = base.backend();
        try (ForwardCache c = cache) {
            cache = null;
            if (c.plain) {
                base.inputGrad(dy, dx, 0f);
                return;
            }
            // as in forward: the base and adapter parts of dx are summed in fp32 and rounded once
            boolean once = c.stage != null && !c.dropout;                 // the staged backward's one GEMM
            Tensor dx32 = dx.dtype() == DType.F32 || once ? dx : base.scratch().get("dx32", dx.shape());
            if (!c.dropout) {
                variant.backward(base, dy, c, dx32, dx32);
            } else {
                Tensor dxd = base.scratch().zeroed("dxd", c.xShape);
                variant.backward(base, dy, c, dx32, dxd);
                Tensor mask = base.scratch().get("mask", c.xShape);
                be.dropoutMask(mask, config.dropout(), c.maskSeed);   // the forward's mask, redrawn
                be.mul(dxd, mask, dxd);
                be.axpby(1f, dxd, 1f, dx32);
            }
            if (dx32 != dx) {
                be.copy(dx32, dx);
            }
        }
    }

    private void checkInput(Tensor x) {
        checkOpen();
        if (x == null) {
            throw new IllegalArgumentException("layer " + name() + ": forward input x is null");
        }
        x.checkOpen();
        if (x.rank() < 1 || x.cols() != base.in() || x.backend() != base.backend()) {
            throw new ShapeException("layer " + name() + ": input x " + x + " must be [N," + base.in() + "] (in="
                    + base.in() + ") on backend " + base.backend().name());
        }
    }

    private void checkGradient(Tensor dy) {
        checkOpen();
        if (cache == null) {
            throw new IllegalStateException("layer " + name() + ": backward without a preceding training-mode forward"
                    + " (call setTraining(true), then forward; each forward allows one backward)");
        }
        if (dy == null) {
            throw new IllegalArgumentException("layer " + name() + ": backward input dy is null");
        }
        dy.checkOpen();
        if (dy.rank() < 1 || dy.cols() != base.out() || dy.rows() != cache.tokens
                || dy.backend() != base.backend()) {
            throw new ShapeException("layer " + name() + ": gradient dy " + dy + " must be [N=" + cache.tokens
                    + ", out=" + base.out() + "] like the forward's output, on backend " + base.backend().name());
        }
        if (!cache.plain && cache.xd == null && variant.needsInput()) {
            throw new IllegalStateException("layer " + name() + ": lora_A (or lora_E) was frozen during the forward, so"
                    + " the layer input was not kept, and unfrozen before backward; unfreeze before the forward");
        }
    }

    /** Training mode: forward caches for backward and applies dropout. Eval (default): neither. */
    public void setTraining(boolean training) {
        checkOpen();
        this.training = training;
        if (!training) {
            dropCache();
        }
    }

    public boolean training() {
        return training;
    }

    /** Disabling gives the plain base forward; a merged adapter is unmerged first (as PEFT's disable_adapters). */
    public void setEnabled(boolean enabled) {
        checkOpen();
        if (!enabled && merged) {
            unmerge();
        }
        this.enabled = enabled;
    }

    public boolean enabled() {
        return enabled;
    }

    /**
     * Folds the adapter into W (VARIANTS.md: LoRA/AdaLoRA/VeRA W += ΔW, DoRA W <- f ∘ (W + ΔW)); afterwards the
     * forward is the plain base layer. Merging a merged layer does nothing (PEFT: "already merged"). Safe merge:
     * if any merged value would be NaN or infinite, W is left untouched and an IllegalStateException
     * "NaNs detected in the merged weights. The adapter NAME seems to be broken" is thrown.
     */
    public void merge() {
        checkOpen();
        if (merged) {
            return;
        }
        dropCache();
        variant.merge(base);
        variant.weightChanged();
        merged = true;
    }

    /** Restores W (the reverse of merge, up to rounding); does nothing when not merged. */
    public void unmerge() {
        checkOpen();
        if (!merged) {
            return;
        }
        dropCache();
        variant.unmerge(base);
        variant.weightChanged();
        merged = false;
    }

    /**
     * Says that W was changed in place by its owner (Delta-LoRA's update, a restored checkpoint): the layer
     * re-stages its bf16 copy of W before the next forward.
     */
    public void weightChanged() {
        variant.weightChanged();
    }

    public boolean merged() {
        return merged;
    }

    /** VeRA's shared projections this layer reads (the model's, same objects for every layer), or null. */
    public VeraProjections veraProjections() {
        return variant instanceof VeraVariant v ? v.shared : null;
    }

    /** Sees the layer input x [N,in] of a forward that ran the adapter (not disabled, not merged), after it ran. */
    @FunctionalInterface
    public interface InputObserver {
        void observe(AdaptedLinear layer, Tensor x);
    }

    /** Installs (or with null removes) the one input observer, e.g. LoRA-drop's importance meter. */
    public void setInputObserver(InputObserver o) {
        checkOpen();
        this.observer = o;
    }

    /**
     * LoRA-drop (VARIANTS.md section 8): this plain-LoRA layer's A [r,in] and B [out,r] become {@code a} and
     * {@code b}, the same Parameter objects other layers use, so every tied layer reads the same tensors and its
     * backward accumulates into the same gradients. The layer's own A and B are closed; the shared ones belong to
     * the caller (closing this layer leaves them open). The scaling s stays this layer's.
     *
     * @throws IllegalArgumentException not a plain LoRA layer (DoRA, VeRA, AdaLoRA), wrong roles, shapes or backend
     * @throws IllegalStateException    the layer is merged
     */
    public void shareLowRank(Parameter a, Parameter b) {
        checkOpen();
        if (!(variant instanceof LoraVariant own)) {
            throw new IllegalArgumentException("layer " + name() + ": only a plain LoRA layer can share A and B, this"
                    + " is " + this);
        }
        if (merged) {
            throw new IllegalStateException("layer " + name() + " is merged; unmerge it before sharing A and B");
        }
        if (a == null || b == null || a.role() != Parameter.Role.LORA_A || b.role() != Parameter.Role.LORA_B
                || !Arrays.equals(a.value().shape(), own.a.value().shape())
                || !Arrays.equals(b.value().shape(), own.b.value().shape())
                || a.value().backend() != base.backend() || b.value().backend() != base.backend()) {
            throw new IllegalArgumentException("layer " + name() + ": shared A, B must be LORA_A " + own.a.value()
                    + " and LORA_B " + own.b.value() + " on backend " + base.backend().name() + ", got " + a + " "
                    + (a == null ? "" : a.value()) + ", " + b + " " + (b == null ? "" : b.value()));
        }
        if (a == own.a && b == own.b) {
            return;                                          // already reading these tensors
        }
        dropCache();
        variant = LoraVariant.shared(a, b, own.s);
        own.close();
    }

    /**
     * Bytes of the layer's work tensors now: its temporaries and, on the staged path, the bf16 stages and margin
     * buffers (a bf16 copy of W among them, LoraMargins).
     */
    public long workBytes() {
        return base.scratch().bytes();
    }

    /** The layer's work tensors (its variant's bf16 stages among them); for tests in this package. */
    Scratch scratch() {
        return base.scratch();
    }

    /** The adapter rank r (rows of A, or VeRA's shared r). */
    public int rank() {
        return variant.rank();
    }

    /** Number of training forwards so far that drew a dropout mask (the next one uses dropoutSeed(this)). */
    public long dropoutStep() {
        return dropoutStep;
    }

    /** Restores the dropout counter (resume from a checkpoint). */
    public void setDropoutStep(long step) {
        if (step < 0) {
            throw new IllegalArgumentException("layer " + name() + ": dropout step must be >= 0, got " + step);
        }
        this.dropoutStep = step;
    }

    /** The dropout mask seed of this layer's step-th dropout forward (0-based); see the class Javadoc. */
    public long dropoutSeed(long step) {
        return SplitMix64.mix64(dropoutBase + (step + 1) * 0x9E3779B97F4A7C15L);
    }

    /**
     * Releases the adapter's tensors, gradients and caches; W, bias and VeRA's shared projections stay open.
     * A merged layer stays merged in W. Idempotent.
     */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        dropCache();
        variant.close();
        base.scratch().close();
    }

    @Override
    public String toString() {
        return "AdaptedLinear(" + name() + ", " + config.peftType() + (config instanceof LoraConfig l && l.useDora()
                ? "+DoRA" : "") + ", in=" + base.in() + ", out=" + base.out() + ", W" + Arrays.toString(base.w().shape())
                + (base.fifo() ? " fifo" : "") + (merged ? ", merged" : "") + (enabled ? "" : ", disabled") + ")";
    }

    private void dropCache() {
        if (cache != null) {
            cache.close();
            cache = null;
        }
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("layer " + name() + " is closed");
        }
    }
}
