package ai.lorakit.adapters.optim;

/**
 * AdamW hyper-parameters shared by every policy (torch.optim.AdamW semantics, see {@link ai.lorakit.gpu.AdamW}).
 * {@code lr} is the base learning rate: LoRA+ derives its groups' rates from it and
 * {@link Optimizer#setLearningRate} rescales all groups relative to it, so it must be > 0.
 *
 * @param lr          base learning rate, finite and > 0 (torch default 1e-3)
 * @param beta1       first-moment decay β1 in [0,1) (0.9)
 * @param beta2       second-moment decay β2 in [0,1) (0.999)
 * @param eps         added to the bias-corrected sqrt(v), finite and > 0 (1e-8)
 * @param weightDecay decoupled weight decay λ, finite and >= 0 (0.01)
 */
public record OptimizerConfig(float lr, float beta1, float beta2, float eps, float weightDecay) {

    public OptimizerConfig {
        Checks.require(Float.isFinite(lr) && lr > 0, "lr", lr, "must be finite and > 0");
        Checks.require(beta1 >= 0 && beta1 < 1, "beta1", beta1, "must be in [0, 1)");
        Checks.require(beta2 >= 0 && beta2 < 1, "beta2", beta2, "must be in [0, 1)");
        Checks.require(Float.isFinite(eps) && eps > 0, "eps", eps, "must be finite and > 0");
        Checks.require(Float.isFinite(weightDecay) && weightDecay >= 0, "weight_decay", weightDecay,
                "must be finite and >= 0");
    }

    /** torch.optim.AdamW's defaults: lr 1e-3, betas (0.9, 0.999), eps 1e-8, weight decay 0.01. */
    public static OptimizerConfig defaults() {
        return new OptimizerConfig(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f);
    }

    public OptimizerConfig withLr(float newLr) {
        return new OptimizerConfig(newLr, beta1, beta2, eps, weightDecay);
    }

    public OptimizerConfig withWeightDecay(float wd) {
        return new OptimizerConfig(lr, beta1, beta2, eps, wd);
    }
}
