package ai.lorakit.gpu;

/**
 * Hyper-parameters of one AdamW step on one tensor, with the semantics of {@code torch.optim.AdamW}
 * (decoupled weight decay applied first, bias-corrected moments, eps added to the corrected sqrt(v)):
 * <pre>
 *   p ← p − lr·λ·p
 *   m ← β1·m + (1−β1)·g ;  v ← β2·v + (1−β2)·g²
 *   p ← p − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + eps)
 * </pre>
 * {@code step} is t, starting at 1.
 */
public record AdamW(float lr, float beta1, float beta2, float eps, float weightDecay, int step) {
    public AdamW {
        if (!(lr >= 0) || !Float.isFinite(lr)) throw new IllegalArgumentException("lr must be finite and >= 0, got " + lr);
        if (!(beta1 >= 0 && beta1 < 1)) throw new IllegalArgumentException("beta1 must be in [0,1), got " + beta1);
        if (!(beta2 >= 0 && beta2 < 1)) throw new IllegalArgumentException("beta2 must be in [0,1), got " + beta2);
        if (!(eps > 0) || !Float.isFinite(eps)) throw new IllegalArgumentException("eps must be finite and > 0, got " + eps);
        if (!(weightDecay >= 0) || !Float.isFinite(weightDecay)) {
            throw new IllegalArgumentException("weightDecay must be finite and >= 0, got " + weightDecay);
        }
        if (step < 1) throw new IllegalArgumentException("step must be >= 1, got " + step);
    }

    /** Same hyper-parameters at another learning rate (per-group learning rates, LoRA+). */
    public AdamW withLr(float newLr) {
        return new AdamW(newLr, beta1, beta2, eps, weightDecay, step);
    }

    public AdamW withWeightDecay(float wd) {
        return new AdamW(lr, beta1, beta2, eps, wd, step);
    }
}
