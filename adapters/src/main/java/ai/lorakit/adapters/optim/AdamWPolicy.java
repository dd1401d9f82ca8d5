package ai.lorakit.adapters.optim;

/** Plain AdamW: one group with every trainable parameter at the config's learning rate and weight decay. */
public record AdamWPolicy() implements OptimizerPolicy {
}
