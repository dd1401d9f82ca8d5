/**
 * Optimizer policies, the "optimizer policy" axis of ARCHITECTURE.md layer 3: how the adapter's parameters are
 * updated, independently of what the adapted layer computes (parametrisation) and of schedules. AdamW, LoRA+
 * (VARIANTS.md section 2) and LoRA-FA (section 3); every per-tensor update is one
 * {@link ai.lorakit.gpu.Backend#adamw} call with torch.optim.AdamW semantics ({@link ai.lorakit.gpu.AdamW}).
 */
package ai.lorakit.adapters.optim;
