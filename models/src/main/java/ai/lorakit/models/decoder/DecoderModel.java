package ai.lorakit.models.decoder;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.HfWeights;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.layers.Buffers;
import ai.lorakit.models.layers.Linear;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.layers.PreNormBlock;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * A decoder-only causal language model of any {@link Family}, with forward and backward written layer by layer on
 * the {@link Backend} ops, llm.c style (ARCHITECTURE.md, layer 4 and "Data flow of one training step"):
 * <pre>
 * x = embedding(ids)                              [B,T,C]
 * x = block(x)   for each of the L blocks         (the family's composition, e.g. {@link PreNormBlock})
 * logits = lmHead(finalNorm(x))                   [N,V]
 * loss = mean cross-entropy of the next tokens (over the targets that are not CrossEntropy.IGNORE)
 * </pre>
 * It holds, once for every family, the base weights (HF names and order), the activation buffers, the train/eval
 * mode and the parameter lists. The backward runs in reverse; gradients flow to activations through frozen weights
 * but are computed for a parameter only when it is trainable.
 *
 * <p><b>No dropout</b> in the base model (fine-tuning regularises with adapter dropout, which {@link AdaptedLinear}
 * applies in training mode), so training and eval forwards of the base are the same function.
 *
 * <p>Training modes: by default every base parameter is frozen; {@link #attachAdapters} adds an {@link AdapterSet}
 * to the linear modules its config targets; {@link #setFullFineTune} makes every base parameter trainable (a tied
 * embedding then receives both its embedding and its lm_head gradient). Both may be combined.
 *
 * <p>Buffers: each layer's cache for a (B,T) shape lives in a {@link Buffers} set allocated once and reused by every
 * step of that shape; training and inference keep one set each (an inference call of the training shape reuses the
 * training set). Per step only the token ids are uploaded. Not thread-safe. The model does not own the backend.
 *
 * <p>Precision: one {@link Precision} given at construction decides the storage of the base weights (uploaded in
 * {@link Precision#weights()}) and of the activations (every {@link Buffers} set is made with it); the logits, the
 * softmax probabilities and the losses are F32 under every policy. Full fine-tuning needs F32 base weights (they
 * are the fp32 masters the optimizer updates): build the model with {@link Precision#withFp32Weights()}.
 */
public final class DecoderModel implements LanguageModel {

    private final Backend be;
    private final ModelConfig cfg;
    /** Every base parameter, HF order. */
    private final List<Parameter> base;
    private final Map<String, Parameter> byName;
    private final DecoderStack net;
    private final Precision precision;

    private boolean training = true;
    private boolean closed;
    private AdapterSet adapters;
    private Buffers trainBuf;
    /** The micro-batch whose ids and targets the forward and backward read ({@link #trainUploaded}; else 0). */
    private int micro;
    /** Counted targets of the micro-batches {@link #uploadStep} put in the training buffers, or null. */
    private int[] uploaded;
    private Buffers inferBuf;

    /** The model's own cache in a buffer set: logits [N,V] (the backward turns them into dlogits), probs, losses. */
    private static final class Head {
        final Tensor logits;
        /** The final norm's output [B,T,C] (the head's input), held by that norm's cache. */
        Tensor normOut;
        Tensor probs;
        Tensor losses;

        Head(Buffers buf, int v) {
            logits = buf.f32(buf.n(), v);
        }
    }

    private <C extends ModelConfig> DecoderModel(Backend be, Family<C> family, C cfg, Map<String, Tensor> values,
                                                 Precision precision) {
        this.be = be;
        this.cfg = cfg;
        this.precision = precision;
        Map<String, Parameter> ps = new LinkedHashMap<>();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            String name = e.getKey();
            ps.put(name, new Parameter(name, family.role(name), e.getValue().named(name), false));
        }
        this.byName = ps;
        this.base = List.copyOf(ps.values());
        this.net = family.build(cfg, this::baseParameter);
    }

    @SuppressWarnings("unchecked")
    private static <C extends ModelConfig> Family<C> familyOf(C cfg) {
        return (Family<C>) cfg.family();
    }

    /** Uploads host values (HF names -> fp32, in {@link Family#shapes} order) in the precision's weight dtype. */
    private static <C extends ModelConfig> DecoderModel upload(Backend be, C cfg, Map<String, float[]> host,
                                                               Precision precision) {
        if (precision == null) {
            throw new IllegalArgumentException("precision must not be null (use Precision.FP32)");
        }
        Family<C> family = familyOf(cfg);
        Map<String, Tensor> values = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, int[]> e : family.shapes(cfg).entrySet()) {
                values.put(e.getKey(), be.upload(host.get(e.getKey()), precision.weights(), e.getValue()));
            }
            return new DecoderModel(be, family, cfg, values, precision);
        } catch (RuntimeException ex) {
            values.values().forEach(Tensor::close);
            throw ex;
        }
    }

    // ================================================================ construction

    /**
     * A randomly initialised model: the family's {@link Family#init}, tensor by tensor in HF order, from one
     * {@code new SplittableRandom(seed)}.
     */
    public static <C extends ModelConfig> DecoderModel random(C cfg, Backend backend, long seed) {
        return random(cfg, backend, seed, Precision.FP32);
    }

    /** As {@link #random(ModelConfig, Backend, long)}, stored and run under {@code precision}. */
    public static <C extends ModelConfig> DecoderModel random(C cfg, Backend backend, long seed, Precision precision) {
        Family<C> family = familyOf(cfg);
        SplittableRandom rng = new SplittableRandom(seed);
        Map<String, float[]> host = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : family.shapes(cfg).entrySet()) {
            float[] v = new float[(int) Tensor.numel(e.getValue())];
            family.init(e.getKey(), v, cfg, rng);
            host.put(e.getKey(), v);
        }
        return upload(backend, cfg, host, precision);
    }

    /**
     * Loads a Hugging Face checkpoint directory (config.json + model.safetensors) of any registered family
     * ({@link Families#readConfig}, rules in {@link HfCheckpoint}).
     *
     * @throws CheckpointFormatException a missing file, a bad config, or missing / wrong-shaped tensors (all named)
     */
    public static DecoderModel load(Path hfDir, Backend backend) throws IOException {
        return load(hfDir, backend, Precision.FP32);
    }

    /** As {@link #load(Path, Backend)}, stored and run under {@code precision}. */
    public static DecoderModel load(Path hfDir, Backend backend, Precision precision) throws IOException {
        return load(hfDir, Families.readConfig(hfDir), backend, precision);
    }

    private static <C extends ModelConfig> DecoderModel load(Path hfDir, C cfg, Backend backend, Precision precision)
            throws IOException {
        return upload(backend, cfg, HfCheckpoint.read(hfDir, familyOf(cfg), cfg), precision);
    }

    /**
     * Writes the base model as a Hugging Face checkpoint (config.json + model.safetensors, each atomically) with
     * F32 or BF16 storage, sharded above transformers' default 5 GB ({@link #saveHf(Path, DType, long)}).
     */
    public void saveHf(Path dir, DType storage) throws IOException {
        saveHf(dir, storage, HfWeights.DEFAULT_MAX_SHARD_BYTES);
    }

    /**
     * Writes the base model as a Hugging Face checkpoint with F32 or BF16 storage: one model.safetensors, or shards
     * of at most {@code maxShardBytes} of data plus model.safetensors.index.json, then config.json (each atomically).
     * W is written as it is now: merged adapters are included, unmerged ones are not (save those with
     * {@link AdapterSet#savePeft}).
     */
    public void saveHf(Path dir, DType storage, long maxShardBytes) throws IOException {
        checkOpen();
        Map<String, float[]> host = new LinkedHashMap<>();
        for (Parameter p : base) {
            host.put(p.name(), be.download(p.value()));
        }
        HfCheckpoint.write(dir, cfg, familyOf(cfg).shapes(cfg), host, storage, maxShardBytes);
    }

    // ================================================================ adapters and trainability

    /** The adaptable linear modules' names in model order (the family's, e.g. transformer.h.0.attn.c_attn). */
    public List<String> linearModuleNames() {
        return List.copyOf(net.linears().keySet());
    }

    /**
     * Attaches an {@link AdapterSet} of {@code adapter}'s kind to the linear modules it targets; the adapters take
     * the model's training mode.
     *
     * @throws IllegalStateException adapters are already attached ({@link #detachAdapters} first)
     */
    public AdapterSet attachAdapters(AdapterConfig adapter, long seed) {
        checkOpen();
        if (adapters != null) {
            throw new IllegalStateException("adapters (" + adapters.config().peftType() + ") are already attached;"
                    + " call detachAdapters() first");
        }
        adapters = AdapterSet.attach(adapter, net.linears(), seed, training);
        return adapters;
    }

    /** The attached adapters, or null. */
    public AdapterSet adapters() {
        return adapters;
    }

    /**
     * Removes the adapters (closing their tensors and VeRA's projections). Merged adapters stay in W (PEFT's
     * merge_and_unload); unmerged ones are dropped. No-op without adapters.
     */
    public void detachAdapters() {
        checkOpen();
        if (adapters != null) {
            adapters.close();
            adapters = null;
        }
    }

    /**
     * Full fine-tuning on or off: makes every base parameter trainable, or frozen again (dropping their
     * gradients). Adapter parameters are not changed.
     *
     * @throws IllegalStateException turning it on while the base weights are not F32 (no fp32 master to train)
     */
    public void setFullFineTune(boolean on) {
        checkOpen();
        if (on && precision.weights() != DType.F32) {
            throw new IllegalStateException("full fine-tuning trains the base weights, which need fp32 masters, but"
                    + " this model stores them in " + precision.weights() + "; build it with precision "
                    + precision.withFp32Weights().name() + " (Precision#withFp32Weights)");
        }
        for (Parameter p : base) {
            p.setTrainable(on);
        }
    }

    /** True when every base parameter is trainable. */
    public boolean fullFineTune() {
        return base.stream().allMatch(Parameter::trainable);
    }

    public ModelConfig config() {
        return cfg;
    }

    /** The precision policy the model stores its weights and activations in. */
    public Precision precision() {
        return precision;
    }

    /**
     * Bytes of the parameters the model holds now (numel times dtype size, what a device stores): base weights,
     * adapter parameters, and their gradients. Optimizer state is not included (the optimizer owns it).
     */
    public long parameterBytes() {
        long n = 0;
        for (Parameter p : parameters()) {
            n += bytes(p.value()) + (p.grad() == null ? 0 : bytes(p.grad()));
        }
        return n;
    }

    /** Bytes of the activation buffer sets (training and inference) the model holds now. */
    public long activationBytes() {
        long n = 0;
        for (Buffers b : new Buffers[] {trainBuf, inferBuf}) {
            n += b == null ? 0 : b.bytes();
        }
        return n;
    }

    /**
     * Bytes of the adapted layers' work tensors now ({@link AdaptedLinear#workBytes}): temporaries, and on the
     * staged (bf16) path the stages and margin buffers, which include a bf16 copy of each adapted W.
     */
    public long adapterWorkBytes() {
        long n = 0;
        for (AdaptedLinear a : adaptedModules()) {
            n += a.workBytes();
        }
        return n;
    }

    private static long bytes(Tensor t) {
        return t.numel() * t.dtype().bytes();
    }

    /** The base parameter with this HF name (e.g. transformer.h.0.ln_1.weight), or IllegalArgumentException. */
    public Parameter baseParameter(String name) {
        Parameter p = byName.get(name);
        if (p == null) {
            throw new IllegalArgumentException("no base parameter '" + name + "'; names look like "
                    + base.get(0).name() + ", " + base.get(Math.min(2, base.size() - 1)).name());
        }
        return p;
    }

    /** The base parameters (HF order). */
    public List<Parameter> baseParameters() {
        return base;
    }

    // ================================================================ LanguageModel

    @Override
    public Backend backend() {
        return be;
    }

    @Override
    public int vocabSize() {
        return cfg.vocabSize();
    }

    @Override
    public int maxSeqLen() {
        return cfg.maxSeqLen();
    }

    /** Training mode (the default) applies adapter dropout; {@link #trainStep} needs it. */
    @Override
    public void setTraining(boolean on) {
        checkOpen();
        training = on;
        if (adapters != null) {
            adapters.setTraining(on);
        }
    }

    public boolean training() {
        return training;
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalStateException in eval mode (adapters only keep what their backward needs in training mode)
     * @throws IllegalArgumentException ragged or too long windows, ids outside [0,V), a non-finite gradScale
     */
    @Override
    public double trainStep(int[][] windows, float gradScale) {
        checkOpen();
        return train(Batch.of(windows, cfg, true), gradScale);
    }

    /**
     * {@inheritDoc}
     *
     * @throws IllegalStateException in eval mode
     * @throws IllegalArgumentException ragged or too long rows, ids outside [0,V), targets neither in [0,V) nor
     *                                  IGNORE, every target ignored, a non-finite gradScale
     */
    @Override
    public double trainStep(int[][] inputs, int[][] targets, float gradScale) {
        checkOpen();
        return train(Batch.of(inputs, targets, cfg), gradScale);
    }

    /**
     * {@inheritDoc} Micro-batch k's ids and targets live in their own slots of the training buffers (k = 0 in the
     * plain ones), so all are on the device before the first kernel.
     */
    @Override
    public int[] uploadStep(List<int[][]> inputs, List<int[][]> targets) {
        checkOpen();
        int g = inputs.size();
        if (g == 0 || targets.size() != g) {
            throw new IllegalArgumentException("uploadStep: " + g + " inputs and " + targets.size() + " targets must"
                    + " be the same non-zero count of micro-batches");
        }
        Batch[] bts = new Batch[g];
        for (int k = 0; k < g; k++) {
            bts[k] = Batch.of(inputs.get(k), targets.get(k), cfg);   // ids and targets range-checked on the host
            if (bts[k].b() != bts[0].b() || bts[k].t() != bts[0].t()) {
                throw new IllegalArgumentException("micro-batch " + k + " is [" + bts[k].b() + "," + bts[k].t()
                        + "] but micro-batch 0 is [" + bts[0].b() + "," + bts[0].t() + "]: one step's micro-batches"
                        + " must have one shape");
            }
        }
        Buffers buf = trainBuffers(bts[0], 1f);
        int[] counted = new int[g];
        for (int k = 0; k < g; k++) {
            setTokens(buf, bts[k], k);
            counted[k] = bts[k].counted();
        }
        uploaded = counted;
        return counted.clone();
    }

    /** {@inheritDoc} */
    @Override
    public void trainUploaded(float[] gradScales, Tensor stats) {
        checkOpen();
        if (uploaded == null) {
            throw new IllegalStateException("trainUploaded: no micro-batch uploaded (call uploadStep first)");
        }
        if (gradScales.length != uploaded.length) {
            throw new IllegalArgumentException("trainUploaded: " + gradScales.length + " gradScales for "
                    + uploaded.length + " uploaded micro-batches");
        }
        for (float scale : gradScales) {
            checkTrainable(scale);
        }
        Buffers buf = trainBuf;
        try {
            for (int k = 0; k < uploaded.length; k++) {
                micro = k;
                forward(buf);
                be.sumTo(crossEntropy(buf).losses, stats, k);               // ignored targets have loss 0
                backward(buf, gradScales[k] / uploaded[k]);
            }
        } finally {
            micro = 0;
        }
    }

    private double train(Batch bt, float gradScale) {
        Buffers buf = trainBuffers(bt, gradScale);
        setTokens(buf, bt);
        forward(buf);
        double loss = loss(buf, bt.counted());
        backward(buf, gradScale / bt.counted());
        return loss;
    }

    /** Training mode and a finite gradScale, or the exception naming the problem. */
    private void checkTrainable(float gradScale) {
        if (!training) {
            throw new IllegalStateException("trainStep needs training mode: call setTraining(true) (eval mode was set)");
        }
        if (!Float.isFinite(gradScale)) {
            throw new IllegalArgumentException("gradScale must be finite, got " + gradScale);
        }
    }

    /** The training buffers for this batch's shape (made again only when the shape changes). */
    private Buffers trainBuffers(Batch bt, float gradScale) {
        checkTrainable(gradScale);
        if (trainBuf == null || !trainBuf.fits(bt.b(), bt.t())) {
            uploaded = null;
            if (trainBuf != null) {
                trainBuf.close();
                trainBuf = null;
            }
            trainBuf = new Buffers(be, bt.b(), bt.t(), precision);
        }
        return trainBuf;
    }

    @Override
    public double evalLoss(int[][] windows) {
        checkOpen();
        return eval(Batch.of(windows, cfg, true));
    }

    @Override
    public double evalLoss(int[][] inputs, int[][] targets) {
        checkOpen();
        return eval(Batch.of(inputs, targets, cfg));
    }

    private double eval(Batch bt) {
        Buffers buf = inferenceBuffers(bt.b(), bt.t());
        setTokens(buf, bt);
        withEvalAdapters(() -> forward(buf));
        return loss(buf, bt.counted());
    }

    @Override
    public float[] logits(int[] tokens) {
        checkOpen();
        Batch bt = Batch.of(new int[][] {tokens}, cfg, false);
        Buffers buf = inferenceBuffers(1, bt.t());
        setTokens(buf, bt);
        withEvalAdapters(() -> forward(buf));
        return be.download(head(buf).logits);
    }

    /** One batched forward of the right-padded rows [B][T]; downloads the logits [B*T, V], keeps [B, V]. */
    @Override
    public float[] logitsAt(int[][] inputs, int[] positions) {
        checkOpen();
        Batch bt = Batch.of(inputs, cfg, false);
        if (positions.length != bt.b()) {
            throw new IllegalArgumentException("positions has " + positions.length + " entries for B=" + bt.b()
                    + " rows");
        }
        for (int b = 0; b < bt.b(); b++) {
            if (positions[b] < 0 || positions[b] >= bt.t()) {
                throw new IllegalArgumentException("position " + positions[b] + " of row " + b
                        + " is outside [0, T=" + bt.t() + ")");
            }
        }
        Buffers buf = inferenceBuffers(bt.b(), bt.t());
        setTokens(buf, bt);
        withEvalAdapters(() -> forward(buf));
        float[] all = be.download(head(buf).logits);                  // [B*T, V]
        int v = cfg.vocabSize();
        float[] out = new float[bt.b() * v];                           // [B, V]
        for (int b = 0; b < bt.b(); b++) {
            System.arraycopy(all, (b * bt.t() + positions[b]) * v, out, b * v, v);
        }
        return out;
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(base);
        if (adapters != null) {
            out.addAll(adapters.parameters());
        }
        return out;
    }

    @Override
    public List<AdaptedLinear> adaptedModules() {
        return adapters == null ? List.of() : adapters.modules();
    }

    /** Releases adapters, parameters, gradients and buffers (not the backend); idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        if (adapters != null) {
            adapters.close();
        }
        for (Parameter p : base) {
            if (p.grad() != null) {
                p.grad().close();
            }
            p.value().close();
        }
        for (Buffers b : new Buffers[] {trainBuf, inferBuf}) {
            if (b != null) {
                b.close();
            }
        }
        net.embedding().close();
    }

    // ================================================================ forward / backward

    /** The buffers for an inference forward: the training set when its shape matches (free between steps). */
    private Buffers inferenceBuffers(int b, int t) {
        if (trainBuf != null && trainBuf.fits(b, t)) {
            return trainBuf;
        }
        if (inferBuf == null || !inferBuf.fits(b, t)) {
            if (inferBuf != null) {
                inferBuf.close();
                inferBuf = null;
            }
            inferBuf = new Buffers(be, b, t, precision);
        }
        return inferBuf;
    }

    private void setTokens(Buffers buf, Batch bt) {
        uploaded = null;                                  // the slots of an uploaded step are overwritten
        setTokens(buf, bt, 0);
    }

    /** Micro-batch k's ids [B,T] and targets [N] into their slots ({@link #idsKey}). */
    private void setTokens(Buffers buf, Batch bt, int k) {
        buf.ints(idsKey(k), bt.ids(), bt.b(), bt.t());
        if (bt.targets() == null) {
            buf.replace(targetsKey(k), null);
        } else {
            buf.ints(targetsKey(k), bt.targets(), bt.b() * bt.t());
        }
    }

    /** The buffer slot of micro-batch k's token ids ("ids" for 0, the only one outside a multi-micro-batch step). */
    private static String idsKey(int k) {
        return k == 0 ? "ids" : "ids." + k;
    }

    private static String targetsKey(int k) {
        return k == 0 ? "targets" : "targets." + k;
    }

    private Head head(Buffers buf) {
        return buf.cache(this, b -> new Head(b, cfg.vocabSize()));
    }

    /** Runs body with every adapter in eval mode (no dropout, no cache), then restores the model's mode. */
    private void withEvalAdapters(Runnable body) {
        List<AdaptedLinear> ad = adaptedModules();
        if (training) {
            ad.forEach(x -> x.setTraining(false));
        }
        try {
            body.run();
        } finally {
            if (training) {
                ad.forEach(x -> x.setTraining(true));
            }
        }
    }

    /** Forward from the ids to the logits (llm.c gpt2_forward), every layer keeping its activations in buf. */
    private void forward(Buffers buf) {
        Tensor x = net.embedding().forward(buf, buf.slot(idsKey(micro)));     // residual stream [B,T,C]
        for (PreNormBlock block : net.blocks()) {
            x = block.forward(buf, x);
        }
        Head h = head(buf);
        h.normOut = net.finalNorm().forward(buf, x);
        net.lmHead().forward(h.normOut, h.logits);                    // [N,C] -> [N,V]
    }

    /** Mean cross-entropy over the {@code counted} non-ignored targets (fills probs for the backward). */
    private double loss(Buffers buf, int counted) {
        return be.sum(crossEntropy(buf).losses) / (double) counted;   // ignored targets have loss 0
    }

    /** Per-token losses and probs (for the backward) of the head's logits. */
    private Head crossEntropy(Buffers buf) {
        Head h = head(buf);
        if (h.probs == null) {
            h.probs = buf.f32(buf.n(), cfg.vocabSize());
            h.losses = buf.f32(buf.n());
        }
        be.crossEntropyForward(h.logits, buf.slot(targetsKey(micro)), h.probs, h.losses);
        return h;
    }

    /**
     * Backward of gradScale * mean loss, in reverse order of {@link #forward} (llm.c gpt2_backward); rowScale =
     * gradScale / counted targets (ignored targets get dlogits 0).
     */
    private void backward(Buffers buf, float rowScale) {
        Head h = head(buf);
        int c = cfg.hiddenSize();
        Tensor dlogits = h.logits;                              // the logits are no longer needed: reuse [N,V]
        be.crossEntropyBackward(h.probs, buf.slot(targetsKey(micro)), rowScale, dlogits);
        Tensor dnorm = buf.shared("model.dnorm", buf.b, buf.t, c);
        Tensor dres = buf.shared("model.dres", buf.b, buf.t, c);
        net.lmHead().backward(h.normOut, dlogits, dnorm);      // dW += dlogits^T x when trainable
        net.finalNorm().backward(buf, dnorm, dres);
        for (int l = net.blocks().size() - 1; l >= 0; l--) {
            net.blocks().get(l).backward(buf, dres);
        }
        net.embedding().backward(buf, dres);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("DecoderModel is closed");
        }
    }

    @Override
    public String toString() {
        return "DecoderModel(" + cfg.describe() + ", " + be.name() + (adapters == null ? "" : ", "
                + adapters.config().peftType() + " on " + adapters.modules().size() + " modules")
                + (fullFineTune() ? ", full fine-tune" : "") + ")";
    }
}
