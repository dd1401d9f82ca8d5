package ai.lorakit.models.train;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.optim.AdamWPolicy;
import ai.lorakit.adapters.optim.Optimizer;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the device-side guard of a Trainer step on a tiny GPT-2 with LoRA (CPU): when a gradient turns NaN while
 * the loss stays finite (a NaN put into one gradient buffer before step 3's kernels, through the step-window
 * event), the run stops with the gradient-norm message of TrainingDivergedException, and no trainable parameter
 * nor AdamW moment differs from what step 2 left (the update was skipped on the device, not undone).
 */
class StepGuardTest {

    @Test
    void aNanGradientStopsTheRunWithoutUpdatingAnything(@TempDir Path out) {
        try (Backend be = new CpuBackend(); DecoderModel model = TinyGpt2.random(be, 3)) {
            model.attachAdapters(LoraConfig.of(4, 8, "c_attn", "c_proj"), 5);
            TextDataset.Split data = TextDataset.of("english", EnglishText.documents(), new ByteTokenizer()).split(0.25, 7);
            TrainConfig cfg = new TrainConfig(5, 2, 16, 1e-2f, 0, TrainConfig.Schedule.CONSTANT, 0f, 0.01f, 1f, 1, 0, 1,
                    0, 9L, 1);
            try (Trainer t = new Trainer(model, new AdamWPolicy(), cfg, data.train(), data.validation(), out)) {
                List<Parameter> trainable = t.parameters().stream().filter(Parameter::trainable).toList();
                Map<String, float[]> after2 = new LinkedHashMap<>();
                t.setListener(new TrainListener() {
                    @Override
                    public void stepUploaded(int step) {
                        if (step == 3) {
                            snapshot(be, trainable, t.optimizer(), after2);
                            Parameter p = trainable.get(1);
                            float[] g = new float[(int) p.value().numel()];
                            g[g.length / 2] = Float.NaN;          // the backward adds to it: this gradient is NaN
                            be.write(p.grad(), g);
                        }
                    }
                });
                TrainingDivergedException e = assertThrows(TrainingDivergedException.class, t::run);
                assertEquals(3, e.step());
                assertTrue(e.getMessage().contains("the gradient norm is NaN"), e.getMessage());
                Map<String, float[]> now = new LinkedHashMap<>();
                snapshot(be, trainable, t.optimizer(), now);
                assertEquals(after2.keySet(), now.keySet());
                assertTrue(after2.size() > 2 * trainable.size(), "parameters and moments are compared");
                after2.forEach((name, v) -> assertArrayEquals(v, now.get(name), name + " changed in the NaN step"));
            }
        }
    }

    /** Every trainable value and AdamW moment, by name. */
    private static void snapshot(Backend be, List<Parameter> ps, Optimizer opt, Map<String, float[]> into) {
        for (Parameter p : ps) {
            into.put(p.name(), be.download(p.value()));
        }
        opt.state().forEach((name, st) -> {
            into.put(name + ".m", be.download(st.m()));
            into.put(name + ".v", be.download(st.v()));
        });
    }
}
