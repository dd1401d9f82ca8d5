package ai.lorakit.models.gpt2;

import ai.lorakit.models.decoder.CheckpointFormatException;
import ai.lorakit.models.decoder.TargetModules;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves Gpt2Config's validation (messages name field and value), its config.json round trip, HF's real gpt2
 * config being read (unknown keys ignored, n_ctx as fallback), and the refusal of architectures lorakit does not
 * implement; and TargetModules' parsing rules.
 */
class Gpt2ConfigTest {

    @Test
    void validationNamesFieldAndValue() {
        var e = assertThrows(IllegalArgumentException.class, () -> Gpt2Config.of(10, 8, 10, 1, 3));
        assertEquals("n_embd must be divisible by n_head, got n_embd=10, n_head=3", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> Gpt2Config.of(0, 8, 8, 1, 2));
        assertEquals("vocab_size must be > 0, got 0", e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new Gpt2Config(5, 8, 8, 1, 2, 0f));
        assertTrue(e.getMessage().startsWith("layer_norm_epsilon must be finite and > 0, got 0.0"), e.getMessage());
        assertEquals(124_439_808L, Gpt2Config.gpt2Small().parameterCount(), "GPT-2 small's known size");
    }

    @Test
    void writeThenReadRoundTrips(@TempDir Path dir) throws IOException {
        Gpt2Config c = new Gpt2Config(257, 64, 48, 3, 6, 1e-6f);
        c.write(dir);
        assertEquals(c, Gpt2Config.read(dir));
        assertEquals(c, Gpt2Config.read(dir.resolve("config.json")));
    }

    @Test
    void readsHfGpt2ConfigIgnoringUnknownKeys(@TempDir Path dir) throws IOException {
        // the hub's gpt2/config.json (abridged), with n_ctx only
        Files.writeString(dir.resolve("config.json"), """
                {"activation_function": "gelu_new", "architectures": ["GPT2LMHeadModel"], "attn_pdrop": 0.1,
                 "bos_token_id": 50256, "embd_pdrop": 0.1, "eos_token_id": 50256, "initializer_range": 0.02,
                 "layer_norm_epsilon": 1e-05, "model_type": "gpt2", "n_ctx": 1024, "n_embd": 768, "n_head": 12,
                 "n_layer": 12, "resid_pdrop": 0.1, "summary_activation": null, "summary_first_dropout": 0.1,
                 "task_specific_params": {"text-generation": {"do_sample": true, "max_length": 50}},
                 "vocab_size": 50257}""");
        assertEquals(Gpt2Config.gpt2Small(), Gpt2Config.read(dir));
    }

    @Test
    void unsupportedArchitecturesAreRefused(@TempDir Path dir) throws IOException {
        String base = "\"vocab_size\": 9, \"n_positions\": 8, \"n_embd\": 8, \"n_layer\": 1, \"n_head\": 2";
        for (var c : List.of(
                List.of("\"activation_function\": \"gelu\"", "activation_function \"gelu\" is not supported"),
                List.of("\"n_inner\": 20", "n_inner 20 is not supported"),
                List.of("\"tie_word_embeddings\": false", "tie_word_embeddings=false is not supported"),
                List.of("\"model_type\": \"llama\"", "model_type \"llama\" is not supported"),
                List.of("\"layer_norm_epsilon\": \"small\"", "layer_norm_epsilon must be a number, got \"small\""))) {
            Files.writeString(dir.resolve("config.json"), "{" + c.get(0) + ", " + base + "}");
            var e = assertThrows(CheckpointFormatException.class, () -> Gpt2Config.read(dir), c.get(0));
            assertTrue(e.getMessage().contains(c.get(1)), e.getMessage());
        }
        Files.writeString(dir.resolve("config.json"), "{" + base.replace("\"n_head\": 2", "\"n_head\": 3") + "}");
        var heads = assertThrows(CheckpointFormatException.class, () -> Gpt2Config.read(dir));
        assertTrue(heads.getMessage().contains("n_embd must be divisible by n_head, got n_embd=8, n_head=3"),
                heads.getMessage());
        Files.writeString(dir.resolve("config.json"), "{\"n_inner\": 32, " + base + "}");
        assertEquals(8, Gpt2Config.read(dir).nEmbd(), "n_inner = 4C is fine");
        Files.writeString(dir.resolve("config.json"), "{" + base.replace("1,", "\"two\",") + "}");
        var layers = assertThrows(CheckpointFormatException.class, () -> Gpt2Config.read(dir));
        assertTrue(layers.getMessage().contains("n_layer must be an integer, got \"two\""), layers.getMessage());
        Files.writeString(dir.resolve("config.json"), "[1]");
        assertThrows(CheckpointFormatException.class, () -> Gpt2Config.read(dir));
        var missing = assertThrows(CheckpointFormatException.class, () -> Gpt2Config.read(dir.resolve("nope")));
        assertTrue(missing.getMessage().contains("missing"), missing.getMessage());
    }

    @Test
    void targetModulesRules() {
        TargetModules t = TargetModules.parse(List.of("c_fc", "re:.*h\\.0\\.attn\\..*", "x[0-9]+"));
        assertTrue(t.matches("transformer.h.3.mlp.c_fc"));
        assertTrue(t.matches("transformer.h.0.attn.c_proj"));
        assertTrue(t.matches("x12"));
        assertTrue(!t.matches("transformer.h.1.attn.c_proj"));
        assertTrue(!t.matches("transformer.h.1.mlp.xc_fc"), "suffix only at a dot");
        assertTrue(TargetModules.parse(List.of("all-linear")).matches("anything"));
        var bad = assertThrows(IllegalArgumentException.class, () -> TargetModules.parse(List.of("c_(attn")));
        assertTrue(bad.getMessage().contains("'c_(attn' is not a valid regex"), bad.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TargetModules.parse(List.of()));
        assertThrows(IllegalArgumentException.class, () -> TargetModules.parse(List.of("")));
    }
}
