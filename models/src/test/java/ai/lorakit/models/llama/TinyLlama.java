package ai.lorakit.models.llama;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.RopeTables;
import ai.lorakit.models.decoder.DecoderModel;

import java.io.IOException;
import java.nio.file.Path;

/** A tiny random Llama for tests: byte vocabulary (257), C 32, F 48, 2 layers, 4 heads / 2 kv, llama3 RoPE. */
public final class TinyLlama {

    private TinyLlama() {
    }

    public static LlamaConfig config(LlamaFamily family, boolean tied) {
        return new LlamaConfig(family, 257, 32, 48, 2, 4, 2, 8, 64, 1e-6f, 10000,
                family == LlamaFamily.LLAMA ? new RopeTables.Llama3Scaling(8f, 1f, 4f, 32) : null, tied, 0);
    }

    public static DecoderModel random(Backend be, LlamaFamily family, long seed) {
        return DecoderModel.random(config(family, false), be, seed);
    }

    /** Saves a random tiny model as an HF folder, sharded when its data exceeds {@code maxShardBytes}. */
    public static Path save(Backend be, Path dir, LlamaFamily family, long seed, long maxShardBytes)
            throws IOException {
        try (DecoderModel m = random(be, family, seed)) {
            m.saveHf(dir, DType.F32, maxShardBytes);
        }
        return dir;
    }
}
