package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Pattern;

/** The param groups of each policy (see {@link AdamWPolicy}, {@link LoraPlusPolicy}, {@link LoraFaPolicy}). */
final class Grouping {

    /** HF Trainer's "not a decay parameter" name rule, adapted to lorakit's names (see {@link LoraPlusPolicy}). */
    private static final Pattern NO_DECAY_NAME =
            Pattern.compile("bias|layernorm|layer_norm|rmsnorm|(^|\\.)ln_|(^|\\.)norm($|\\.)|_norm($|\\.)");
    /** The tensors of a LoRA Embedding layer, by PEFT's names (lora_embedding_A [r,V], lora_embedding_B [C,r]). */
    private static final Pattern LORA_EMBEDDING_NAME = Pattern.compile("(^|\\.)lora_embedding_[AB]($|\\.)");

    private Grouping() {
    }

    /** @param trainable the trainable parameters, in the caller's order (kept within each group) */
    static List<ParamGroup> build(OptimizerPolicy policy, OptimizerConfig config, List<Parameter> trainable) {
        return switch (policy) {
            case AdamWPolicy p -> List.of(new ParamGroup("default", config.lr(), config.weightDecay(), trainable));
            case LoraFaPolicy p -> List.of(new ParamGroup("default", config.lr(), config.weightDecay(), trainable));
            case LoraPlusPolicy p -> loraPlus(p, config, trainable);
            case DeltaLoraPolicy p -> List.of(new ParamGroup("default", config.lr(), config.weightDecay(), trainable));
        };
    }

    private static List<ParamGroup> loraPlus(LoraPlusPolicy p, OptimizerConfig config, List<Parameter> trainable) {
        List<Parameter> a = new ArrayList<>();
        List<Parameter> embedding = new ArrayList<>();
        List<Parameter> b = new ArrayList<>();
        List<Parameter> bNoDecay = new ArrayList<>();
        for (Parameter q : trainable) {
            if (isLoraEmbedding(q)) {
                embedding.add(q);
            } else if (q.role() == Parameter.Role.LORA_B || q.value().rank() == 1) {
                (isDecayParameter(q) ? b : bNoDecay).add(q);
            } else {
                a.add(q);
            }
        }
        float lr = config.lr();
        float wd = config.weightDecay();
        float lrB = lr * p.ratio();
        return List.of(
                new ParamGroup("groupA", lr, wd, a),
                new ParamGroup("embedding", p.lrEmbedding(), wd, embedding),
                new ParamGroup("groupB", lrB, wd, b),
                new ParamGroup("groupB_no_decay", lrB, 0f, bNoDecay));
    }

    /**
     * PEFT's embedding group holds the parameters of a LoRA {@code Embedding} layer (its lora_embedding_A/B), not
     * every embedding table: a table trained in full (role EMBEDDING, e.g. GPT-2's {@code transformer.wte.weight})
     * falls under the generic rules (2-D: groupA), as in PEFT and the LoRA+ reference code.
     */
    static boolean isLoraEmbedding(Parameter q) {
        return LORA_EMBEDDING_NAME.matcher(q.name()).find();
    }

    /** False for biases and norm weights (HF Trainer's get_decay_parameter_names, by role and name). */
    static boolean isDecayParameter(Parameter q) {
        return q.role() != Parameter.Role.BIAS
                && !NO_DECAY_NAME.matcher(q.name().toLowerCase(Locale.ROOT)).find();
    }
}
