package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.models.decoder.DecoderStack;
import ai.lorakit.models.decoder.Family;
import ai.lorakit.models.layers.CausalSelfAttention;
import ai.lorakit.models.layers.Embedding;
import ai.lorakit.models.layers.GeluMlp;
import ai.lorakit.models.layers.LayerNorm;
import ai.lorakit.models.layers.Linear;
import ai.lorakit.models.layers.PreNormBlock;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * GPT-2 (Radford et al. 2019; Hugging Face's GPT2LMHeadModel) as a {@link Family}:
 * <pre>
 * x = wte[ids] + wpe[t]                                                  [B,T,C]
 * per block:  x = x + attn.c_proj(attention(attn.c_attn(ln_1(x))))     (fused qkv [B,T,3C], causal, H heads)
 *             x = x + mlp.c_proj(gelu(mlp.c_fc(ln_2(x))))                (GELU tanh approximation, 4C wide)
 * logits = ln_f(x) wte^T                                                 [N,V]   (lm_head tied to wte)
 * </pre>
 * Names are HF's ({@code transformer.h.0.attn.c_attn.weight} ...); the linear layers are Conv1D, W stored [in,out]
 * (PEFT's fan_in_fan_out). Checkpoints may omit the {@code transformer.} prefix (GPT2Model, the hub's gpt2 file);
 * {@code lm_head.weight} (tied) and the attention buffers {@code h.N.attn.bias / masked_bias} are ignored. HF's
 * dropouts are not applied (see DecoderModel).
 */
public final class Gpt2Family implements Family<Gpt2Config> {

    public static final Gpt2Family INSTANCE = new Gpt2Family();

    /** The state-dict prefix of GPT2LMHeadModel's transformer. */
    public static final String PREFIX = "transformer.";

    private Gpt2Family() {
    }

    @Override
    public String modelType() {
        return "gpt2";
    }

    @Override
    public Gpt2Config parseConfig(JsonNode root) {
        return Gpt2Config.fromJson(root);
    }

    @Override
    public Map<String, int[]> shapes(Gpt2Config cfg) {
        int v = cfg.vocabSize();
        int p = cfg.nPositions();
        int c = cfg.nEmbd();
        Map<String, int[]> m = new LinkedHashMap<>();
        m.put(PREFIX + "wte.weight", new int[] {v, c});
        m.put(PREFIX + "wpe.weight", new int[] {p, c});
        for (int l = 0; l < cfg.nLayer(); l++) {
            String h = PREFIX + "h." + l + ".";
            m.put(h + "ln_1.weight", new int[] {c});
            m.put(h + "ln_1.bias", new int[] {c});
            m.put(h + "attn.c_attn.weight", new int[] {c, 3 * c});
            m.put(h + "attn.c_attn.bias", new int[] {3 * c});
            m.put(h + "attn.c_proj.weight", new int[] {c, c});
            m.put(h + "attn.c_proj.bias", new int[] {c});
            m.put(h + "ln_2.weight", new int[] {c});
            m.put(h + "ln_2.bias", new int[] {c});
            m.put(h + "mlp.c_fc.weight", new int[] {c, 4 * c});
            m.put(h + "mlp.c_fc.bias", new int[] {4 * c});
            m.put(h + "mlp.c_proj.weight", new int[] {4 * c, c});
            m.put(h + "mlp.c_proj.bias", new int[] {c});
        }
        m.put(PREFIX + "ln_f.weight", new int[] {c});
        m.put(PREFIX + "ln_f.bias", new int[] {c});
        return m;
    }

    @Override
    public Parameter.Role role(String name) {
        if (name.endsWith("wte.weight") || name.endsWith("wpe.weight")) {
            return Parameter.Role.EMBEDDING;
        }
        return Family.super.role(name);
    }

    /**
     * HF's _init_weights: weights and embeddings ~ N(0, 0.02), the two c_proj weights of each block
     * ~ N(0, 0.02 / sqrt(2 L)), biases 0, LayerNorm gamma 1 and beta 0.
     */
    @Override
    public void init(String name, float[] values, Gpt2Config cfg, SplittableRandom rng) {
        if (name.endsWith(".bias")) {
            return;
        }
        if (name.contains(".ln_")) {
            Arrays.fill(values, 1f);
            return;
        }
        double std = name.endsWith("c_proj.weight") ? 0.02 / Math.sqrt(2.0 * cfg.nLayer()) : 0.02;
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (rng.nextGaussian() * std);
        }
    }

    @Override
    public String optionalPrefix() {
        return PREFIX;
    }

    @Override
    public boolean ignoredKey(String key) {
        String k = key.startsWith(PREFIX) ? key.substring(PREFIX.length()) : key;
        return key.equals("lm_head.weight") || (k.startsWith("h.") && (k.endsWith(".attn.bias")
                || k.endsWith(".attn.masked_bias")));
    }

    /** Every linear module of a block ("c_proj" matches both attn.c_proj and mlp.c_proj), as QLoRA recommends. */
    @Override
    public List<String> defaultTargets() {
        return List.of("c_attn", "c_proj", "c_fc");
    }

    @Override
    public DecoderStack build(Gpt2Config cfg, Function<String, Parameter> param) {
        float eps = cfg.layerNormEpsilon();
        Map<String, Linear> linears = new LinkedHashMap<>();
        Function<String, Linear> conv1d = m -> {
            Linear lin = new Linear(m, param.apply(m + ".weight"), param.apply(m + ".bias"), Linear.Layout.IN_OUT);
            linears.put(m, lin);
            return lin;
        };
        List<PreNormBlock> blocks = new ArrayList<>();
        for (int l = 0; l < cfg.nLayer(); l++) {
            String h = PREFIX + "h." + l + ".";
            blocks.add(new PreNormBlock(
                    new LayerNorm(param.apply(h + "ln_1.weight"), param.apply(h + "ln_1.bias"), eps),
                    new CausalSelfAttention(conv1d.apply(h + "attn.c_attn"), conv1d.apply(h + "attn.c_proj"),
                            cfg.nHead()),
                    new LayerNorm(param.apply(h + "ln_2.weight"), param.apply(h + "ln_2.bias"), eps),
                    new GeluMlp(conv1d.apply(h + "mlp.c_fc"), conv1d.apply(h + "mlp.c_proj")),
                    cfg.nEmbd(), param.apply(h + "ln_1.weight").value().backend()));
        }
        Parameter wte = param.apply(PREFIX + "wte.weight");
        return new DecoderStack(new Embedding(wte, param.apply(PREFIX + "wpe.weight")), blocks,
                new LayerNorm(param.apply(PREFIX + "ln_f.weight"), param.apply(PREFIX + "ln_f.bias"), eps),
                new Linear("lm_head", wte, null, Linear.Layout.OUT_IN), linears);
    }
}
