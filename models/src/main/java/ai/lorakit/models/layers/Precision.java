package ai.lorakit.models.layers;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;

/**
 * The precision policy (ARCHITECTURE.md, "Precision"), one object the model and its layers read, the same on every
 * backend:
 * <ul>
 *   <li>{@link #weights}: the storage of the frozen base weights (embeddings, W, biases, norm gains);</li>
 *   <li>{@link #activations}: the storage of the activations between ops and of their gradients (the residual
 *       stream, qkv, the MLP's hidden layer, dx, dy);</li>
 *   <li>always fp32 ({@link #STATS}): LayerNorm/RMSNorm statistics, the attention softmax, the logits and the loss,
 *       and every adapter weight, gradient and optimizer moment (the adapters make their own tensors in F32).</li>
 * </ul>
 * Every op accumulates in fp32 whatever its operands' storage; a BF16 store rounds to nearest even on every backend
 * (the cpu and opencl backends as the GPU), so CI tests the same numbers the GPU runs.
 *
 * @param name        the --precision value this resolves (fp32, bf16)
 * @param weights     storage of frozen base weights
 * @param activations storage of activations and their gradients
 */
public record Precision(String name, DType weights, DType activations) {

    /** Everything fp32. */
    public static final Precision FP32 = new Precision("fp32", DType.F32, DType.F32);

    /** bf16 frozen weights and activations; statistics, softmax, loss and adapters fp32. */
    public static final Precision BF16 = new Precision("bf16", DType.BF16, DType.BF16);

    /** The storage of statistics, softmax probabilities, logits and the loss under every policy. */
    public static final DType STATS = DType.F32;

    public Precision {
        if (name == null || weights == null || activations == null
                || weights == DType.I32 || activations == DType.I32) {
            throw new IllegalArgumentException("precision needs a name and float storage dtypes, got " + name + ", "
                    + weights + ", " + activations);
        }
    }

    /**
     * The policy a --precision value names: fp32, bf16, or auto (bf16 on a CUDA backend, fp32 elsewhere).
     *
     * @throws IllegalArgumentException any other value, naming the accepted ones
     */
    public static Precision parse(String value, Backend be) {
        return switch (value == null ? "" : value) {
            case "fp32" -> FP32;
            case "bf16" -> BF16;
            case "auto" -> be.name().startsWith("cuda") ? BF16 : FP32;
            default -> throw new IllegalArgumentException("precision must be fp32, bf16 or auto, got '" + value + "'");
        };
    }

    /**
     * This policy for full fine-tuning: the base weights are trainable, so they stay fp32 (they are their own fp32
     * masters: the optimizer updates them in fp32 and the GEMMs read them as they are); activations unchanged.
     */
    public Precision withFp32Weights() {
        return weights == DType.F32 ? this : new Precision(name + "/fp32-weights", DType.F32, activations);
    }

    @Override
    public String toString() {
        return name + " (weights " + weights + ", activations " + activations + ", statistics " + STATS + ")";
    }
}
