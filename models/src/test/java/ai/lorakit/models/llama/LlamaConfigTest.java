package ai.lorakit.models.llama;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.decoder.Families;
import ai.lorakit.models.decoder.ModelConfig;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the Llama family's config.json handling: model_type picks the family; HF's defaults (kv heads = heads,
 * head_dim = C/H but 128 for Qwen3, untied head, no rope_scaling); an explicit head_dim and llama3 rope_scaling are
 * read; toJson reads back to the same record; unsupported keys are refused naming key and value; a Mistral
 * sliding_window shorter than a window is refused naming sliding_window (null/absent accepted, Qwen's only with
 * use_sliding_window); tied models have no lm_head tensor.
 */
class LlamaConfigTest {

    @TempDir
    Path dir;

    private static final String BASE = "\"vocab_size\": 50, \"hidden_size\": 16, \"intermediate_size\": 24,"
            + " \"num_hidden_layers\": 1, \"num_attention_heads\": 4, \"max_position_embeddings\": 64";

    private ModelConfig parse(String type, String extra) throws IOException {
        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"" + type + "\", " + BASE
                + (extra.isEmpty() ? "" : ", " + extra) + "}");
        return Families.readConfig(dir);
    }

    @Test
    void defaultsExplicitKeysAndRoundTrip() throws IOException {
        LlamaConfig l = (LlamaConfig) parse("llama", "");
        assertSame(LlamaFamily.LLAMA, l.family());
        assertEquals(4, l.numKvHeads());
        assertEquals(4, l.headDim());
        assertFalse(l.tieWordEmbeddings());
        assertNull(l.ropeScaling());
        assertEquals(10000.0, l.ropeTheta());
        assertEquals(128, ((LlamaConfig) parse("qwen3", "")).headDim());
        assertNull(((LlamaConfig) parse("llama", "\"rope_scaling\": {\"rope_type\": \"default\"}")).ropeScaling());
        LlamaConfig x = (LlamaConfig) parse("llama", "\"num_key_value_heads\": 2, \"head_dim\": 6,"
                + " \"rope_theta\": 500000.0, \"tie_word_embeddings\": true, \"rope_scaling\": {\"rope_type\": \"llama3\","
                + " \"factor\": 8.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0,"
                + " \"original_max_position_embeddings\": 8192}");
        assertEquals(2, x.numKvHeads());
        assertEquals(6, x.headDim());
        assertEquals(8f, x.ropeScaling().factor());
        assertEquals(8192, x.ropeScaling().originalMaxPositionEmbeddings());
        assertTrue(x.tieWordEmbeddings());
        assertFalse(LlamaFamily.LLAMA.shapes(x).containsKey("lm_head.weight"));
        for (LlamaConfig c : new LlamaConfig[] {l, x, (LlamaConfig) parse("qwen2", ""),
            (LlamaConfig) parse("mistral", "\"sliding_window\": 32")}) {
            Files.writeString(dir.resolve("config.json"), c.toJson("float32"));
            assertEquals(c, Families.readConfig(dir), c.describe());
        }
    }

    @Test
    void unsupportedKeysAreRefusedByName() {
        String[][] cases = {
            {"\"hidden_act\": \"gelu\"", "hidden_act"},
            {"\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}", "rope_scaling of type \"yarn\""},
            {"\"attention_bias\": true", "attention_bias"},
            {"\"num_key_value_heads\": 3", "num_key_value_heads=3"},
            {"\"head_dim\": 5", "head_dim must be even"},
            {"\"tie_word_embeddings\": \"yes\"", "tie_word_embeddings must be true or false"}};
        for (String[] c : cases) {
            CheckpointFormatException e = assertThrows(CheckpointFormatException.class, () -> parse("llama", c[0]));
            assertTrue(e.getMessage().contains(c[1]), e.getMessage());
        }
    }

    @Test
    void aSlidingWindowShorterThanTheWindowIsRefusedWithThatReason() throws IOException {
        assertEquals(64, parse("mistral", "\"sliding_window\": null").maxSeqLen());
        assertEquals(64, parse("mistral", "").maxSeqLen());
        assertEquals(64, parse("qwen2", "\"sliding_window\": 8, \"use_sliding_window\": false").maxSeqLen());
        ModelConfig m = parse("mistral", "\"sliding_window\": 8");
        assertEquals(8, m.maxSeqLen());
        try (CpuBackend be = new CpuBackend(); DecoderModel model = DecoderModel.random(m, be, 1)) {
            int[][] nine = {new int[10]};
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> model.evalLoss(nine));
            assertTrue(e.getMessage().contains("sliding_window") && e.getMessage().contains("sliding-window attention"),
                    e.getMessage());
            assertTrue(Double.isFinite(model.evalLoss(new int[][] {new int[9]})), "T = sliding_window is fine");
        }
    }
}
