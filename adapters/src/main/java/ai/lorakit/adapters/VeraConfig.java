package ai.lorakit.adapters;

import java.util.List;

/**
 * VeRA (Kopiczko et al., ICLR 2024, arXiv 2310.11454): y = x W^T + b + λb ∘ ((λd ∘ (x A_l^T)) B_l^T) with one
 * frozen random pair A [r, in_max], B [out_max, r] shared by all adapted layers; per layer only λb [out]
 * (init 0) and λd [r] (init d_initial) train. No alpha/r scaling (VARIANTS.md section 4).
 *
 * @param r                 shared rank; PEFT default 256
 * @param projectionPrngKey seed of the shared projections
 * @param saveProjection    write vera_A / vera_B into the adapter file (PEFT default true; lorakit cannot
 *                          reproduce torch's generator, so loading a file without them is refused)
 * @param dInitial          initial value of λd; PEFT default 0.1
 * @param dropout           dropout on the adapter input, in [0, 1)
 * @param targetModules     module names or dotted suffixes to adapt
 */
public record VeraConfig(int r, long projectionPrngKey, boolean saveProjection, float dInitial, float dropout,
                         List<String> targetModules) implements AdapterConfig {
    public VeraConfig {
        AdapterConfig.require(r > 0, "r", r, "must be > 0");
        AdapterConfig.require(Float.isFinite(dInitial), "d_initial", dInitial, "must be finite");
        AdapterConfig.require(dropout >= 0 && dropout < 1, "vera_dropout", dropout, "must be in [0, 1)");
        targetModules = AdapterConfig.targetList(targetModules);
    }

    /** PEFT's defaults (prng key 0, save_projection, d_initial 0.1, no dropout). */
    public static VeraConfig of(int r, String... targetModules) {
        return new VeraConfig(r, 0L, true, 0.1f, 0f, List.of(targetModules));
    }

    @Override
    public String peftType() {
        return "VERA";
    }
}
