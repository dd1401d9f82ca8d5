package ai.lorakit.cli;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.DeltaLoraPolicy;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.OptimizerPolicy;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code --method}: which parametrisation and optimizer policy train does (ARCHITECTURE.md layer 3). Public so that
 * benchmarks configure each method exactly as {@code lorakit train} does ({@link Settings#defaults}).
 * The schedule axis (AdaLoRA's allocator, Delta-LoRA's W update) follows from the config and policy inside the
 * Trainer; LoRA-drop's two stages are {@link ai.lorakit.models.train.LoraDropTraining}.
 */
public enum Method {
    LORA("lora", 3e-3f),
    LORA_PLUS("lora-plus", 1e-3f),
    LORA_FA("lora-fa", 1e-2f),
    DORA("dora", 3e-3f),
    VERA("vera", 3e-2f),
    ADALORA("adalora", 3e-2f),
    FULL("full", 3e-4f),
    DELTA_LORA("delta-lora", 3e-3f),
    LORA_DROP("lora-drop", 3e-3f);

    final String cliName;
    /**
     * The --lr default: the lr with the best mean validation loss in the learning-rate sweep of
     * benchmarks/results/variants-brown.md (the embedded default model on Brown fiction, 150 steps, 2 seeds; issue
     * 14). TrainCommand's --lr help lists these values; MainTest keeps the two in step.
     */
    final float defaultLr;

    Method(String cliName, float defaultLr) {
        this.cliName = cliName;
        this.defaultLr = defaultLr;
    }

    /** The --method name, e.g. "lora-plus". */
    public String cliName() {
        return cliName;
    }

    /** The --lr default of this method. */
    public float defaultLr() {
        return defaultLr;
    }

    /** The method named {@code s} (a --method value), or a {@link UsageException} listing the names. */
    public static Method parse(String s) {
        for (Method m : values()) {
            if (m.cliName.equals(s.toLowerCase(Locale.ROOT))) {
                return m;
            }
        }
        throw new UsageException("--method: unknown method '" + s + "'; choose one of "
                + String.join(", ", Arrays.stream(values()).map(m -> m.cliName).toList()));
    }

    /**
     * The adapter settings the train command collects.
     *
     * @param adaloraTinit   AdaLoRA warm-up steps at the initial budget
     * @param adaloraTfinal  AdaLoRA final steps at the target budget
     * @param adaloraDeltaT  AdaLoRA steps between allocations
     * @param adaloraOrthReg AdaLoRA orthogonality regulariser weight
     * @param deltaLambda    Delta-LoRA's update ratio λ
     * @param deltaStart     Delta-LoRA's start step K
     */
    public record Settings(int r, float alpha, float dropout, boolean rslora, List<String> targets,
                           float loraPlusRatio, int veraR, int adaloraInitR, int adaloraTargetR, int adaloraTinit,
                           int adaloraTfinal, int adaloraDeltaT, float adaloraOrthReg, int steps, long seed,
                           float deltaLambda, int deltaStart) {

        /**
         * The train command's defaults for a run of {@code steps} steps: r 8, alpha 16, no dropout, the family's
         * default {@code targets} (Family#defaultTargets), LoRA+ ratio 16, VeRA r 256, AdaLoRA init_r 12 /
         * target_r 8 with
         * {@link #defaultTinit}, {@link #defaultTfinal}, deltaT {@value #DEFAULT_DELTA_T}, orth_reg 0.5,
         * Delta-LoRA λ 2 and {@link #defaultDeltaStart}.
         */
        public static Settings defaults(int steps, long seed, List<String> targets) {
            return new Settings(8, 16f, 0f, false, List.copyOf(targets), 16f, 256, 12, 8,
                    defaultTinit(steps), defaultTfinal(steps), DEFAULT_DELTA_T, 0.5f, steps, seed,
                    DeltaLoraPolicy.DEFAULT_LAMBDA, defaultDeltaStart(steps));
        }

        /**
         * AdaLoRA's default tinit: steps/10. PEFT's default is 0 (prune from the first step, before the importance
         * EMAs mean anything); the paper warms up at the initial budget first (section 3.3).
         */
        public static int defaultTinit(int steps) {
            return steps / 10;
        }

        /** AdaLoRA's default tfinal: steps/5 (the last fifth trains the final ranks; PEFT's default is 0). */
        public static int defaultTfinal(int steps) {
            return steps / 5;
        }

        /**
         * Delta-LoRA's default K: 500 (the value quoted with Algorithm 1, DeltaLoraPolicy) or steps/4 for runs
         * shorter than 2000 steps, so that W moves during the last three quarters of a short run too.
         */
        public static int defaultDeltaStart(int steps) {
            return Math.min(DeltaLoraPolicy.DEFAULT_START_STEP, steps / 4);
        }

        /** Steps between AdaLoRA allocations (PEFT's default is 1, the paper's runs use 100 on long runs). */
        public static final int DEFAULT_DELTA_T = 10;
    }

    /** The adapter config of this method, or null for full fine-tuning. */
    public AdapterConfig adapterConfig(Settings s) {
        LoraConfig lora = new LoraConfig(s.r(), s.alpha(), s.dropout(), s.rslora(), LoraConfig.Init.KAIMING, false,
                s.targets(), Map.of(), Map.of());
        return switch (this) {
            case LORA, LORA_PLUS, LORA_FA, DELTA_LORA, LORA_DROP -> lora;
            case DORA -> lora.withDora(true);
            case VERA -> new VeraConfig(s.veraR(), s.seed(), true, 0.1f, s.dropout(), s.targets());
            case ADALORA -> new AdaLoraConfig(s.adaloraInitR(), s.adaloraTargetR(), s.adaloraTinit(),
                    s.adaloraTfinal(), s.adaloraDeltaT(), 0.85f, 0.85f, s.adaloraOrthReg(), s.steps(), s.alpha(),
                    s.dropout(), s.targets(), null);
            case FULL -> null;
        };
    }

    /** The optimizer policy of this method. */
    public OptimizerPolicy policy(Settings s) {
        return switch (this) {
            case LORA_PLUS -> LoraPlusPolicy.ofRatio(s.loraPlusRatio());
            case LORA_FA -> new LoraFaPolicy();
            case DELTA_LORA -> new DeltaLoraPolicy(s.deltaLambda(), s.deltaStart());
            default -> new AdamWPolicy();
        };
    }
}
