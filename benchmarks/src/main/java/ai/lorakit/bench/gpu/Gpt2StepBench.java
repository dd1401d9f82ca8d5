package ai.lorakit.bench.gpu;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.adapters.optim.OptimizerConfig;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Config;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * GPT-2 124M-shaped LoRA fine-tuning step on a CUDA backend, tokens per second (PERFORMANCE.md: >= 1.5 x PEFT +
 * transformers eager, >= 1.0 x with torch.compile; the peer is benchmarks/peers/gpt2_finetune_peft.py with the
 * same shapes in the same run). GPT-2 small (12 layers, 768 wide, 12 heads, vocab 50257), randomly initialised
 * (no download), LoRA r=16 alpha=32 on c_attn, c_proj, c_fc (lorakit's default targets; the peer uses the same),
 * AdamW; one step = trainStep (forward + backward) + optimizer step + zeroGrad on B x T random tokens.
 * Wall-clock time over {@code steps} steps after {@code warmup} steps, synchronised at both ends.
 */
final class Gpt2StepBench {

    private Gpt2StepBench() {
    }

    static Map<String, Object> run(Harness h, int batch, int seqLen, int warmup, int steps) {
        Map<String, Object> out = new LinkedHashMap<>();
        Gpt2Config cfg = Gpt2Config.gpt2Small();
        out.put("model", "gpt2-124M shape, random init");
        out.put("batch", batch);
        out.put("seq_len", seqLen);
        out.put("lora", "r=16 alpha=32 on c_attn,c_proj,c_fc");
        SplittableRandom rng = new SplittableRandom(7);
        int[][] windows = new int[batch][seqLen + 1];
        for (int[] w : windows) {
            for (int i = 0; i < w.length; i++) {
                w[i] = rng.nextInt(cfg.vocabSize());
            }
        }
        try (DecoderModel m = DecoderModel.random(cfg, h.be, 1)) {
            m.attachAdapters(LoraConfig.of(16, 32f, "c_attn", "c_proj", "c_fc"), 3);
            m.setTraining(true);
            try (Optimizer opt = Optimizer.create(new AdamWPolicy(), OptimizerConfig.defaults().withWeightDecay(0f),
                    m.parameters(), List.of())) {
                double loss = 0;
                for (int i = 0; i < warmup; i++) {
                    loss = step(m, opt, windows);
                }
                h.sync();
                long allocs = h.dev.allocations();
                long t0 = System.nanoTime();
                for (int i = 0; i < steps; i++) {
                    loss = step(m, opt, windows);
                }
                h.sync();
                double sec = (System.nanoTime() - t0) / 1e9;
                out.put("steps", steps);
                out.put("seconds", sec);
                out.put("tokens_per_s", (double) batch * seqLen * steps / sec);
                out.put("last_loss", loss);
                out.put("peak_device_bytes", h.dev.peakAllocatedBytes());
                // device allocations per step after warm-up (cuMemFree synchronises; 0 is the goal)
                out.put("allocations_per_step", (double) (h.dev.allocations() - allocs) / steps);   // lorakit's allocations, cuBLAS workspace included
            }
        }
        return out;
    }

    private static double step(DecoderModel m, Optimizer opt, int[][] windows) {
        double loss = m.trainStep(windows, 1f);
        opt.step();
        opt.zeroGrad();
        return loss;
    }
}
