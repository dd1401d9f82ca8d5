package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static ai.lorakit.models.gpt2.Gpt2ReferenceData.assertScalar;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link DecoderModel} on the CPU backend computes what an independent PyTorch GPT-2 computes
 * ({@code ci/reference/gpt2_reference.py}, float64 autograd, README "GPT-2"): the tiny HF checkpoint loads, and
 * logits, mean cross-entropy and gradients agree for the base model (full fine-tuning, every parameter),
 * for LoRA and DoRA (r=4, alpha=8 on c_attn and c_fc, non-identity adapters, DoRA norm detached), for the
 * merged adapters, and for a BF16 copy of the checkpoint.
 *
 * <p>Tolerance: {@link Tolerance#F32} throughout. The reference is exact up to the F32 rounding of the stored
 * values, so the whole budget is lorakit's fp32 accumulation over 2 layers (values are O(1)).
 */
class Gpt2ReferenceTest {

    private static final Tolerance TOL = Tolerance.F32;

    private static DecoderModel load(String checkpoint, Backend backend) throws IOException {
        return DecoderModel.load(Gpt2ReferenceData.dir().resolve(checkpoint), backend);
    }

    private static LoraConfig lora(boolean dora) {
        return LoraConfig.of(4, 8f, "c_attn", "c_fc").withDora(dora);
    }

    /** Logits of each window's inputs (columns 0..T-1) against the reference logits [B,T,V]. */
    private static double assertLogits(String what, DecoderModel model, SafetensorsFile ref, Tolerance tol) {
        model.setTraining(false);
        int[][] windows = Gpt2ReferenceData.windows(ref);
        float[] all = ref.floats("logits");
        int t = windows[0].length - 1;
        int v = model.vocabSize();
        double max = 0;
        for (int b = 0; b < windows.length; b++) {
            float[] got = model.logits(Arrays.copyOf(windows[b], t));
            float[] want = Arrays.copyOfRange(all, b * t * v, (b + 1) * t * v);
            Tolerance.Result r = tol.compare(what + " logits[" + b + "]", got, want);
            assertTrue(r.ok(), r.describe());
            max = Math.max(max, r.maxAbsDiff());
        }
        return max;
    }

    @Test
    void baseLogitsAndLossMatchReference() throws IOException {
        try (Backend backend = new CpuBackend(); DecoderModel model = load("tiny", backend);
             SafetensorsFile ref = Gpt2ReferenceData.open("expected_base.safetensors")) {
            assertEquals(37, model.vocabSize());
            assertEquals(16, model.maxSeqLen());
            double dl = assertLogits("base", model, ref, TOL);
            double dloss = assertScalar("base evalLoss", model.evalLoss(Gpt2ReferenceData.windows(ref)),
                    Gpt2ReferenceData.loss(ref), TOL);
            report("base: max |logit diff| %.2e, |loss diff| %.2e", dl, dloss);
        }
    }

    @Test
    void fullFineTuneGradientsMatchReference() throws IOException {
        try (Backend backend = new CpuBackend(); DecoderModel model = load("tiny", backend);
             SafetensorsFile ref = Gpt2ReferenceData.open("expected_base.safetensors")) {
            model.setFullFineTune(true);
            model.setTraining(true);   // no dropout in the base model: same maths as eval
            double loss = model.trainStep(Gpt2ReferenceData.windows(ref), 1f);
            double dloss = assertScalar("full fine-tune trainStep loss", loss, Gpt2ReferenceData.loss(ref), TOL);
            Set<String> seen = new TreeSet<>();
            double dg = 0;
            List<String> failures = new ArrayList<>();
            for (Parameter p : model.parameters()) {
                assertTrue(p.trainable(), p + " should be trainable in full fine-tuning");
                assertTrue(p.grad() != null, p + " has no gradient after trainStep");
                Tolerance.Result r = Gpt2ReferenceData.compareTensor("grad " + p.name(), p.grad(), ref,
                        "grad." + p.name(), TOL);
                dg = Math.max(dg, r.maxAbsDiff());
                if (!r.ok()) {
                    failures.add(r.describe());
                }
                seen.add("grad." + p.name());
            }
            assertTrue(failures.isEmpty(), failures.size() + " gradients differ:\n" + String.join("\n", failures));
            assertEquals(gradNames(ref), seen, "every reference gradient is compared exactly once");
            report("full fine-tune: |loss diff| %.2e, max |grad diff| %.2e over %d tensors", dloss, dg, seen.size());
        }
    }

    @Test
    void loraLogitsLossAndGradientsMatchReference() throws IOException {
        checkAdapter("expected_lora.safetensors", false);
    }

    @Test
    void doraLogitsLossAndGradientsMatchReference() throws IOException {
        checkAdapter("expected_dora.safetensors", true);
    }

    private static void checkAdapter(String file, boolean dora) throws IOException {
        String what = dora ? "dora" : "lora";
        try (Backend backend = new CpuBackend(); DecoderModel model = load("tiny", backend);
             SafetensorsFile ref = Gpt2ReferenceData.open(file)) {
            model.attachAdapters(lora(dora), 7);
            List<String> copied = Gpt2ReferenceData.loadAdapters(backend, model.parameters(), ref);
            // 2 layers x {c_attn, c_fc} x {A, B (, m)}
            assertEquals(2 * 2 * (dora ? 3 : 2), copied.size(), what + " adapter tensors copied: " + copied);
            assertEquals(4, model.adaptedModules().size(), what + " adapted modules");

            double dl = assertLogits(what, model, ref, TOL);
            int[][] windows = Gpt2ReferenceData.windows(ref);
            double dloss = assertScalar(what + " evalLoss", model.evalLoss(windows), Gpt2ReferenceData.loss(ref), TOL);

            model.setTraining(true);   // dropout 0: same maths as eval
            double loss = model.trainStep(windows, 1f);
            dloss = Math.max(dloss, assertScalar(what + " trainStep loss", loss, Gpt2ReferenceData.loss(ref), TOL));
            Set<String> seen = new TreeSet<>();
            double dg = 0;
            List<String> failures = new ArrayList<>();
            for (Parameter p : model.parameters()) {
                if (!copied.contains(p.name())) {
                    assertNull(p.grad(), what + ": base parameter " + p + " must stay frozen without a gradient");
                    continue;
                }
                assertTrue(p.grad() != null, p + " has no gradient after trainStep");
                Tolerance.Result r = Gpt2ReferenceData.compareTensor(what + " grad " + p.name(), p.grad(), ref,
                        "grad." + p.name(), TOL);
                dg = Math.max(dg, r.maxAbsDiff());
                if (!r.ok()) {
                    failures.add(r.describe());
                }
                seen.add("grad." + p.name());
            }
            assertTrue(failures.isEmpty(), what + ": " + failures.size() + " gradients differ:\n"
                    + String.join("\n", failures));
            assertEquals(gradNames(ref), seen, what + ": every reference gradient is compared exactly once");
            report("%s: max |logit diff| %.2e, |loss diff| %.2e, max |grad diff| %.2e over %d tensors",
                    what, dl, dloss, dg, seen.size());
        }
    }

    @Test
    void mergedAdaptersReproduceAdaptedLogits() throws IOException {
        for (boolean dora : new boolean[]{false, true}) {
            try (Backend backend = new CpuBackend(); DecoderModel model = load("tiny", backend);
                 SafetensorsFile ref = Gpt2ReferenceData.open(dora ? "expected_dora.safetensors"
                         : "expected_lora.safetensors")) {
                model.attachAdapters(lora(dora), 7);
                Gpt2ReferenceData.loadAdapters(backend, model.parameters(), ref);
                model.adapters().merge();
                double dl = assertLogits((dora ? "dora" : "lora") + " merged", model, ref, TOL);
                report("%s merged: max |logit diff| %.2e", dora ? "dora" : "lora", dl);
            }
        }
    }

    @Test
    void bf16CheckpointLoadsAndMatchesItsReference() throws IOException {
        // model_bf16 holds the tiny weights rounded to bf16; its reference is computed from those bf16 values,
        // and the CPU backend computes in fp32 from the (exactly representable) bf16 weights, so F32 applies.
        try (Backend backend = new CpuBackend(); DecoderModel model = load("model_bf16", backend);
             SafetensorsFile ref = Gpt2ReferenceData.open("expected_bf16.safetensors")) {
            double dl = assertLogits("bf16 checkpoint", model, ref, TOL);
            double dloss = assertScalar("bf16 evalLoss", model.evalLoss(Gpt2ReferenceData.windows(ref)),
                    Gpt2ReferenceData.loss(ref), TOL);
            report("bf16 checkpoint: max |logit diff| %.2e, |loss diff| %.2e", dl, dloss);
        }
    }

    /** One line of measured errors in the test log (the assertions above are what decide pass or fail). */
    private static void report(String format, Object... args) {
        System.out.println("Gpt2ReferenceTest " + String.format(format, args));
    }

    private static Set<String> gradNames(SafetensorsFile ref) {
        Set<String> s = new TreeSet<>();
        for (String n : ref.names()) {
            if (n.startsWith("grad.")) {
                s.add(n);
            }
        }
        return s;
    }
}
