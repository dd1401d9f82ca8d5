package ai.lorakit.adapters;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * LoRA (Hu et al. 2021, arXiv 2106.09685) and DoRA (Liu et al. 2024, arXiv 2402.09353) as PEFT's LoraConfig:
 * y = x W^T + b + s (dropout(x) A^T) B^T with s = alpha/r, or alpha/sqrt(r) with rsLoRA (Kalajdzievski 2023).
 * With {@code useDora}, DoRA's magnitude vector m rescales each output (VARIANTS.md section 5).
 *
 * @param r            rank (> 0); PEFT default 8
 * @param alpha        lora_alpha; PEFT default 8
 * @param dropout      dropout on the adapter input, in [0, 1)
 * @param useRslora    scale alpha/sqrt(r) instead of alpha/r
 * @param init         initialisation of A and B
 * @param useDora      DoRA: add the trainable magnitude vector
 * @param targetModules module names or dotted suffixes to adapt
 * @param rankPattern  per-module rank overrides: key k matches a module whose full name matches ^(.*\.)?k$
 * @param alphaPattern per-module alpha overrides, same matching
 */
public record LoraConfig(int r, float alpha, float dropout, boolean useRslora, Init init, boolean useDora,
                         List<String> targetModules, Map<String, Integer> rankPattern,
                         Map<String, Float> alphaPattern) implements AdapterConfig {

    /** init_lora_weights: TRUE = Kaiming-uniform A (bound 1/sqrt(in)), B = 0; GAUSSIAN = A ~ N(0, 1/r), B = 0;
     *  NONE = both random (PEFT's False: a non-identity adapter for tests). */
    public enum Init { KAIMING, GAUSSIAN, NONE }

    public LoraConfig {
        AdapterConfig.require(r > 0, "r", r, "must be > 0");
        AdapterConfig.require(Float.isFinite(alpha) && alpha > 0, "lora_alpha", alpha, "must be finite and > 0");
        AdapterConfig.require(dropout >= 0 && dropout < 1, "lora_dropout", dropout, "must be in [0, 1)");
        AdapterConfig.require(init != null, "init_lora_weights", init, "must be set");
        targetModules = AdapterConfig.targetList(targetModules);
        rankPattern = ordered(rankPattern);
        alphaPattern = ordered(alphaPattern);
        rankPattern.forEach((k, v) -> {
            checkPatternKey("rank_pattern", k);
            AdapterConfig.require(v != null && v > 0, "rank_pattern[" + k + "]", v, "must be > 0");
        });
        alphaPattern.forEach((k, v) -> {
            checkPatternKey("alpha_pattern", k);
            AdapterConfig.require(v != null && Float.isFinite(v) && v > 0, "alpha_pattern[" + k + "]", v,
                    "must be finite and > 0");
        });
    }

    /** PEFT's defaults (r=8, alpha=8, no dropout, Kaiming A, B=0) on the given modules. */
    public static LoraConfig of(int r, float alpha, String... targetModules) {
        return new LoraConfig(r, alpha, 0f, false, Init.KAIMING, false, List.of(targetModules), Map.of(), Map.of());
    }

    public LoraConfig withDora(boolean dora) {
        return new LoraConfig(r, alpha, dropout, useRslora, init, dora, targetModules, rankPattern, alphaPattern);
    }

    public LoraConfig withInit(Init newInit) {
        return new LoraConfig(r, alpha, dropout, useRslora, newInit, useDora, targetModules, rankPattern, alphaPattern);
    }

    public LoraConfig withDropout(float p) {
        return new LoraConfig(r, alpha, p, useRslora, init, useDora, targetModules, rankPattern, alphaPattern);
    }

    public LoraConfig withRslora(boolean rs) {
        return new LoraConfig(r, alpha, dropout, rs, init, useDora, targetModules, rankPattern, alphaPattern);
    }

    @Override
    public String peftType() {
        return "LORA";
    }

    /** The rank of module {@code name}: the first rank_pattern key matching it (PEFT's regex rule), else r. */
    public int rankFor(String name) {
        Integer v = match(rankPattern, name);
        return v == null ? r : v;
    }

    /** The alpha of module {@code name}: alpha_pattern's first match, else alpha. */
    public float alphaFor(String name) {
        Float v = match(alphaPattern, name);
        return v == null ? alpha : v;
    }

    /** s = alpha_l / r_l, or alpha_l / sqrt(r_l) with rsLoRA. */
    public float scalingFor(String name) {
        int rl = rankFor(name);
        float al = alphaFor(name);
        return useRslora ? (float) (al / Math.sqrt(rl)) : al / rl;
    }

    /** An unmodifiable copy that keeps the caller's order (PEFT takes the first matching key). */
    static <V> Map<String, V> ordered(Map<String, V> m) {
        return m == null ? Map.of() : Collections.unmodifiableMap(new LinkedHashMap<>(m));
    }

    /** A pattern key must be a non-empty Java regex (PEFT matches it as ^(.*\.)?(key)$). */
    private static void checkPatternKey(String field, String key) {
        AdapterConfig.require(key != null && !key.isEmpty(), field + " key", key, "must be a non-empty module pattern");
        try {
            Pattern.compile(key);
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException(field + " key must be a valid regular expression, got " + key
                    + " (" + e.getDescription() + ")", e);
        }
    }

    private static <V> V match(Map<String, V> pattern, String name) {
        for (Map.Entry<String, V> e : pattern.entrySet()) {
            if (Pattern.matches("(.*\\.)?(" + e.getKey() + ")", name)) {
                return e.getValue();
            }
        }
        return null;
    }
}
