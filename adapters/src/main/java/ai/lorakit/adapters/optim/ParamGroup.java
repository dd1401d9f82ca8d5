package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;

import java.util.List;

/**
 * One parameter group, as torch's {@code param_groups} entries: a name, the current learning rate and weight
 * decay, and the (trainable) parameters it updates.
 */
public record ParamGroup(String name, float lr, float weightDecay, List<Parameter> params) {

    public ParamGroup {
        Checks.require(name != null && !name.isEmpty(), "name", name, "must be non-empty");
        Checks.require(Float.isFinite(lr) && lr >= 0, "lr of group " + name, lr, "must be finite and >= 0");
        Checks.require(Float.isFinite(weightDecay) && weightDecay >= 0, "weight_decay of group " + name,
                weightDecay, "must be finite and >= 0");
        params = List.copyOf(params);
    }

    ParamGroup withLr(float newLr) {
        return new ParamGroup(name, newLr, weightDecay, params);
    }
}
