package ai.lorakit.adapters.io;

import ai.lorakit.adapters.VeraConfig;
import org.junit.jupiter.api.Test;

import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * Proves adapter_config.json is written byte for byte as Python's {@code json.dumps(d, indent=2, sort_keys=True)}
 * (PEFT's writer): float repr, escaping, empty containers, nesting, and a whole VeRA config.
 */
class PythonJsonTest {

    @Test
    void floatsUsePythonRepr() {
        assertEquals("0.05", PythonJson.pyFloat(0.05f));
        assertEquals("0.1", PythonJson.pyFloat(0.1f));
        assertEquals("16.0", PythonJson.pyFloat(16f));
        assertEquals("0.0", PythonJson.pyFloat(0f));
        assertEquals("-0.0", PythonJson.pyFloat(-0f));
        assertEquals("0.0001", PythonJson.pyFloat(1e-4f));
        assertEquals("1e-05", PythonJson.pyFloat(1e-5f));
        assertEquals("1.5e-07", PythonJson.pyFloat(1.5e-7f));
        assertEquals("1234567.0", PythonJson.pyFloat(1234567f));
        assertEquals("1e+16", PythonJson.pyFloat(1e16));
        assertEquals("-2.5e+20", PythonJson.pyFloat(-2.5e20));
        assertEquals("0.85", PythonJson.pyFloat(0.85f));
        assertEquals("NaN", PythonJson.pyFloat(Float.NaN));
        assertEquals("-Infinity", PythonJson.pyFloat(Float.NEGATIVE_INFINITY));
    }

    @Test
    void layoutAndEscapingMatchJsonDumps() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("b", List.of(1, "x"));
        m.put("a", Map.of());
        m.put("c", List.of());
        m.put("d", Map.of("k", new boolean[]{true, false}));
        m.put("e", "q\"\\\n\u00e9\u2713\u0001");
        m.put("f", null);
        String want = """
                {
                  "a": {},
                  "b": [
                    1,
                    "x"
                  ],
                  "c": [],
                  "d": {
                    "k": [
                      true,
                      false
                    ]
                  },
                  "e": "q\\"\\\\\\n\\u00e9\\u2713\\u0001",
                  "f": null
                }""";
        assertEquals(want, PythonJson.dumps(m));
    }

    @Test
    void veraConfigIsPeftsDict() {
        VeraConfig c = new VeraConfig(256, 0L, true, 0.1f, 0f, List.of("c_attn", "c_proj"));
        String want = """
                {
                  "auto_mapping": null,
                  "base_model_name_or_path": "gpt2",
                  "bias": "none",
                  "d_initial": 0.1,
                  "fan_in_fan_out": true,
                  "inference_mode": true,
                  "init_weights": true,
                  "layers_pattern": null,
                  "layers_to_transform": null,
                  "modules_to_save": null,
                  "peft_type": "VERA",
                  "projection_prng_key": 0,
                  "r": 256,
                  "revision": null,
                  "save_projection": true,
                  "target_modules": [
                    "c_attn",
                    "c_proj"
                  ],
                  "task_type": "CAUSAL_LM",
                  "vera_dropout": 0.0
                }""";
        assertEquals(want, PythonJson.dumps(PeftConfigJson.toMap(c, true, "gpt2")));
    }
}
