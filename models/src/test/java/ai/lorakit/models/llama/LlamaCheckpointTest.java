package ai.lorakit.models.llama;

import ai.lorakit.adapters.io.HfWeights;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.decoder.DecoderModel;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves Llama-family HF checkpoints through HfWeights: an F32 model saved as shards + index loads back with
 * bit-identical logits (a tied Qwen2 included: no lm_head tensor is written or needed); a BF16 save loads to the
 * bf16-rounded weights (saving those again as F32 and reloading is exact); an F16 shard is read; a shard holding a
 * tensor of no parameter is refused naming the index and the tensor.
 */
class LlamaCheckpointTest {

    @TempDir
    Path dir;

    private static final int[] PROBE = {1, 5, 9, 200, 7, 7};

    private static long shardCount(Path d) throws IOException {
        try (Stream<Path> s = Files.list(d)) {
            return s.filter(p -> p.getFileName().toString().matches("model-\\d{5}-of-\\d{5}\\.safetensors")).count();
        }
    }

    @Test
    void shardedF32Bf16AndF16CheckpointsLoad() throws IOException {
        try (CpuBackend be = new CpuBackend()) {
            for (LlamaFamily f : new LlamaFamily[] {LlamaFamily.LLAMA, LlamaFamily.QWEN2, LlamaFamily.QWEN3}) {
                Path d = dir.resolve(f.modelType());
                boolean tied = f == LlamaFamily.QWEN2;
                try (DecoderModel m = DecoderModel.random(TinyLlama.config(f, tied), be, 5)) {
                    m.setTraining(false);
                    float[] want = m.logits(PROBE);
                    m.saveHf(d, DType.F32, 50_000);
                    assertTrue(shardCount(d) >= 2, f.modelType() + " shards: " + shardCount(d));
                    try (DecoderModel back = DecoderModel.load(d, be)) {
                        back.setTraining(false);
                        assertArrayEquals(want, back.logits(PROBE), f.modelType() + " sharded F32 round trip");
                    }
                    try (HfWeights w = HfWeights.open(d)) {
                        assertEquals(!tied, w.contains("lm_head.weight"), f.modelType() + " lm_head written iff untied");
                    }
                }
            }
            Path bf = dir.resolve("bf16");
            Path again = dir.resolve("again");
            try (DecoderModel m = DecoderModel.random(TinyLlama.config(LlamaFamily.LLAMA, false), be, 6)) {
                m.saveHf(bf, DType.BF16, 50_000);
            }
            try (DecoderModel a = DecoderModel.load(bf, be)) {
                a.setTraining(false);
                a.saveHf(again, DType.F32);
                try (DecoderModel b = DecoderModel.load(again, be)) {
                    b.setTraining(false);
                    assertArrayEquals(a.logits(PROBE), b.logits(PROBE), "bf16 weights are exact in F32");
                }
            }
            // F16: the same tensors stored as F16 load to the same values as the F32 file of their F16 roundings
            Path f16 = dir.resolve("f16");
            Path f32 = dir.resolve("f32");
            Map<String, TensorData> half = new LinkedHashMap<>();
            Map<String, TensorData> full = new LinkedHashMap<>();
            LlamaConfig cfg = TinyLlama.config(LlamaFamily.LLAMA, false);
            try (HfWeights w = HfWeights.open(again)) {
                for (Map.Entry<String, int[]> e : LlamaFamily.LLAMA.shapes(cfg).entrySet()) {
                    float[] v = w.floats(e.getKey());
                    long[] shape = java.util.Arrays.stream(e.getValue()).asLongStream().toArray();
                    float[] r = new float[v.length];
                    for (int i = 0; i < v.length; i++) {
                        r[i] = Float.float16ToFloat(Float.floatToFloat16(v[i]));
                    }
                    half.put(e.getKey(), TensorData.f16(v, shape));
                    full.put(e.getKey(), TensorData.f32(r, shape));
                }
            }
            HfWeights.write(f16, half, Map.of("format", "pt"), 60_000);
            HfWeights.write(f32, full, Map.of("format", "pt"), Long.MAX_VALUE);
            Files.writeString(f16.resolve("config.json"), cfg.toJson("float16"));
            Files.writeString(f32.resolve("config.json"), cfg.toJson("float32"));
            try (DecoderModel a = DecoderModel.load(f16, be); DecoderModel b = DecoderModel.load(f32, be)) {
                a.setTraining(false);
                b.setTraining(false);
                assertArrayEquals(b.logits(PROBE), a.logits(PROBE), "F16 shards");
            }
            // an extra tensor is named, with the index it came through
            full.put("model.layers.7.mlp.up_proj.weight", TensorData.f32(new float[4], new long[] {2, 2}));
            HfWeights.write(f32, full, Map.of("format", "pt"), 60_000);
            CheckpointFormatException e = assertThrows(CheckpointFormatException.class,
                    () -> DecoderModel.load(f32, be));
            assertTrue(e.getMessage().contains("model.layers.7.mlp.up_proj.weight")
                    && e.getMessage().contains(HfWeights.INDEX_FILE), e.getMessage());
        }
    }
}
