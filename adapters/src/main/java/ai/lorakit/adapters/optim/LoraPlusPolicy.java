package ai.lorakit.adapters.optim;

/**
 * LoRA+ (Hayou, Ghosh, Yu 2024, arXiv 2402.12354; VARIANTS.md section 2): η_B = ratio · η_A, as PEFT's
 * {@code create_loraplus_optimizer}. The {@link Optimizer} builds exactly four groups, in this order:
 * <ol>
 *   <li>{@code groupA} (lr, wd): every trainable parameter not in the groups below;</li>
 *   <li>{@code embedding} (lrEmbedding, wd): the tensors of a LoRA embedding adapter, named
 *       {@code ...lora_embedding_A} / {@code ...lora_embedding_B} (PEFT: parameters of a LoRA {@code Embedding}
 *       layer). A full embedding table trained as is (role {@code EMBEDDING}, e.g. {@code transformer.wte.weight})
 *       is not in this group: it follows the rules of the other groups (2-D: groupA);</li>
 *   <li>{@code groupB} (lr·ratio, wd): role {@code LORA_B} or any 1-D tensor, that is a decay parameter;</li>
 *   <li>{@code groupB_no_decay} (lr·ratio, 0): the same criterion, not a decay parameter.</li>
 * </ol>
 * "Decay parameter" follows HuggingFace Trainer's rule (biases and norm weights are not decayed): a parameter
 * is NOT a decay parameter when its role is {@code BIAS} or its lower-cased name contains {@code bias},
 * {@code layernorm}, {@code layer_norm} or {@code rmsnorm}, or has a dotted component starting with
 * {@code ln_} (GPT-2's ln_1, ln_2, ln_f), equal to {@code norm} or ending in {@code _norm}.
 *
 * <p>Consequence (as in PEFT): every 1-D trainable tensor gets the B learning rate, including DoRA's magnitude
 * vector m and VeRA's λb, λd. AdaLoRA's Λ is [r,1] (2-D) and stays in group A. The weight decay of all groups
 * but the last is the config's (PEFT's {@code loraplus_weight_decay} defaults to 0; pass 0 to match it).
 *
 * @param ratio       λ = η_B / η_A, finite and > 0. The reference repo (nikhil-ghosh-berkeley/loraplus)
 *                    has NO default, it requires the value; {@link #DEFAULT_RATIO} = 16 = 2^4 is the commonly
 *                    recommended value (Axolotl docs, PEFT's example), our default, not a library default.
 * @param lrEmbedding learning rate of the embedding group, finite and >= 0 (reference default 1e-6)
 */
public record LoraPlusPolicy(float ratio, float lrEmbedding) implements OptimizerPolicy {

    /** The recommended ratio 2^4 (see the class comment: recommended, not a library default). */
    public static final float DEFAULT_RATIO = 16f;
    /** loraplus_lr_embedding's default. */
    public static final float DEFAULT_LR_EMBEDDING = 1e-6f;

    public LoraPlusPolicy {
        Checks.require(Float.isFinite(ratio) && ratio > 0, "loraplus_lr_ratio", ratio, "must be finite and > 0");
        Checks.require(Float.isFinite(lrEmbedding) && lrEmbedding >= 0, "loraplus_lr_embedding", lrEmbedding,
                "must be finite and >= 0");
    }

    /** ratio 16, lrEmbedding 1e-6. */
    public static LoraPlusPolicy defaults() {
        return new LoraPlusPolicy(DEFAULT_RATIO, DEFAULT_LR_EMBEDDING);
    }

    /** The given ratio, lrEmbedding 1e-6. */
    public static LoraPlusPolicy ofRatio(float ratio) {
        return new LoraPlusPolicy(ratio, DEFAULT_LR_EMBEDDING);
    }
}
