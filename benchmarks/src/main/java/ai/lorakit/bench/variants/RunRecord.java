package ai.lorakit.bench.variants;

import java.util.List;

/**
 * One fine-tuning run of the variants table (one method, one learning rate, one seed), as written to the task's JSON
 * (variants-brown.json, variants-brownpos-llama.json) after every run; {@link #key} identifies it for a resume.
 *
 * @param method          the --method name
 * @param seed            split, window and adapter-init seed
 * @param lr              peak learning rate (one point of the method's sweep grid)
 * @param steps           optimizer steps (LoRA-drop: stage 2's; stage 1 is extra, see stage1Steps)
 * @param trainable       trainable elements during training (each shared tensor once; AdaLoRA at init_r)
 * @param totalParams     base model elements + trainable adapter elements
 * @param savedParams     elements in the exported adapter file (AdaLoRA pruned, Delta-LoRA rank 2r, LoRA-drop per
 *                        module); for full fine-tuning the whole model
 * @param valLoss         validation loss after training on the final evaluation set (nats/token; chooses the lr)
 * @param valPpl          exp(valLoss)
 * @param valTokens       tokens in the final evaluation
 * @param stepsPerS       optimizer steps per second of training time (evaluations and checkpoints excluded)
 * @param tokensPerS      training tokens per second (same time base)
 * @param wallS           wall time of the whole run (model load, evaluations, LoRA-drop's stage 1 included)
 * @param peakHeapMiB     peak heap used during the run (sampled)
 * @param peakRssMiB      peak resident set of the JVM during the run (sampled)
 * @param stage1Steps     LoRA-drop's stage-1 steps (0 otherwise)
 * @param valCurve        {step, validation loss} at every evaluation (step 0 = before training)
 * @param trainCurve      {step, training loss} of every step (AdaLoRA's includes the orthogonality term)
 * @param notes           method-specific facts (AdaLoRA's final ranks, LoRA-drop's selection, Delta-LoRA's K)
 * @param testLoss        test loss after training on the final evaluation set of the test split (the reported one)
 * @param testTokens      tokens in that test evaluation
 * @param schedule        "" for the method's default settings; else the AdaLoRA schedule tried (e.g. "tinit 0,
 *                        tfinal 0, deltaT 1"), which keeps the run out of the lr sweep
 * @param exactMatch      instruction task only: share of held-out prompts whose greedy completion equals the gold one
 *                        (null for the text task)
 * @param tagAccuracy     instruction task only: position-wise share of gold tags generated (null for the text task)
 */
record RunRecord(String method, long seed, double lr, int steps, long trainable, long totalParams, long savedParams,
                 double valLoss, double valPpl, long valTokens, double stepsPerS, double tokensPerS, double wallS,
                 double peakHeapMiB, double peakRssMiB, int stage1Steps, List<double[]> valCurve,
                 List<double[]> trainCurve, String notes, double testLoss, long testTokens, String schedule,
                 Double exactMatch, Double tagAccuracy) {

    /** What a resume compares: the same method, lr, seed and schedule ran already. */
    String key() {
        return key(method, lr, seed, schedule);
    }

    static String key(String method, double lr, long seed, String schedule) {
        return method + "|" + String.format(java.util.Locale.ROOT, "%.3e", lr) + "|" + seed + "|"
                + (schedule == null ? "" : schedule);
    }
}
