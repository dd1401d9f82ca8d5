package ai.lorakit.cli;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.LoraFaPolicy;
import ai.lorakit.adapters.optim.LoraPlusPolicy;
import ai.lorakit.adapters.optim.OptimizerPolicy;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * {@code --method}: which parametrisation and optimizer policy train does (ARCHITECTURE.md layer 3).
 * delta-lora and lora-drop are recognised but arrive with the training-time variants issue.
 */
enum Method {
    LORA("lora", 1e-3f),
    LORA_PLUS("lora-plus", 1e-3f),
    LORA_FA("lora-fa", 1e-3f),
    DORA("dora", 1e-3f),
    VERA("vera", 1e-2f),
    ADALORA("adalora", 1e-3f),
    FULL("full", 3e-4f),
    DELTA_LORA("delta-lora", 1e-3f),
    LORA_DROP("lora-drop", 1e-3f);

    final String cliName;
    /** The --lr default: VeRA trains only scaling vectors and wants a larger rate (VeRA paper, section 4). */
    final float defaultLr;

    Method(String cliName, float defaultLr) {
        this.cliName = cliName;
        this.defaultLr = defaultLr;
    }

    static Method parse(String s) {
        for (Method m : values()) {
            if (m.cliName.equals(s.toLowerCase(Locale.ROOT))) {
                if (m == DELTA_LORA || m == LORA_DROP) {
                    throw new UsageException("--method " + m.cliName
                            + ": not yet: arrives with the training-time variants issue");
                }
                return m;
            }
        }
        throw new UsageException("--method: unknown method '" + s + "'; choose one of "
                + String.join(", ", Arrays.stream(values()).map(m -> m.cliName).toList()));
    }

    /** The adapter settings the train command collects. */
    record Settings(int r, float alpha, float dropout, boolean rslora, List<String> targets, float loraPlusRatio,
                    int veraR, int adaloraInitR, int adaloraTargetR, int steps, long seed) {
    }

    /** The adapter config of this method, or null for full fine-tuning. */
    AdapterConfig adapterConfig(Settings s) {
        LoraConfig lora = new LoraConfig(s.r(), s.alpha(), s.dropout(), s.rslora(), LoraConfig.Init.KAIMING, false,
                s.targets(), Map.of(), Map.of());
        return switch (this) {
            case LORA, LORA_PLUS, LORA_FA -> lora;
            case DORA -> lora.withDora(true);
            case VERA -> new VeraConfig(s.veraR(), s.seed(), true, 0.1f, s.dropout(), s.targets());
            case ADALORA -> new AdaLoraConfig(s.adaloraInitR(), s.adaloraTargetR(), 0, 0, 1, 0.85f, 0.85f, 0.5f,
                    s.steps(), s.alpha(), s.dropout(), s.targets(), null);
            case FULL -> null;
            case DELTA_LORA, LORA_DROP -> throw new UsageException("--method " + cliName + ": not yet");
        };
    }

    OptimizerPolicy policy(Settings s) {
        return switch (this) {
            case LORA_PLUS -> LoraPlusPolicy.ofRatio(s.loraPlusRatio());
            case LORA_FA -> new LoraFaPolicy();
            default -> new AdamWPolicy();
        };
    }
}
