/**
 * The "schedule" axis of ARCHITECTURE.md layer 3: structure that changes during training. {@link
 * ai.lorakit.adapters.schedule.TrainingHook} is what the Trainer calls around every optimizer step (built by
 * {@link ai.lorakit.adapters.schedule.TrainingHooks#forTraining}); AdaLoRA's
 * {@link ai.lorakit.adapters.schedule.RankAllocator} and {@link ai.lorakit.adapters.schedule.OrthogonalRegularizer}
 * (VARIANTS.md section 6); LoRA-drop's {@link ai.lorakit.adapters.schedule.ImportanceMeter},
 * {@link ai.lorakit.adapters.schedule.LoraDropSelection} and {@link ai.lorakit.adapters.schedule.LoraDrop}
 * (section 8). Delta-LoRA's W update (section 7) is an optimizer policy with a hook,
 * {@link ai.lorakit.adapters.optim.DeltaLoraUpdater}.
 */
package ai.lorakit.adapters.schedule;
