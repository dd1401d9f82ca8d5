package ai.lorakit.models.llama;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.models.decoder.DecoderStack;
import ai.lorakit.models.decoder.Family;
import ai.lorakit.models.layers.Embedding;
import ai.lorakit.models.layers.GqaSelfAttention;
import ai.lorakit.models.layers.Linear;
import ai.lorakit.models.layers.PreNormBlock;
import ai.lorakit.models.layers.RmsNorm;
import ai.lorakit.models.layers.SwiGluMlp;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * The Llama family as Hugging Face defines it (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM,
 * Qwen3ForCausalLM), one instance per model_type:
 * <pre>
 * x = embed_tokens[ids]                                                    [B,T,C]   (no position table)
 * per block:  x = x + o_proj(attention(input_layernorm(x)))               (RMSNorm; q/k/v_proj, GQA, RoPE)
 *             x = x + down_proj(silu(gate_proj(h)) * up_proj(h)),  h = post_attention_layernorm(x)   (SwiGLU, F)
 * logits = norm(x) lm_head^T                                               [N,V]   (lm_head = embed_tokens if tied)
 * </pre>
 * Variants: Qwen2 adds q/k/v biases; Qwen3 adds per-head q_norm/k_norm (RMSNorm over D, before RoPE). Mistral is
 * Llama with a sliding_window ({@link LlamaConfig}). Every linear is nn.Linear, W [out,in]. Names are HF's
 * ({@code model.layers.0.self_attn.q_proj.weight} ...); files may omit {@code model.} (LlamaModel without a head);
 * a tied {@code lm_head.weight} and old {@code rotary_emb.inv_freq} buffers are ignored.
 */
public final class LlamaFamily implements Family<LlamaConfig> {

    public static final LlamaFamily LLAMA = new LlamaFamily("llama", "LlamaForCausalLM", "Llama", false, false);
    public static final LlamaFamily MISTRAL = new LlamaFamily("mistral", "MistralForCausalLM", "Mistral", false,
            false);
    public static final LlamaFamily QWEN2 = new LlamaFamily("qwen2", "Qwen2ForCausalLM", "Qwen2", true, false);
    public static final LlamaFamily QWEN3 = new LlamaFamily("qwen3", "Qwen3ForCausalLM", "Qwen3", false, true);

    private static final String PREFIX = "model.";

    private final String modelType;
    private final String architecture;
    private final String displayName;
    private final boolean qkvBias;
    private final boolean qkNorm;

    private LlamaFamily(String modelType, String architecture, String displayName, boolean qkvBias, boolean qkNorm) {
        this.modelType = modelType;
        this.architecture = architecture;
        this.displayName = displayName;
        this.qkvBias = qkvBias;
        this.qkNorm = qkNorm;
    }

    @Override
    public String modelType() {
        return modelType;
    }

    /** HF's class name, config.json's architectures entry. */
    public String architecture() {
        return architecture;
    }

    /** For humans: "Llama", "Qwen2" ... */
    public String displayName() {
        return displayName;
    }

    /** Whether q/k/v_proj have biases (Qwen2). */
    public boolean qkvBias() {
        return qkvBias;
    }

    /** Whether attention has per-head q_norm/k_norm (Qwen3). */
    public boolean qkNorm() {
        return qkNorm;
    }

    @Override
    public LlamaConfig parseConfig(JsonNode root) {
        return LlamaConfig.fromJson(this, root);
    }

    @Override
    public Map<String, int[]> shapes(LlamaConfig cfg) {
        int c = cfg.hiddenSize();
        int qw = cfg.numHeads() * cfg.headDim();
        int kw = cfg.numKvHeads() * cfg.headDim();
        int f = cfg.intermediateSize();
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put(PREFIX + "embed_tokens.weight", new int[] {cfg.vocabSize(), c});
        for (int l = 0; l < cfg.numLayers(); l++) {
            String p = PREFIX + "layers." + l + ".";
            m.put(p + "input_layernorm.weight", new int[] {c});
            String[] proj = {"q_proj", "k_proj", "v_proj"};
            int[] out = {qw, kw, kw};
            for (int i = 0; i < proj.length; i++) {
                m.put(p + "self_attn." + proj[i] + ".weight", new int[] {out[i], c});
                if (qkvBias) {
                    m.put(p + "self_attn." + proj[i] + ".bias", new int[] {out[i]});
                }
            }
            m.put(p + "self_attn.o_proj.weight", new int[] {c, qw});
            if (qkNorm) {
                m.put(p + "self_attn.q_norm.weight", new int[] {cfg.headDim()});
                m.put(p + "self_attn.k_norm.weight", new int[] {cfg.headDim()});
            }
            m.put(p + "post_attention_layernorm.weight", new int[] {c});
            m.put(p + "mlp.gate_proj.weight", new int[] {f, c});
            m.put(p + "mlp.up_proj.weight", new int[] {f, c});
            m.put(p + "mlp.down_proj.weight", new int[] {c, f});
        }
        m.put(PREFIX + "norm.weight", new int[] {c});
        if (!cfg.tieWordEmbeddings()) {
            m.put("lm_head.weight", new int[] {cfg.vocabSize(), c});
        }
        return m;
    }

    @Override
    public Parameter.Role role(String name) {
        return name.endsWith("embed_tokens.weight") ? Parameter.Role.EMBEDDING : Family.super.role(name);
    }

    /** HF's _init_weights: linear weights and the embedding ~ N(0, 0.02) (initializer_range), biases 0, norms 1. */
    @Override
    public void init(String name, float[] values, LlamaConfig cfg, SplittableRandom rng) {
        if (name.endsWith(".bias")) {
            return;
        }
        if (name.endsWith("norm.weight") || name.endsWith("layernorm.weight")) {
            Arrays.fill(values, 1f);
            return;
        }
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (rng.nextGaussian() * 0.02);
        }
    }

    @Override
    public String optionalPrefix() {
        return PREFIX;
    }

    @Override
    public boolean ignoredKey(String key) {
        return key.equals("lm_head.weight") || key.endsWith(".rotary_emb.inv_freq");
    }

    /**
     * Every linear module of a block, as QLoRA recommends and as GPT-2's default does. (PEFT's own default mapping
     * for llama, mistral and qwen2 is only q_proj, v_proj: pass --target q_proj,v_proj for that.)
     */
    @Override
    public List<String> defaultTargets() {
        return List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
    }

    @Override
    public DecoderStack build(LlamaConfig cfg, Function<String, Parameter> param) {
        Map<String, Linear> linears = new LinkedHashMap<>();
        Function<String, Linear> linear = m -> {
            Linear lin = new Linear(m, param.apply(m + ".weight"), qkvBias && m.matches(".*\\.[qkv]_proj")
                    ? param.apply(m + ".bias") : null, Linear.Layout.OUT_IN);
            linears.put(m, lin);
            return lin;
        };
        float eps = cfg.rmsNormEps();
        GqaSelfAttention.Rope rope = new GqaSelfAttention.Rope(cfg.ropeTheta(), cfg.ropeScaling());
        List<PreNormBlock> blocks = new ArrayList<>();
        for (int l = 0; l < cfg.numLayers(); l++) {
            String p = PREFIX + "layers." + l + ".";
            String a = p + "self_attn.";
            GqaSelfAttention.QkNorm qk = qkNorm ? new GqaSelfAttention.QkNorm(param.apply(a + "q_norm.weight"),
                    param.apply(a + "k_norm.weight"), eps) : null;
            GqaSelfAttention attn = new GqaSelfAttention(linear.apply(a + "q_proj"), linear.apply(a + "k_proj"),
                    linear.apply(a + "v_proj"), linear.apply(a + "o_proj"), cfg.numHeads(), cfg.numKvHeads(), rope,
                    qk);
            RmsNorm norm1 = new RmsNorm(param.apply(p + "input_layernorm.weight"), eps);
            SwiGluMlp mlp = new SwiGluMlp(linear.apply(p + "mlp.gate_proj"), linear.apply(p + "mlp.up_proj"),
                    linear.apply(p + "mlp.down_proj"));
            blocks.add(new PreNormBlock(norm1, attn, new RmsNorm(param.apply(p + "post_attention_layernorm.weight"),
                    eps), mlp, cfg.hiddenSize(), norm1.parameters().get(0).value().backend()));
        }
        Parameter embed = param.apply(PREFIX + "embed_tokens.weight");
        Parameter head = cfg.tieWordEmbeddings() ? embed : param.apply("lm_head.weight");
        return new DecoderStack(new Embedding(embed, null), blocks, new RmsNorm(param.apply(PREFIX + "norm.weight"),
                eps), new Linear("lm_head", head, null, Linear.Layout.OUT_IN), linears);
    }
}
