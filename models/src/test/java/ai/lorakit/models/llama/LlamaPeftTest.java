package ai.lorakit.models.llama;

import ai.lorakit.adapters.AdaLoraConfig;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.SplittableRandom;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves PEFT adapters of the Llama family use HF's names in and out: LoRA, DoRA, VeRA and AdaLoRA on all seven
 * default targets of a tiny Qwen3 (q/k norm, GQA) are saved under
 * {@code base_model.model.model.layers.N.self_attn.q_proj.lora_A.weight} and the like (every module of both layers,
 * nothing else but VeRA's shared projections), and a fresh model loading the folder gives bit-identical logits to
 * the model that saved it (non-identity adapters: all parameters randomised, so a lost tensor changes the logits).
 */
class LlamaPeftTest {

    @TempDir
    Path dir;

    private static final int[] PROBE = {3, 1, 4, 1, 5, 9, 2, 6};

    @Test
    void everyAdapterKindRoundTripsUnderHfNames() throws IOException {
        List<String> t = LlamaFamily.QWEN3.defaultTargets();
        AdapterConfig[] kinds = {LoraConfig.of(4, 8f, t.toArray(String[]::new)),
            LoraConfig.of(4, 8f, t.toArray(String[]::new)).withDora(true),
            VeraConfig.of(8, t.toArray(String[]::new)), AdaLoraConfig.of(10, t.toArray(String[]::new))};
        LlamaConfig cfg = TinyLlama.config(LlamaFamily.QWEN3, false);
        try (CpuBackend be = new CpuBackend()) {
            for (AdapterConfig kind : kinds) {
                Path out = dir.resolve(kind.peftType() + kind.hashCode());
                float[] want;
                try (DecoderModel m = DecoderModel.random(cfg, be, 3)) {
                    m.attachAdapters(kind, 5);
                    SplittableRandom rng = new SplittableRandom(9);
                    for (Parameter p : m.adapters().parameters()) {
                        float[] v = new float[(int) p.value().numel()];
                        for (int i = 0; i < v.length; i++) {
                            v[i] = (float) rng.nextGaussian() * 0.3f;
                        }
                        try (Tensor h = be.upload(v, p.value().shape())) {
                            be.copy(h, p.value());
                        }
                    }
                    m.setTraining(false);
                    want = m.logits(PROBE);
                    m.adapters().savePeft(out, "tiny-qwen3");
                }
                TreeSet<String> keys;
                try (SafetensorsFile f = SafetensorsFile.open(out.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
                    keys = new TreeSet<>(f.names());
                }
                String what = kind.peftType() + ": ";
                for (int l = 0; l < 2; l++) {
                    for (String mod : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj")) {
                        String prefix = "base_model.model.model.layers." + l + "." + mod + ".";
                        assertTrue(keys.stream().anyMatch(k -> k.startsWith(prefix)), what + prefix + " in " + keys);
                    }
                }
                assertTrue(keys.stream().allMatch(k -> k.startsWith("base_model.model.model.layers.")
                        || k.startsWith("base_model.vera_")), what + keys);
                try (DecoderModel fresh = DecoderModel.random(cfg, be, 3)) {
                    fresh.attachAdapters(PeftAdapterIO.readConfig(out), 0);
                    fresh.adapters().loadPeft(out);
                    fresh.setTraining(false);
                    float[] got = fresh.logits(PROBE);
                    assertArrayEquals(want, got, what + "logits after the round trip");
                    fresh.detachAdapters();
                    assertFalse(java.util.Arrays.equals(want, fresh.logits(PROBE)), what + "the adapters changed"
                            + " nothing");
                }
                assertEquals(14, moduleCount(keys), what + "adapted modules in the file");
            }
        }
    }

    /** Distinct module names among the per-layer keys. */
    private static int moduleCount(TreeSet<String> keys) {
        TreeSet<String> mods = new TreeSet<>();
        for (String k : keys) {
            if (k.startsWith(PeftAdapterIO.PREFIX)) {
                mods.add(k.replaceAll("\\.(lora_[ABE]|lora_magnitude_vector|vera_lambda_[bd])(\\.weight)?$", ""));
            }
        }
        return mods.size();
    }
}
