package ai.lorakit.models.decoder;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.layers.CausalSelfAttention;
import ai.lorakit.models.layers.Embedding;
import ai.lorakit.models.layers.GeluMlp;
import ai.lorakit.models.layers.LayerNorm;
import ai.lorakit.models.layers.Linear;
import ai.lorakit.models.layers.PreNormBlock;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that a family is all a new architecture needs, and that the decoder model is not GPT-2-shaped: a
 * test-only family of about 80 lines ({@link Toy}: nn.Linear [out,in] weights under Llama-style names and an
 * UNTIED lm_head) loaded with GPT-2's weights (transposed, lm_head = wte) must give GPT-2's logits and loss, and
 * under full fine-tuning the same gradients: each toy weight's gradient is the transpose of GPT-2's, and the toy's
 * embedding + lm_head gradients add up to GPT-2's tied wte gradient. LoRA attaches by the toy's module names and
 * saves them under PEFT's keys.
 */
class SecondFamilyTest {

    private static final Gpt2Config G = Gpt2Config.of(17, 8, 8, 2, 2);

    @TempDir
    Path dir;

    /** A GPT-2 written as nn.Linear layers with an untied head, under Llama's module names. */
    record ToyConfig(Gpt2Config g) implements ModelConfig {
        public Family<?> family() {
            return Toy.INSTANCE;
        }

        public int vocabSize() {
            return g.vocabSize();
        }

        public int maxSeqLen() {
            return g.nPositions();
        }

        public String maxSeqLenKey() {
            return "max_position_embeddings";
        }

        public int hiddenSize() {
            return g.nEmbd();
        }

        public int numLayers() {
            return g.nLayer();
        }

        public String describe() {
            return "toy " + g.describe();
        }

        public String toJson(String torchDtype) {
            return g.toJson(torchDtype).replace("\"gpt2\"", "\"toy\"");
        }
    }

    static final class Toy implements Family<ToyConfig> {
        static final Toy INSTANCE = new Toy();

        public String modelType() {
            return "toy";
        }

        public ToyConfig parseConfig(JsonNode root) {
            throw new UnsupportedOperationException("test family: built in code only");
        }

        public Map<String, int[]> shapes(ToyConfig cfg) {
            int c = cfg.g().nEmbd();
            Map<String, int[]> m = new LinkedHashMap<>();
            m.put("model.embed_tokens.weight", new int[] {cfg.vocabSize(), c});
            m.put("model.embed_positions.weight", new int[] {cfg.maxSeqLen(), c});
            for (int l = 0; l < cfg.numLayers(); l++) {
                String h = "model.layers." + l + ".";
                for (String norm : List.of("input_layernorm", "post_attention_layernorm")) {
                    m.put(h + norm + ".weight", new int[] {c});
                    m.put(h + norm + ".bias", new int[] {c});
                }
                linear(m, h + "self_attn.qkv_proj", c, 3 * c);
                linear(m, h + "self_attn.o_proj", c, c);
                linear(m, h + "mlp.up_proj", c, 4 * c);
                linear(m, h + "mlp.down_proj", 4 * c, c);
            }
            m.put("model.norm.weight", new int[] {c});
            m.put("model.norm.bias", new int[] {c});
            m.put("lm_head.weight", new int[] {cfg.vocabSize(), c});
            return m;
        }

        private static void linear(Map<String, int[]> m, String module, int in, int out) {
            m.put(module + ".weight", new int[] {out, in});
            m.put(module + ".bias", new int[] {out});
        }

        public void init(String name, float[] values, ToyConfig cfg, SplittableRandom rng) {
            for (int i = 0; i < values.length; i++) {
                values[i] = name.endsWith(".bias") ? 0f
                        : name.contains("norm") ? 1f : (float) rng.nextGaussian() * 0.02f;
            }
        }

        public String optionalPrefix() {
            return "";
        }

        public boolean ignoredKey(String key) {
            return false;
        }

        public List<String> defaultTargets() {
            return List.of("qkv_proj");
        }

        public DecoderStack build(ToyConfig cfg, Function<String, Parameter> p) {
            Map<String, Linear> linears = new LinkedHashMap<>();
            Function<String, Linear> lin = m -> {
                Linear x = new Linear(m, p.apply(m + ".weight"), p.apply(m + ".bias"), Linear.Layout.OUT_IN);
                linears.put(m, x);
                return x;
            };
            float eps = cfg.g().layerNormEpsilon();
            Function<String, LayerNorm> ln = n -> new LayerNorm(p.apply(n + ".weight"), p.apply(n + ".bias"), eps);
            List<PreNormBlock> blocks = new ArrayList<>();
            for (int l = 0; l < cfg.numLayers(); l++) {
                String h = "model.layers." + l + ".";
                blocks.add(new PreNormBlock(ln.apply(h + "input_layernorm"),
                        new CausalSelfAttention(lin.apply(h + "self_attn.qkv_proj"), lin.apply(h + "self_attn.o_proj"),
                                cfg.g().nHead()),
                        ln.apply(h + "post_attention_layernorm"),
                        new GeluMlp(lin.apply(h + "mlp.up_proj"), lin.apply(h + "mlp.down_proj")),
                        cfg.hiddenSize(), p.apply("lm_head.weight").value().backend()));
            }
            return new DecoderStack(new Embedding(p.apply("model.embed_tokens.weight"),
                    p.apply("model.embed_positions.weight")), blocks, ln.apply("model.norm"),
                    new Linear("lm_head", p.apply("lm_head.weight"), null, Linear.Layout.OUT_IN), linears);
        }
    }

    /** GPT-2's name of each toy tensor, and whether its values are the transpose. */
    private static String gpt2Name(String toy) {
        return "transformer." + toy.replace("model.embed_tokens", "wte").replace("model.embed_positions", "wpe")
                .replace("model.layers.", "h.").replace("input_layernorm", "ln_1")
                .replace("post_attention_layernorm", "ln_2").replace("self_attn.qkv_proj", "attn.c_attn")
                .replace("self_attn.o_proj", "attn.c_proj").replace("mlp.up_proj", "mlp.c_fc")
                .replace("mlp.down_proj", "mlp.c_proj").replace("model.norm", "ln_f")
                .replace("lm_head", "wte");
    }

    private static boolean transposed(String toy) {
        return toy.endsWith("_proj.weight");
    }

    @Test
    void aSecondFamilyReproducesGpt2ThroughTheSameDecoder() throws Exception {
        int[][] windows = {{1, 4, 16, 0, 9, 3, 3}, {7, 7, 2, 11, 5, 0, 12}};
        try (Backend be = new CpuBackend(); DecoderModel gpt2 = DecoderModel.random(G, be, 4);
             DecoderModel toy = DecoderModel.random(new ToyConfig(G), be, 9)) {
            for (Parameter p : toy.baseParameters()) {
                Tensor src = gpt2.baseParameter(gpt2Name(p.name())).value();
                float[] v = be.download(src);
                try (Tensor t = be.upload(transposed(p.name()) ? transpose(v, src.dim(0), src.dim(1)) : v,
                        p.value().shape())) {
                    be.copy(t, p.value());
                }
            }
            int[] probe = {3, 1, 4, 1, 5, 9};
            check("logits", toy.logits(probe), gpt2.logits(probe));
            gpt2.setFullFineTune(true);
            toy.setFullFineTune(true);
            assertEquals(gpt2.trainStep(windows, 1f), toy.trainStep(windows, 1f), 1e-6, "same loss");
            for (Parameter p : toy.baseParameters()) {
                if (p.name().equals("lm_head.weight")) {
                    continue;
                }
                Parameter q = gpt2.baseParameter(gpt2Name(p.name()));
                float[] want = be.download(q.grad());
                float[] got = be.download(p.grad());
                if (transposed(p.name())) {
                    want = transpose(want, q.value().dim(0), q.value().dim(1));
                } else if (p.name().equals("model.embed_tokens.weight")) {    // tied in GPT-2: wte = emb + head
                    float[] head = be.download(toy.baseParameter("lm_head.weight").grad());
                    for (int i = 0; i < got.length; i++) {
                        got[i] += head[i];
                    }
                }
                check("d" + p.name(), got, want);
            }
            toy.setFullFineTune(false);
            toy.attachAdapters(LoraConfig.of(2, 4f, toy.config().family().defaultTargets().toArray(String[]::new)), 1)
                    .savePeft(dir, "toy");
            assertEquals(List.of("model.layers.0.self_attn.qkv_proj", "model.layers.1.self_attn.qkv_proj"),
                    toy.adaptedModules().stream().map(a -> a.name()).toList());
            try (SafetensorsFile f = SafetensorsFile.open(dir.resolve(PeftAdapterIO.WEIGHTS_FILE))) {
                assertTrue(f.names().contains("base_model.model.model.layers.1.self_attn.qkv_proj.lora_A.weight"),
                        "PEFT keys: " + f.names());
            }
        }
    }

    private static float[] transpose(float[] v, int rows, int cols) {
        float[] t = new float[v.length];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                t[j * rows + i] = v[i * cols + j];
            }
        }
        return t;
    }

    private static void check(String what, float[] got, float[] want) {
        Tolerance.Result r = Tolerance.F32.compare(what, got, want);
        assertTrue(r.ok(), r.describe());
    }
}
