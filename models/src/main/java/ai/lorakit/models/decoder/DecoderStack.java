package ai.lorakit.models.decoder;

import ai.lorakit.models.layers.Embedding;
import ai.lorakit.models.layers.Linear;
import ai.lorakit.models.layers.Norm;
import ai.lorakit.models.layers.PreNormBlock;

import java.util.List;
import java.util.Map;

/**
 * The layers a family composes from the model's parameters:
 * <pre>
 * x = embedding(ids)  ->  x = block(x) for each block  ->  logits = lmHead(finalNorm(x))
 * </pre>
 *
 * @param embedding token (and position) embedding
 * @param blocks    the L blocks, in order
 * @param finalNorm the norm before the head
 * @param lmHead    C -> V, [V,C] layout, no bias; a tied head shares the token embedding's Parameter
 * @param linears   the adaptable linear modules in model order, by full HF module name (the head is not one)
 */
public record DecoderStack(Embedding embedding, List<PreNormBlock> blocks, Norm finalNorm, Linear lmHead,
                           Map<String, Linear> linears) {

    public DecoderStack {
        blocks = List.copyOf(blocks);
        linears = java.util.Collections.unmodifiableMap(new java.util.LinkedHashMap<>(linears));
    }
}
