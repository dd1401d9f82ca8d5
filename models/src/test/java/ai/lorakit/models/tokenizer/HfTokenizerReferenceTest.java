package ai.lorakit.models.tokenizer;

import ai.lorakit.models.data.BrownCorpus;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.text.Normalizer;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves that {@link HfTokenizer} on the real Llama 3, Llama 2-package (Mistral 7B vocabulary) and Qwen3
 * tokenizer.json files gives exactly the ids of the JS reference ({@code @lenml/tokenizers}, see
 * {@link JsReference}) on the whole Brown corpus and on adversarial text ({@code adversarial.txt}: Unicode, emoji,
 * CJK, combining marks, whitespace runs, special-token strings in plain text, digit runs, contractions, unpaired
 * surrogates), with and without the special-token template; that a Metaspace pre-tokenizer variant of the
 * SentencePiece file matches too; and that decode(encode(x)) == x wherever the pipeline is invertible.
 *
 * <p>Brown granularity: each of the 500 documents is one input for the byte-level tokenizers (their regex splits
 * it); for the SentencePiece file, whose pipeline has no pre-tokenizer (a whole input is one BPE word), each
 * paragraph is one input, which keeps the JS reference's time down and covers the same text.
 */
class HfTokenizerReferenceTest {

    private static final Map<String, HfTokenizer> TOKENIZERS = new HashMap<>();
    private static final Map<String, List<List<int[]>>> REFERENCE = new HashMap<>();
    private static final Map<String, List<String>> BROWN = new HashMap<>();
    private static List<String> adversarial;

    @BeforeAll
    static void runReference(@TempDir Path tmp) throws Exception {
        BrownCorpus brown;
        try {
            brown = BrownCorpus.load();
        } catch (IOException e) {
            assumeTrue(false, "needs the Brown corpus (npm): " + e.getMessage());
            return;
        }
        List<String> docs = brown.texts().stream().map(BrownCorpus.Text::text).toList();
        List<String> paragraphs = docs.stream().flatMap(d -> Arrays.stream(d.split("\n\n"))).toList();
        adversarial = JsReference.adversarial();
        Map<String, JsReference.Run> runs = new HashMap<>();
        for (String model : JsReference.MODELS) {
            List<String> corpus = model.equals("llama2") ? paragraphs : docs;
            BROWN.put(model, corpus);
            runs.put(model, JsReference.start(JsReference.tokenizerDir(model), List.of(
                    new JsReference.Job(corpus, false), new JsReference.Job(adversarial, false),
                    new JsReference.Job(adversarial, true)), tmp.resolve(model)));
        }
        Path metaspace = metaspaceVariant(tmp.resolve("metaspace"));
        runs.put("metaspace", JsReference.start(metaspace, List.of(new JsReference.Job(adversarial, false),
                new JsReference.Job(paragraphs.subList(0, 2000), false)), tmp.resolve("metaspace-run")));
        for (String model : JsReference.MODELS) { // loads while node runs
            TOKENIZERS.put(model, HfTokenizer.load(JsReference.tokenizerDir(model)));
        }
        TOKENIZERS.put("metaspace", HfTokenizer.load(metaspace));
        for (var e : runs.entrySet()) {
            REFERENCE.put(e.getKey(), e.getValue().ids());
        }
    }

    /**
     * The SentencePiece file in the newer layout: no normalizer, a Metaspace pre-tokenizer (prepend "▁" to the
     * first section only, no split), as Mistral's later tokenizer.json files have it.
     */
    private static Path metaspaceVariant(Path dir) throws IOException {
        Path src = JsReference.tokenizerDir("llama2");
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(src.resolve("tokenizer.json").toFile());
        root.putNull("normalizer");
        ObjectNode pre = root.putObject("pre_tokenizer");
        pre.put("type", "Metaspace").put("replacement", "\u2581").put("prepend_scheme", "first")
                .put("split", false).put("add_prefix_space", true);
        Files.createDirectories(dir);
        json.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        Files.copy(src.resolve("tokenizer_config.json"), dir.resolve("tokenizer_config.json"));
        return dir;
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama2", "qwen3"})
    void brownCorpusIdsEqualReference(String model) {
        compare(model + " brown", BROWN.get(model), REFERENCE.get(model).get(0), t -> TOKENIZERS.get(model).encode(t));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama2", "qwen3"})
    void adversarialIdsEqualReference(String model) {
        compare(model + " adversarial", adversarial, REFERENCE.get(model).get(1), t -> TOKENIZERS.get(model).encode(t));
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama2", "qwen3"})
    void specialTemplateEqualsReference(String model) {
        HfTokenizer tok = TOKENIZERS.get(model);
        compare(model + " adversarial --special", adversarial, REFERENCE.get(model).get(2), t -> tok.encode(t, true));
        // Llama 2's template puts BOS (<s> = 1) first; the byte-level files' ByteLevel post-processor adds nothing.
        int[] hello = tok.encode("Hello", true);
        assertEquals(model.equals("llama2"), hello.length > 0 && hello[0] == 1, Arrays.toString(hello));
    }

    @Test
    void metaspaceVariantEqualsReference() {
        HfTokenizer tok = TOKENIZERS.get("metaspace");
        compare("metaspace adversarial", adversarial, REFERENCE.get("metaspace").get(0), tok::encode);
        compare("metaspace brown[0:2000]", BROWN.get("llama2").subList(0, 2000), REFERENCE.get("metaspace").get(1),
                tok::encode);
    }

    /** decode(encode(x)) == x, for the texts each pipeline can invert (see HfTokenizer's class comment). */
    @ParameterizedTest
    @ValueSource(strings = {"llama3", "llama2", "qwen3"})
    void decodeInvertsEncode(String model) {
        HfTokenizer tok = TOKENIZERS.get(model);
        List<String> texts = new ArrayList<>(adversarial);
        texts.addAll(BROWN.get(model));
        int checked = 0;
        for (String x : texts) {
            String wellFormed = Utf8.wellFormed(x);
            boolean invertible = switch (model) {
                case "qwen3" -> Normalizer.isNormalized(wellFormed, Normalizer.Form.NFC);
                // SentencePiece: "▁" is the space symbol, and each stretch between added tokens gets one prepended
                case "llama2" -> !(x.contains("\u2581") || x.contains("<s>") || x.contains("</s>") || x.contains("<unk>"));
                default -> true;
            };
            if (invertible) {
                assertEquals(wellFormed, tok.decode(tok.encode(x)), () -> model + " round trip of " + excerpt(x, 0));
                checked++;
            }
        }
        assertTrue(checked > texts.size() - 10, model + ": only " + checked + " of " + texts.size() + " checked");
    }

    private static void compare(String what, List<String> texts, List<int[]> reference,
                                java.util.function.Function<String, int[]> encode) {
        assertEquals(texts.size(), reference.size(), what + ": reference has another number of texts");
        long tokens = 0;
        int mismatches = 0;
        String first = null;
        for (int i = 0; i < texts.size(); i++) {
            int[] want = reference.get(i);
            int[] got = encode.apply(texts.get(i));
            tokens += want.length;
            if (!Arrays.equals(want, got)) {
                mismatches++;
                if (first == null) {
                    int at = Arrays.mismatch(want, got);
                    first = "text " + i + " " + excerpt(texts.get(i), 0) + ": first difference at token " + at
                            + ": reference " + window(want, at) + " vs ours " + window(got, at);
                }
            }
        }
        System.out.printf("%s: %d texts, %d tokens compared, %d mismatching texts%n", what, texts.size(), tokens,
                mismatches);
        if (mismatches > 0) {
            fail(what + ": " + mismatches + " of " + texts.size() + " texts differ from the JS reference; " + first);
        }
        assertTrue(tokens > 0, what + ": nothing compared");
    }

    private static String window(int[] ids, int at) {
        return Arrays.toString(Arrays.copyOfRange(ids, Math.max(0, at - 3), Math.min(ids.length, at + 5)));
    }

    private static String excerpt(String s, int from) {
        String e = s.substring(from, Math.min(s.length(), from + 120));
        StringBuilder b = new StringBuilder("\"");
        e.chars().forEach(c -> b.append(c < 0x20 || (c >= 0xD800 && c < 0xE000) ? String.format("\\u%04x", c)
                : String.valueOf((char) c)));
        return b.append(s.length() > e.length() ? "...\"" : "\"").toString();
    }
}
