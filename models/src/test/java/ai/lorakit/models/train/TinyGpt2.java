package ai.lorakit.models.train;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.models.data.Document;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Config;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;

/** Test fixtures: a tiny byte-level GPT-2 (V 257, P 64, C 32, L 2, H 2) and the English text as JSONL. */
public final class TinyGpt2 {

    private TinyGpt2() {
    }

    public static Gpt2Config config() {
        return Gpt2Config.of(257, 64, 32, 2, 2);
    }

    public static DecoderModel random(Backend be, long seed) {
        return DecoderModel.random(config(), be, seed);
    }

    /** Saves a random tiny model as an HF folder {@code dir} (config.json + model.safetensors). */
    public static Path save(Backend be, Path dir, long seed) throws IOException {
        try (DecoderModel m = random(be, seed)) {
            m.saveHf(dir, DType.F32);
        }
        return dir;
    }

    /** {@link EnglishText} as a JSONL file, one paragraph per line. */
    public static Path jsonl(Path file) throws IOException {
        StringBuilder sb = new StringBuilder();
        for (Document d : EnglishText.documents()) {
            sb.append("{\"text\": \"").append(d.text().replace("\\", "\\\\").replace("\"", "\\\"")).append("\"}\n");
        }
        Files.writeString(file, sb.toString(), StandardCharsets.UTF_8);
        return file;
    }
}
