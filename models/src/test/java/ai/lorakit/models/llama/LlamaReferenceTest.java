package ai.lorakit.models.llama;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2ReferenceData;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

import static ai.lorakit.models.gpt2.Gpt2ReferenceData.assertScalar;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Proves that {@link LlamaFamily} on the CPU backend computes what an independent plain-PyTorch model of each HF
 * family computes ({@code ci/reference/llama_reference.py}, float64 autograd): Llama (untied, llama3 rope_scaling,
 * GQA), Mistral (tied, sliding_window above the window), Qwen2 (q/k/v biases, MQA, tied) and Qwen3 (q/k norm,
 * head_dim 8 != C/H, untied). Each tiny HF checkpoint loads through config.json's model_type, and logits, mean
 * cross-entropy and every gradient agree for full fine-tuning, for LoRA and DoRA on all seven default targets
 * (non-identity adapters, DoRA norm detached), and for the merged adapters. Tolerance {@link Tolerance#F32} (1e-5
 * scale): the reference is exact up to the F32 rounding of the stored values.
 */
class LlamaReferenceTest {

    private static final Tolerance TOL = Tolerance.F32;

    private static Path dir(String family) {
        for (Path p : List.of(Path.of("..", "ci", "reference", "llama", family),
                Path.of("ci", "reference", "llama", family))) {
            if (Files.isRegularFile(p.resolve("tiny").resolve("model.safetensors"))) {
                return p;
            }
        }
        return fail("Llama reference for " + family + " not found under ../ci/reference/llama; regenerate it from"
                + " the repository root with /usr/bin/python3 ci/reference/llama_reference.py");
    }

    private static DecoderModel load(String family, Backend be) throws IOException {
        DecoderModel m = DecoderModel.load(dir(family).resolve("tiny"), be);
        LlamaConfig cfg = assertInstanceOf(LlamaConfig.class, m.config());
        assertEquals(family, cfg.family().modelType());
        return m;
    }

    private static double assertLogits(String what, DecoderModel model, SafetensorsFile ref) {
        model.setTraining(false);
        int[][] windows = Gpt2ReferenceData.windows(ref);
        float[] all = ref.floats("logits");
        int t = windows[0].length - 1;
        int v = model.vocabSize();
        double max = 0;
        for (int b = 0; b < windows.length; b++) {
            float[] got = model.logits(Arrays.copyOf(windows[b], t));
            Tolerance.Result r = TOL.compare(what + " logits[" + b + "]", got,
                    Arrays.copyOfRange(all, b * t * v, (b + 1) * t * v));
            assertTrue(r.ok(), r.describe());
            max = Math.max(max, r.maxAbsDiff());
        }
        return max;
    }

    /** Compares every gradient of {@code params} whose name is in {@code names} (null: all); returns the max error. */
    private static double assertGradients(String what, List<Parameter> params, List<String> names,
                                          SafetensorsFile ref) {
        Set<String> seen = new TreeSet<>();
        List<String> failures = new ArrayList<>();
        double max = 0;
        for (Parameter p : params) {
            if (names != null && !names.contains(p.name())) {
                assertNull(p.grad(), what + ": frozen parameter " + p + " must have no gradient");
                continue;
            }
            assertTrue(p.grad() != null, p + " has no gradient after trainStep");
            Tolerance.Result r = Gpt2ReferenceData.compareTensor(what + " grad " + p.name(), p.grad(), ref,
                    "grad." + p.name(), TOL);
            max = Math.max(max, r.maxAbsDiff());
            if (!r.ok()) {
                failures.add(r.describe());
            }
            seen.add("grad." + p.name());
        }
        assertTrue(failures.isEmpty(), what + ": " + failures.size() + " gradients differ:\n"
                + String.join("\n", failures));
        Set<String> want = new TreeSet<>();
        ref.names().stream().filter(n -> n.startsWith("grad.")).forEach(want::add);
        assertEquals(want, seen, what + ": every reference gradient is compared exactly once");
        return max;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3"})
    void fullFineTuneLogitsLossAndGradientsMatchReference(String family) throws IOException {
        try (Backend be = new CpuBackend(); DecoderModel model = load(family, be);
             SafetensorsFile ref = Gpt2ReferenceData.open(dir(family).resolve("expected_base.safetensors"))) {
            int[][] windows = Gpt2ReferenceData.windows(ref);
            double dl = assertLogits(family, model, ref);
            double dloss = assertScalar(family + " evalLoss", model.evalLoss(windows), Gpt2ReferenceData.loss(ref),
                    TOL);
            model.setFullFineTune(true);
            model.setTraining(true);
            dloss = Math.max(dloss, assertScalar(family + " trainStep loss", model.trainStep(windows, 1f),
                    Gpt2ReferenceData.loss(ref), TOL));
            double dg = assertGradients(family + " full", model.parameters(), null, ref);
            report("%s full fine-tune: max |logit diff| %.2e, |loss diff| %.2e, max |grad diff| %.2e", family, dl,
                    dloss, dg);
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama", "mistral", "qwen2", "qwen3"})
    void loraAndDoraMatchReferenceAndMergeExactly(String family) throws IOException {
        for (boolean dora : new boolean[] {false, true}) {
            String what = family + (dora ? " dora" : " lora");
            try (Backend be = new CpuBackend(); DecoderModel model = load(family, be);
                 SafetensorsFile ref = Gpt2ReferenceData.open(dir(family).resolve(
                         dora ? "expected_dora.safetensors" : "expected_lora.safetensors"))) {
                // no targets given: the family's default (all seven linears of a block)
                model.attachAdapters(LoraConfig.of(4, 8f, model.config().family().defaultTargets()
                        .toArray(String[]::new)).withDora(dora), 7);
                List<String> copied = Gpt2ReferenceData.loadAdapters(be, model.parameters(), ref);
                assertEquals(2 * 7 * (dora ? 3 : 2), copied.size(), what + " adapter tensors: " + copied);
                int[][] windows = Gpt2ReferenceData.windows(ref);
                double dl = assertLogits(what, model, ref);
                model.setTraining(true);
                double dloss = assertScalar(what + " trainStep loss", model.trainStep(windows, 1f),
                        Gpt2ReferenceData.loss(ref), TOL);
                double dg = assertGradients(what, model.parameters(), copied, ref);
                model.adapters().merge();
                double dm = assertLogits(what + " merged", model, ref);
                report("%s: max |logit diff| %.2e, |loss diff| %.2e, max |grad diff| %.2e, merged %.2e", what, dl,
                        dloss, dg, dm);
            }
        }
    }

    private static void report(String format, Object... args) {
        System.out.println("LlamaReferenceTest " + String.format(format, args));
    }
}
