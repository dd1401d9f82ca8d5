package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.models.LanguageModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * GPT-2 (Radford et al. 2019; Hugging Face's GPT2LMHeadModel) with forward and backward written layer by layer on
 * the {@link Backend} ops, llm.c style (ARCHITECTURE.md, layer 4 and "Data flow of one training step"):
 * <pre>
 * x = wte[ids] + wpe[t]                                          [B,T,C]
 * per block:  x = x + attn.c_proj(attention(attn.c_attn(ln_1(x))))     (qkv [B,T,3C], causal, H heads)
 *             x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))                (GELU tanh approximation, 4C wide)
 * logits = ln_f(x) wte^T                                         [N,V]   (lm_head tied to wte)
 * loss = mean cross-entropy of the next tokens
 * </pre>
 * Module and parameter names are HF's ({@code transformer.h.0.attn.c_attn.weight} ...), Conv1D weights stored
 * [in,out] (fan_in_fan_out). The backward runs in reverse with the *Backward ops; gradients flow to activations
 * through frozen weights but are computed for a parameter only when it is trainable (LayerNorm's backward op
 * always produces dgamma/dbeta: for frozen LayerNorms they go to a scratch sink that is never read).
 *
 * <p><b>No dropout</b> in the base model (HF's resid/embd/attn_pdrop are ignored; fine-tuning here regularises with
 * adapter dropout, which {@link AdaptedLinear} applies in training mode), so training and eval forwards of the base
 * are the same function.
 *
 * <p>Training modes: by default every base parameter is frozen; {@link #attachAdapters} adds adapters (LoRA, DoRA,
 * VeRA, AdaLoRA) to linear modules chosen by {@link TargetModules}; {@link #setFullFineTune} makes every base
 * parameter trainable (wte then receives both its embedding and its lm_head gradient). Both may be combined.
 *
 * <p>Buffers: all activations of a (B,T) shape are allocated once ({@link Activations}) and reused by every step of
 * that shape; training and inference keep one set each (an inference call of the training shape reuses the
 * training set). Per step only the token ids are uploaded (the Backend has no upload into an existing tensor) and
 * adapted layers allocate what AdaptedLinear's API returns (its output and dx, copied into the model's buffers).
 * Memory is llm.c's: every layer keeps its activations, including the attention probabilities [B,H,T,T].
 * Not thread-safe. The model does not own the backend.
 */
public final class Gpt2Model implements LanguageModel {

    /** A transformer block's parameters and linear layers. */
    private record Block(Parameter ln1W, Parameter ln1B, Linear cAttn, Linear attnProj,
                         Parameter ln2W, Parameter ln2B, Linear cFc, Linear mlpProj) {
        List<Linear> linears() {
            return List.of(cAttn, attnProj, cFc, mlpProj);
        }
    }

    private final Backend be;
    private final Gpt2Config cfg;
    /** Every base parameter, HF order. */
    private final List<Parameter> base;
    private final Map<String, Parameter> byName = new LinkedHashMap<>();
    /** wte [V,C] (also the lm_head), wpe [P,C], ln_f gamma/beta [C]. */
    private final Parameter wte;
    private final Parameter wpe;
    private final Parameter lnfW;
    private final Parameter lnfB;
    private final Block[] blocks;
    /** The linear modules in model order, keyed by module name. */
    private final Map<String, Linear> linears = new LinkedHashMap<>();

    private boolean training = true;
    private boolean closed;
    private AdapterConfig adapterConfig;
    private long adapterSeed;
    private VeraProjections vera;
    private List<Parameter> veraParams = List.of();
    private Activations trainActs;
    private Activations inferActs;
    /** Gradient sinks for embeddingBackward when only one of wte / wpe is trainable. */
    private Tensor wteSink;
    private Tensor wpeSink;

    private Gpt2Model(Backend be, Gpt2Config cfg, Map<String, Tensor> values) {
        this.be = be;
        this.cfg = cfg;
        List<Parameter> ps = new ArrayList<>();
        for (Map.Entry<String, Tensor> e : values.entrySet()) {
            Parameter p = new Parameter(e.getKey(), role(e.getKey()), e.getValue().named(e.getKey()), false);
            ps.add(p);
            byName.put(p.name(), p);
        }
        this.base = List.copyOf(ps);
        String t = Gpt2Checkpoint.PREFIX;
        wte = byName.get(t + "wte.weight");
        wpe = byName.get(t + "wpe.weight");
        lnfW = byName.get(t + "ln_f.weight");
        lnfB = byName.get(t + "ln_f.bias");
        blocks = new Block[cfg.nLayer()];
        for (int l = 0; l < cfg.nLayer(); l++) {
            String h = t + "h." + l + ".";
            blocks[l] = new Block(byName.get(h + "ln_1.weight"), byName.get(h + "ln_1.bias"),
                    linear(h + "attn.c_attn"), linear(h + "attn.c_proj"),
                    byName.get(h + "ln_2.weight"), byName.get(h + "ln_2.bias"),
                    linear(h + "mlp.c_fc"), linear(h + "mlp.c_proj"));
        }
    }

    private Linear linear(String module) {
        Linear lin = new Linear(be, module, byName.get(module + ".weight"), byName.get(module + ".bias"));
        linears.put(module, lin);
        return lin;
    }

    private static Parameter.Role role(String name) {
        if (name.endsWith("wte.weight") || name.endsWith("wpe.weight")) {
            return Parameter.Role.EMBEDDING;
        }
        return name.endsWith(".bias") ? Parameter.Role.BIAS : Parameter.Role.WEIGHT;
    }

    /** Uploads host values (HF names -> fp32, in {@link Gpt2Checkpoint#shapes} order) as F32 tensors. */
    private static Gpt2Model upload(Backend be, Gpt2Config cfg, Map<String, float[]> host) {
        Map<String, Tensor> values = new LinkedHashMap<>();
        try {
            for (Map.Entry<String, int[]> e : Gpt2Checkpoint.shapes(cfg).entrySet()) {
                values.put(e.getKey(), be.upload(host.get(e.getKey()), DType.F32, e.getValue()));
            }
            return new Gpt2Model(be, cfg, values);
        } catch (RuntimeException ex) {
            values.values().forEach(Tensor::close);
            throw ex;
        }
    }

    // ================================================================ construction

    /**
     * A randomly initialised model, GPT-2's init (HF _init_weights): weights and embeddings ~ N(0, 0.02), the two
     * c_proj weights of each block ~ N(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm gamma 1 and beta 0. Values are
     * drawn tensor by tensor in HF order from {@code new SplittableRandom(seed).nextGaussian()}.
     */
    public static Gpt2Model random(Gpt2Config cfg, Backend backend, long seed) {
        SplittableRandom rng = new SplittableRandom(seed);
        double projStd = 0.02 / Math.sqrt(2.0 * cfg.nLayer());
        Map<String, float[]> host = new LinkedHashMap<>();
        for (Map.Entry<String, int[]> e : Gpt2Checkpoint.shapes(cfg).entrySet()) {
            String name = e.getKey();
            float[] v = new float[(int) Tensor.numel(e.getValue())];
            boolean layerNorm = name.contains(".ln_");
            if (name.endsWith(".bias")) {
                // zeros
            } else if (layerNorm) {
                Arrays.fill(v, 1f);
            } else {
                double std = name.endsWith("c_proj.weight") ? projStd : 0.02;
                for (int i = 0; i < v.length; i++) {
                    v[i] = (float) (rng.nextGaussian() * std);
                }
            }
            host.put(name, v);
        }
        return upload(backend, cfg, host);
    }

    /**
     * Loads a Hugging Face GPT-2 checkpoint directory (config.json + model.safetensors; rules in
     * {@link Gpt2Checkpoint}: prefix optional, lm_head.weight and attention buffers ignored, F32/BF16/F16).
     *
     * @throws CheckpointFormatException a missing file, a bad config, or missing / wrong-shaped tensors (all named)
     */
    public static Gpt2Model load(Path hfDir, Backend backend) throws IOException {
        Gpt2Config cfg = Gpt2Config.read(hfDir);
        return upload(backend, cfg, Gpt2Checkpoint.read(hfDir, cfg));
    }

    /**
     * Writes the base model as a Hugging Face checkpoint (config.json + model.safetensors, each atomically) with
     * F32 or BF16 storage. W is written as it is now: merged adapters are included, unmerged ones are not (save
     * those with PeftAdapterIO).
     */
    public void saveHf(Path dir, DType storage) throws IOException {
        checkOpen();
        Map<String, float[]> host = new LinkedHashMap<>();
        for (Parameter p : base) {
            host.put(p.name(), be.download(p.value()));
        }
        Gpt2Checkpoint.write(dir, cfg, host, storage);
    }

    // ================================================================ adapters and trainability

    /** The linear modules' names in model order: transformer.h.{i}.attn.c_attn, .attn.c_proj, .mlp.c_fc, .mlp.c_proj. */
    public List<String> linearModuleNames() {
        return List.copyOf(linears.keySet());
    }

    /**
     * Attaches one adapter of {@code cfg}'s kind to every linear module {@link TargetModules} selects from
     * cfg.targetModules() (exact name, dotted suffix, full-match regex or "all-linear"; an entry matching nothing is
     * an IllegalArgumentException listing the module names). VeRA gets one {@link VeraProjections} sized to the
     * largest in and out of the targeted modules, owned by the model. Module k of {@link #linearModuleNames()}
     * draws its init from a seed derived from ({@code seed}, k), so a module's adapter does not depend on which
     * others are targeted. The adapters take the model's training mode.
     *
     * @throws IllegalStateException adapters are already attached ({@link #detachAdapters} first)
     */
    public void attachAdapters(AdapterConfig adapter, long seed) {
        checkOpen();
        if (adapter == null) {
            throw new IllegalArgumentException("adapter config is null");
        }
        if (adapterConfig != null) {
            throw new IllegalStateException("adapters (" + adapterConfig.peftType() + ") are already attached;"
                    + " call detachAdapters() first");
        }
        List<String> all = linearModuleNames();
        List<String> chosen = TargetModules.parse(adapter.targetModules()).select(all);
        VeraProjections shared = null;
        List<AdaptedLinear> made = new ArrayList<>();
        try {
            if (adapter instanceof VeraConfig vc) {
                int inMax = 0;
                int outMax = 0;
                for (String m : chosen) {
                    inMax = Math.max(inMax, linears.get(m).in);
                    outMax = Math.max(outMax, linears.get(m).out);
                }
                shared = VeraProjections.create(be, vc, inMax, outMax);
            }
            for (String m : chosen) {
                Linear lin = linears.get(m);
                AdaptedLinear a = AdaptedLinear.create(m, lin.weight.value(), lin.bias.value(), true, adapter, shared,
                        moduleSeed(seed, all.indexOf(m)));
                made.add(a);
                a.setTraining(training);
            }
        } catch (RuntimeException e) {
            made.forEach(AdaptedLinear::close);
            if (shared != null) {
                shared.close();
            }
            throw e;
        }
        for (AdaptedLinear a : made) {
            linears.get(a.name()).setAdapter(a);
        }
        adapterConfig = adapter;
        adapterSeed = seed;
        vera = shared;
        veraParams = shared == null ? List.of() : List.of(
                new Parameter("vera_A", Parameter.Role.VERA_A, shared.a(), false),
                new Parameter("vera_B", Parameter.Role.VERA_B, shared.b(), false));
    }

    /** SplitMix64's finaliser of seed + (k+1) * golden gamma: independent streams per module index k. */
    private static long moduleSeed(long seed, int k) {
        long z = seed + (k + 1L) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    /**
     * Removes the adapters (closing their tensors and VeRA's projections). Merged adapters stay in W (PEFT's
     * merge_and_unload); unmerged ones are dropped. No-op without adapters.
     */
    public void detachAdapters() {
        checkOpen();
        for (Linear lin : linears.values()) {
            lin.close();
        }
        if (vera != null) {
            vera.close();
        }
        vera = null;
        veraParams = List.of();
        adapterConfig = null;
    }

    /** The attached adapters' config, or null. */
    public AdapterConfig adapterConfig() {
        return adapterConfig;
    }

    /**
     * The seed given to {@link #attachAdapters}. It fixes the adapters' init AND their dropout mask streams
     * (AdaptedLinear derives both from its create() seed): a resumed run must attach with the same seed to draw
     * the same masks. Meaningless without adapters.
     */
    public long adapterSeed() {
        return adapterSeed;
    }

    /** VeRA's shared projections (for PeftAdapterIO), or null. */
    public VeraProjections veraProjections() {
        return vera;
    }

    /** Folds every adapter into its W (AdaptedLinear#merge); forwards then run the plain layers. */
    public void mergeAdapters() {
        checkOpen();
        adaptedModules().forEach(AdaptedLinear::merge);
    }

    /** Restores every W (AdaptedLinear#unmerge). */
    public void unmergeAdapters() {
        checkOpen();
        adaptedModules().forEach(AdaptedLinear::unmerge);
    }

    /**
     * Full fine-tuning on or off: makes every base parameter (wte, wpe, LayerNorms, linear W and b) trainable, or
     * frozen again (dropping their gradients). Adapter parameters are not changed.
     */
    public void setFullFineTune(boolean on) {
        checkOpen();
        for (Parameter p : base) {
            p.setTrainable(on);
        }
    }

    /** True when every base parameter is trainable. */
    public boolean fullFineTune() {
        return base.stream().allMatch(Parameter::trainable);
    }

    public Gpt2Config config() {
        return cfg;
    }

    /** The base parameter with this HF name (e.g. transformer.h.0.ln_1.weight), or IllegalArgumentException. */
    public Parameter baseParameter(String name) {
        Parameter p = byName.get(name);
        if (p == null) {
            throw new IllegalArgumentException("no base parameter '" + name + "'; names look like "
                    + base.get(0).name() + ", " + base.get(2).name());
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
        return cfg.nPositions();
    }

    /** Training mode (the default) applies adapter dropout; {@link #trainStep} needs it. */
    @Override
    public void setTraining(boolean on) {
        checkOpen();
        training = on;
        adaptedModules().forEach(a -> a.setTraining(on));
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
        if (!training) {
            throw new IllegalStateException("trainStep needs training mode: call setTraining(true) (eval mode was set)");
        }
        if (!Float.isFinite(gradScale)) {
            throw new IllegalArgumentException("gradScale must be finite, got " + gradScale);
        }
        Batch bt = Batch.of(windows, cfg, true);
        if (trainActs == null || trainActs.b != bt.b() || trainActs.t != bt.t()) {
            if (trainActs != null) {
                trainActs.close();
                trainActs = null;
            }
            trainActs = new Activations(be, cfg, bt.b(), bt.t());
        }
        Activations a = trainActs;
        a.setTokens(bt.ids(), bt.targets());
        forward(a);
        double loss = loss(a);
        backward(a, gradScale);
        return loss;
    }

    @Override
    public double evalLoss(int[][] windows) {
        checkOpen();
        Batch bt = Batch.of(windows, cfg, true);
        Activations a = inferenceActs(bt.b(), bt.t());
        a.setTokens(bt.ids(), bt.targets());
        withEvalAdapters(() -> forward(a));
        return loss(a);
    }

    @Override
    public float[] logits(int[] tokens) {
        checkOpen();
        Batch bt = Batch.of(new int[][] {tokens}, cfg, false);
        Activations a = inferenceActs(1, bt.t());
        a.setTokens(bt.ids(), null);
        withEvalAdapters(() -> forward(a));
        return be.download(a.logits);
    }

    @Override
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>(base);
        for (AdaptedLinear a : adaptedModules()) {
            out.addAll(a.parameters());
        }
        out.addAll(veraParams);
        return out;
    }

    @Override
    public List<AdaptedLinear> adaptedModules() {
        List<AdaptedLinear> out = new ArrayList<>();
        for (Linear lin : linears.values()) {
            if (lin.adapter() != null) {
                out.add(lin.adapter());
            }
        }
        return out;
    }

    /** Releases adapters, VeRA projections, parameters, gradients and activations (not the backend); idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        for (Linear lin : linears.values()) {
            lin.close();
        }
        if (vera != null) {
            vera.close();
        }
        for (Parameter p : base) {
            if (p.grad() != null) {
                p.grad().close();
            }
            p.value().close();
        }
        for (Activations a : new Activations[] {trainActs, inferActs}) {
            if (a != null) {
                a.close();
            }
        }
        for (Tensor t : new Tensor[] {wteSink, wpeSink}) {
            if (t != null) {
                t.close();
            }
        }
    }

    // ================================================================ forward / backward

    /** The buffers for an inference forward: the training set when its shape matches (free between steps). */
    private Activations inferenceActs(int b, int t) {
        if (trainActs != null && trainActs.b == b && trainActs.t == t) {
            return trainActs;
        }
        if (inferActs == null || inferActs.b != b || inferActs.t != t) {
            if (inferActs != null) {
                inferActs.close();
                inferActs = null;
            }
            inferActs = new Activations(be, cfg, b, t);
        }
        return inferActs;
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

    /** Forward from a.ids to a.logits (llm.c gpt2_forward), keeping every layer's activations in a. */
    private void forward(Activations a) {
        float eps = cfg.layerNormEpsilon();
        int nh = cfg.nHead();
        be.embeddingForward(a.ids, wte.value(), wpe.value(), a.encoded);
        Tensor x = a.encoded;                                   // residual stream [B,T,C]
        for (int l = 0; l < blocks.length; l++) {
            Block k = blocks[l];
            be.layerNormForward(x, k.ln1W.value(), k.ln1B.value(), eps, a.ln1[l], a.ln1Mean[l], a.ln1Rstd[l]);
            k.cAttn.forward(a.ln1[l], a.qkv[l]);                // [B,T,C] -> [B,T,3C]
            be.attentionForward(a.qkv[l], nh, a.atty[l], a.att[l]);
            k.attnProj.forward(a.atty[l], a.proj);
            be.add(x, a.proj, a.res2[l]);
            be.layerNormForward(a.res2[l], k.ln2W.value(), k.ln2B.value(), eps, a.ln2[l], a.ln2Mean[l],
                    a.ln2Rstd[l]);
            k.cFc.forward(a.ln2[l], a.fch[l]);                  // [B,T,C] -> [B,T,4C]
            be.geluForward(a.fch[l], a.fchGelu[l]);
            k.mlpProj.forward(a.fchGelu[l], a.proj);            // [B,T,4C] -> [B,T,C]
            be.add(a.res2[l], a.proj, a.res3[l]);
            x = a.res3[l];
        }
        be.layerNormForward(x, lnfW.value(), lnfB.value(), eps, a.lnf, a.lnfMean, a.lnfRstd);
        be.matmul(a.lnf, false, wte.value(), true, a.logits, 1f, 0f);   // ln_f(x) wte^T: [N,C] x [C,V]
    }

    /** Mean cross-entropy of a.targets under a.logits (fills a.probs for the backward). */
    private double loss(Activations a) {
        a.lossBuffers();
        be.crossEntropyForward(a.logits, a.targets, a.probs, a.losses);
        return be.sum(a.losses) / ((double) a.b * a.t);
    }

    /** Backward of gradScale * mean loss, in reverse order of {@link #forward} (llm.c gpt2_backward). */
    private void backward(Activations a, float gradScale) {
        a.gradBuffers();
        int n = a.b * a.t;
        int nh = cfg.nHead();
        Tensor dlogits = a.logits;                              // the logits are no longer needed: reuse [N,V]
        be.crossEntropyBackward(a.probs, a.targets, gradScale / n, dlogits);
        if (wte.trainable()) {
            be.matmul(dlogits, true, a.lnf, false, wte.gradForAccumulation(), 1f, 1f);   // dwte += dlogits^T lnf
        }
        be.matmul(dlogits, false, wte.value(), false, a.dC, 1f, 0f);                    // dlnf = dlogits wte
        Tensor last = blocks.length == 0 ? a.encoded : a.res3[blocks.length - 1];
        layerNormBackward(a.dC, last, lnfW, lnfB, a.lnfMean, a.lnfRstd, a.dres, a);
        for (int l = blocks.length - 1; l >= 0; l--) {
            Block k = blocks[l];
            Tensor x = l == 0 ? a.encoded : a.res3[l - 1];
            // a.dres = dL/d res3[l];  res3 = res2 + mlp.c_proj(gelu(c_fc(ln_2(res2))))
            k.mlpProj.backward(a.fchGelu[l], a.dres, a.d4a);
            be.geluBackward(a.fch[l], a.d4a, a.d4b);
            k.cFc.backward(a.ln2[l], a.d4b, a.dC);
            layerNormBackward(a.dC, a.res2[l], k.ln2W, k.ln2B, a.ln2Mean[l], a.ln2Rstd[l], a.dC2, a);
            be.axpby(1f, a.dC2, 1f, a.dres);                    // dL/d res2[l]
            // res2 = x + attn.c_proj(attention(c_attn(ln_1(x))))
            k.attnProj.backward(a.atty[l], a.dres, a.dC);
            be.attentionBackward(a.dC, a.qkv[l], a.att[l], nh, a.dqkv);
            k.cAttn.backward(a.ln1[l], a.dqkv, a.dC);
            layerNormBackward(a.dC, x, k.ln1W, k.ln1B, a.ln1Mean[l], a.ln1Rstd[l], a.dC2, a);
            be.axpby(1f, a.dC2, 1f, a.dres);                    // dL/d x
        }
        if (wte.trainable() || wpe.trainable()) {
            be.embeddingBackward(a.dres, a.ids, embeddingGrad(wte), embeddingGrad(wpe));
        }
    }

    /** LayerNorm backward: dx written; gamma/beta gradients accumulated when trainable, else into a sink. */
    private void layerNormBackward(Tensor dout, Tensor x, Parameter gamma, Parameter beta, Tensor mean, Tensor rstd,
                                   Tensor dx, Activations a) {
        be.layerNormBackward(dout, x, gamma.value(), mean, rstd, dx,
                gamma.trainable() ? gamma.gradForAccumulation() : a.lnSinkG,
                beta.trainable() ? beta.gradForAccumulation() : a.lnSinkB);
    }

    /** The embedding table's gradient, or a sink of its shape when it is frozen (the op writes both). */
    private Tensor embeddingGrad(Parameter p) {
        if (p.trainable()) {
            return p.gradForAccumulation();
        }
        if (p == wte) {
            if (wteSink == null) {
                wteSink = be.zeros(DType.F32, p.value().shape());
            }
            return wteSink;
        }
        if (wpeSink == null) {
            wpeSink = be.zeros(DType.F32, p.value().shape());
        }
        return wpeSink;
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("Gpt2Model is closed");
        }
    }

    @Override
    public String toString() {
        return "Gpt2Model(" + cfg + ", " + be.name() + (adapterConfig == null ? "" : ", " + adapterConfig.peftType()
                + " on " + adaptedModules().size() + " modules") + (fullFineTune() ? ", full fine-tune" : "") + ")";
    }
}
