package ai.lorakit.models.train;

import java.util.Map;

/**
 * The checkpoint's {@code trainer.json}: everything besides tensors that a resumed run needs to continue exactly
 * (Jackson, snake_case keys).
 *
 * @param format             {@link #FORMAT}
 * @param version            {@link #VERSION}
 * @param step               completed optimizer steps
 * @param lrStep             position in the LR schedule (= step: the next update uses schedule.at(step))
 * @param lr                 learning rate of the last update
 * @param samplerSeed        WindowSampler.State seed
 * @param samplerWindowsDrawn WindowSampler.State windowsDrawn
 * @param optimizerSteps     Optimizer.stepCount()
 * @param momentSteps        per-parameter AdamW step counts t (the moments are in optimizer.safetensors)
 * @param dropoutSteps       per adapted module, AdaptedLinear.dropoutStep()
 * @param dropoutSeeds       per adapted module, AdaptedLinear.dropoutSeed(0): identifies the module's dropout
 *                           stream, which follows from the seed the adapters were attached with
 * @param elapsedS           wall time of the run up to this checkpoint
 * @param config             the training settings
 * @param hasAdapter         whether adapter/ (PEFT format) is in the checkpoint
 * @param run                the caller's description of the run (the CLI stores its arguments here)
 */
public record TrainerState(String format, int version, int step, int lrStep, float lr, long samplerSeed,
                           long samplerWindowsDrawn, int optimizerSteps, Map<String, Integer> momentSteps,
                           Map<String, Long> dropoutSteps, Map<String, Long> dropoutSeeds, double elapsedS, TrainConfig config, boolean hasAdapter,
                           Map<String, Object> run) {

    public static final String FORMAT = "lorakit-checkpoint";
    public static final int VERSION = 1;
}
