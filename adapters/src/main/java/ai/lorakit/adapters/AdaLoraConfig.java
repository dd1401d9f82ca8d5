package ai.lorakit.adapters;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * AdaLoRA (Zhang et al., ICLR 2023, arXiv 2303.10512) in PEFT's SVD form: ΔW = B diag(E) A · alpha/init_r,
 * with P = B [out, r], Λ = E [r, 1], Q = A [r, in]; E starts at 0, A and B ~ N(0, 0.02^2) (VARIANTS.md
 * section 6). The rank allocator that drives the budget arrives with the training loop; the schedule fields
 * are validated here as PEFT does.
 *
 * @param initR         initial rank of every layer (PEFT default 12)
 * @param targetR       average target rank (default 8)
 * @param tinit         warm-up steps at the initial budget
 * @param tfinal        final steps at the target budget
 * @param deltaT        steps between budget allocations
 * @param beta1         EMA of sensitivity (default 0.85)
 * @param beta2         EMA of uncertainty (default 0.85)
 * @param orthRegWeight orthogonality regulariser weight (default 0.5)
 * @param totalStep     total training steps (required, > 0)
 * @param alpha         lora_alpha; scaling = alpha / init_r (PEFT keeps ranknum = init_r)
 * @param dropout       dropout on the adapter input
 * @param targetModules module names or dotted suffixes to adapt
 * @param rankPattern   after allocation: lora_E parameter name -> kept triplets (null before)
 */
public record AdaLoraConfig(int initR, int targetR, int tinit, int tfinal, int deltaT, float beta1, float beta2,
                            float orthRegWeight, int totalStep, float alpha, float dropout,
                            List<String> targetModules, Map<String, boolean[]> rankPattern)
        implements AdapterConfig {
    public AdaLoraConfig {
        AdapterConfig.require(initR > 0, "init_r", initR, "must be > 0");
        AdapterConfig.require(targetR > 0 && targetR <= initR, "target_r", targetR, "must be in [1, init_r=" + initR + "]");
        AdapterConfig.require(totalStep > 0, "total_step", totalStep, "must be > 0 (AdaLoRA needs the training length)");
        AdapterConfig.require(tinit >= 0, "tinit", tinit, "must be >= 0");
        AdapterConfig.require(tfinal >= 0, "tfinal", tfinal, "must be >= 0");
        AdapterConfig.require(tinit < totalStep - tfinal, "tinit", tinit,
                "must be < total_step - tfinal = " + (totalStep - tfinal) + " (no budgeting phase otherwise)");
        AdapterConfig.require(deltaT > 0, "deltaT", deltaT, "must be > 0");
        AdapterConfig.require(beta1 >= 0 && beta1 < 1, "beta1", beta1, "must be in [0, 1)");
        AdapterConfig.require(beta2 >= 0 && beta2 < 1, "beta2", beta2, "must be in [0, 1)");
        AdapterConfig.require(Float.isFinite(orthRegWeight) && orthRegWeight >= 0, "orth_reg_weight", orthRegWeight,
                "must be finite and >= 0");
        AdapterConfig.require(Float.isFinite(alpha) && alpha > 0, "lora_alpha", alpha, "must be finite and > 0");
        AdapterConfig.require(dropout >= 0 && dropout < 1, "lora_dropout", dropout, "must be in [0, 1)");
        targetModules = AdapterConfig.targetList(targetModules);
        rankPattern = rankPattern == null ? null : LoraConfig.ordered(copyMasks(rankPattern, initR));
    }

    /**
     * rank_pattern validated and deep-copied (the record stays immutable): each key non-empty, each mask one
     * boolean per initial triplet (init_r of them), as PEFT's RankAllocator writes it.
     */
    private static Map<String, boolean[]> copyMasks(Map<String, boolean[]> pattern, int initR) {
        Map<String, boolean[]> out = new LinkedHashMap<>();
        pattern.forEach((k, v) -> {
            AdapterConfig.require(k != null && !k.isEmpty(), "rank_pattern key", k, "must be a lora_E parameter name");
            AdapterConfig.require(v != null && v.length == initR, "rank_pattern[" + k + "]",
                    v == null ? null : Arrays.toString(v), "must hold one boolean per triplet (init_r=" + initR + ")");
            out.put(k, v.clone());
        });
        return out;
    }

    /** PEFT's defaults (target_r 8, init_r 12, deltaT 1, betas 0.85, orth_reg 0.5, alpha 8). */
    public static AdaLoraConfig of(int totalStep, String... targetModules) {
        return new AdaLoraConfig(12, 8, 0, 0, 1, 0.85f, 0.85f, 0.5f, totalStep, 8f, 0f, List.of(targetModules), null);
    }

    /** alpha / (init_r + 1e-5) as PEFT (ranknum stays init_r even after pruning). */
    public float scaling() {
        return (float) (alpha / (initR + 1e-5));
    }

    @Override
    public String peftType() {
        return "ADALORA";
    }
}
