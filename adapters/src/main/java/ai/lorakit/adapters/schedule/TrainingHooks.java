package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.optim.DeltaLoraPolicy;
import ai.lorakit.adapters.optim.DeltaLoraUpdater;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/** Builds the one {@link TrainingHook} a training run needs, and composes hooks. */
public final class TrainingHooks {
    private TrainingHooks() {
    }

    /**
     * The hook for a run over {@code modules} (every adapted module of the model) updated by {@code optimizer}:
     * <ul>
     *   <li>AdaLoRA modules: a {@link RankAllocator} over all of them (orthogonal regulariser + rank allocation);</li>
     *   <li>a {@link DeltaLoraPolicy} optimizer: a {@link DeltaLoraUpdater} (W += λ·s·(B'A' − BA));</li>
     *   <li>otherwise {@link TrainingHook#NONE}.</li>
     * </ul>
     * Always build it and call it every step (see {@link TrainingHook}); that is what makes AdaLoRA and Delta-LoRA
     * impossible to forget. LoRA-drop is a two-stage procedure instead ({@link LoraDrop}).
     *
     * @throws IllegalArgumentException AdaLoRA modules mixed with other kinds, or two different AdaLoRA configs
     *                                  (one trainable AdaLoRA adapter per model, as PEFT)
     */
    public static TrainingHook forTraining(List<AdaptedLinear> modules, Optimizer optimizer) {
        if (modules == null || optimizer == null) {
            throw new IllegalArgumentException("training hooks need the modules and the optimizer, got " + modules
                    + ", " + optimizer);
        }
        List<TrainingHook> hooks = new ArrayList<>();
        try {
            List<AdaptedLinear> ada = modules.stream().filter(m -> m.config() instanceof AdaLoraConfig).toList();
            if (!ada.isEmpty()) {
                if (ada.size() != modules.size()) {
                    throw new IllegalArgumentException("AdaLoRA's rank budget is global: every adapted module must be"
                            + " AdaLoRA, but " + (modules.size() - ada.size()) + " of " + modules.size() + " are not");
                }
                hooks.add(RankAllocator.create((AdaLoraConfig) ada.getFirst().config(), ada));
            }
            if (optimizer.policy() instanceof DeltaLoraPolicy) {
                hooks.add(DeltaLoraUpdater.create(optimizer, modules));
            }
        } catch (RuntimeException e) {
            hooks.forEach(TrainingHook::close);
            throw e;
        }
        return compose(hooks);
    }

    /**
     * Runs the hooks in order (states merged; names must not collide).
     *
     * @throws IllegalArgumentException more than one hook with a regulariser (its loss has one stats slot)
     */
    public static TrainingHook compose(List<TrainingHook> hooks) {
        List<TrainingHook> hs = List.copyOf(hooks);
        if (hs.isEmpty()) {
            return TrainingHook.NONE;
        }
        if (hs.size() == 1) {
            return hs.getFirst();
        }
        List<TrainingHook> regs = hs.stream().filter(TrainingHook::hasRegulariser).toList();
        if (regs.size() > 1) {
            throw new IllegalArgumentException("training hooks " + regs + " both have a regulariser; at most one of"
                    + " the composed hooks may have one");
        }
        return new TrainingHook() {
            @Override
            public boolean hasRegulariser() {
                return !regs.isEmpty();
            }

            @Override
            public void beforeOptimizerStep(int step, Tensor stats, int at) {
                for (TrainingHook h : hs) {
                    h.beforeOptimizerStep(step, stats, at);
                }
            }

            @Override
            public void afterOptimizerStep(int step) {
                for (TrainingHook h : hs) {
                    h.afterOptimizerStep(step);
                }
            }

            @Override
            public void afterStep(int step) {
                for (TrainingHook h : hs) {
                    h.afterStep(step);
                }
            }

            @Override
            public Map<String, Tensor> state() {
                Map<String, Tensor> out = new LinkedHashMap<>();
                for (TrainingHook h : hs) {
                    h.state().forEach((k, v) -> {
                        if (out.put(k, v) != null) {
                            throw new IllegalStateException("two training hooks both keep state named " + k);
                        }
                    });
                }
                return Collections.unmodifiableMap(out);
            }

            @Override
            public void stateRestored() {
                hs.forEach(TrainingHook::stateRestored);
            }

            @Override
            public void close() {
                hs.forEach(TrainingHook::close);
            }

            @Override
            public String toString() {
                return "TrainingHooks" + hs;
            }
        };
    }
}
