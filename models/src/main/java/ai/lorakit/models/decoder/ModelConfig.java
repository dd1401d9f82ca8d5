package ai.lorakit.models.decoder;

/**
 * What the decoder model, the Trainer and the CLI need from a family's config record (GPT2Config, LlamaConfig
 * ...): the sizes every decoder has, a one-line description and HF's config.json.
 */
public interface ModelConfig {

    /** The family this config belongs to (its registry entry). */
    Family<?> family();

    /** V, the token ids. */
    int vocabSize();

    /** The longest sequence the model allows. */
    int maxSeqLen();

    /** The config.json key of {@link #maxSeqLen} (n_positions, max_position_embeddings), for messages. */
    String maxSeqLenKey();

    /** C, the residual width. */
    int hiddenSize();

    /** L, the blocks. */
    int numLayers();

    /** One line for humans, e.g. "GPT-2 2 layers, n_embd 32, 2 heads, vocab 257, n_positions 64". */
    String describe();

    /** HF's config.json for this model; {@code torchDtype} e.g. "float32", "bfloat16". */
    String toJson(String torchDtype);
}
