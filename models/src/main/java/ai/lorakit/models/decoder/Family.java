package ai.lorakit.models.decoder;

import ai.lorakit.adapters.Parameter;
import com.fasterxml.jackson.databind.JsonNode;

import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

/**
 * A model family (GPT-2, Llama, ...): its config record, its HF tensor-name map, its default PEFT targets and its
 * block composition. {@link DecoderModel} does the rest (weights, buffers, modes, training, checkpoints), so a new
 * family is one implementation of this interface, its config record and a line in {@link Families}.
 *
 * @param <C> the family's config record
 */
public interface Family<C extends ModelConfig> {

    /** config.json's model_type ("gpt2"). */
    String modelType();

    /** The config in a parsed config.json; IllegalArgumentException naming the key and value when it is refused. */
    C parseConfig(JsonNode root);

    /** Every base tensor, HF state-dict name -> shape, in HF's order (the checkpoint's and parameters()' order). */
    Map<String, int[]> shapes(C cfg);

    /** The role of a base tensor (embedding, weight, bias) for the optimizer's weight decay. */
    default Parameter.Role role(String name) {
        return name.endsWith(".bias") ? Parameter.Role.BIAS : Parameter.Role.WEIGHT;
    }

    /** Fills {@code values} (zeros on entry) with the family's random init of tensor {@code name}. */
    void init(String name, float[] values, C cfg, SplittableRandom rng);

    /** A prefix of {@link #shapes} names that checkpoint files may omit ("transformer." for GPT-2), or "". */
    String optionalPrefix();

    /** Whether a checkpoint key is no parameter and is skipped (a tied lm_head, attention-mask buffers). */
    boolean ignoredKey(String key);

    /** PEFT's default target_modules for this family (used when none are given). */
    List<String> defaultTargets();

    /** Composes the layers from the base parameters ({@code param} maps an HF name to its Parameter). */
    DecoderStack build(C cfg, Function<String, Parameter> param);
}
