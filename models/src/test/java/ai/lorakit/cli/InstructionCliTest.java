package ai.lorakit.cli;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.RopeTables;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.llama.LlamaConfig;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.train.MetricsLog;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The CLI on instruction data with a Llama folder that carries its own Hugging Face tokenizer (a byte-level BPE
 * tokenizer.json with 4 special tokens, vocab 260, which the old GPT-2/bytes-only lookup would refuse) and a
 * tokenizer_config.json chat template: full fine-tuning on {prompt, completion} JSONL lowers the validation loss on completion
 * tokens and writes the model with its tokenizer files, eval of it reports the loss over exactly the completion tokens (+ EOS) of the file, counted here from the text;
 * {messages} JSONL trains through the chat template; without tokenizer_config.json, messages exit 2 naming the
 * missing chat template; generate uses the folder's tokenizer; lora-drop's two stages run on instruction rows.
 */
class InstructionCliTest {

    private static final String[] SPECIALS = {"<|bos|>", "<|eot|>", "<|user|>", "<|assistant|>"};

    @TempDir
    static Path tmp;
    static Path model;
    static Path noTemplate;
    static Path prompts;
    static Path chats;
    static int completionTokens;

    @BeforeAll
    static void fixtures() throws IOException {
        model = tmp.resolve("llama");
        noTemplate = tmp.resolve("llama-no-template");
        LlamaConfig cfg = new LlamaConfig(LlamaFamily.LLAMA, 260, 32, 48, 2, 4, 2, 8, 128, 1e-6f, 10000,
                new RopeTables.Llama3Scaling(8f, 1f, 4f, 32), false, 0);
        try (CpuBackend be = new CpuBackend(); DecoderModel m = DecoderModel.random(cfg, be, 1)) {
            m.saveHf(model, DType.F32);
            m.saveHf(noTemplate, DType.F32);
        }
        String tokenizerJson = tokenizerJson();
        Files.writeString(model.resolve("tokenizer.json"), tokenizerJson, StandardCharsets.UTF_8);
        Files.writeString(noTemplate.resolve("tokenizer.json"), tokenizerJson, StandardCharsets.UTF_8);
        Files.writeString(model.resolve("tokenizer_config.json"), """
                {"bos_token": "<|bos|>", "eos_token": "<|eot|>", "add_bos_token": true,
                 "chat_template": "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|eot|>{% endfor %}{% if add_generation_prompt %}<|assistant|>{% endif %}",
                 "added_tokens_decoder": {"256": {"content": "<|bos|>", "special": true},
                   "257": {"content": "<|eot|>", "special": true}, "258": {"content": "<|user|>", "special": true},
                   "259": {"content": "<|assistant|>", "special": true}}}
                """, StandardCharsets.UTF_8);
        String[] names = {"ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal", "ivy", "jon", "kim", "lee", "max",
            "ned", "oli", "pam", "quin", "rex", "sam", "tom"};
        StringBuilder p = new StringBuilder();
        StringBuilder c = new StringBuilder();
        ObjectMapper om = new ObjectMapper();
        for (String n : names) {
            String completion = " hello " + n + ".";
            completionTokens += completion.length() + 1;                // bytes, no merges, + <|eot|>
            ObjectNode o = om.createObjectNode().put("prompt", "Greet " + n + ":").put("completion", completion);
            p.append(om.writeValueAsString(o)).append('\n');
            ObjectNode chat = om.createObjectNode();
            ArrayNode msgs = chat.putArray("messages");
            msgs.addObject().put("role", "user").put("content", "Greet " + n);
            msgs.addObject().put("role", "assistant").put("content", "hello " + n);
            c.append(om.writeValueAsString(chat)).append('\n');
        }
        prompts = Files.writeString(tmp.resolve("prompts.jsonl"), p.toString());
        chats = Files.writeString(tmp.resolve("chats.jsonl"), c.toString());
    }

    /** A byte-level BPE without merges: the 256 GPT-2 byte characters as ids 0..255, then the specials. */
    private static String tokenizerJson() throws IOException {
        ObjectMapper om = new ObjectMapper();
        ObjectNode root = om.createObjectNode();
        root.put("version", "1.0");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < SPECIALS.length; i++) {
            added.addObject().put("id", 256 + i).put("content", SPECIALS[i]).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "ByteLevel").put("add_prefix_space", false)
                .put("trim_offsets", true).put("use_regex", true);
        root.putNull("post_processor");
        root.putObject("decoder").put("type", "ByteLevel").put("add_prefix_space", true).put("trim_offsets", true)
                .put("use_regex", true);
        ObjectNode bpe = root.putObject("model");
        bpe.put("type", "BPE").putNull("dropout").putNull("unk_token").put("fuse_unk", false)
                .put("byte_fallback", false);
        ObjectNode vocab = bpe.putObject("vocab");
        List<Integer> bs = new ArrayList<>();
        for (int b = '!'; b <= '~'; b++) {
            bs.add(b);
        }
        for (int b = 0xA1; b <= 0xAC; b++) {
            bs.add(b);
        }
        for (int b = 0xAE; b <= 0xFF; b++) {
            bs.add(b);
        }
        int extra = 0;
        for (int b = 0; b < 256; b++) {                                  // GPT-2's bytes_to_unicode
            int ch = bs.contains(b) ? b : 256 + extra++;
            vocab.put(String.valueOf((char) ch), b);
        }
        bpe.putArray("merges");
        return om.writerWithDefaultPrettyPrinter().writeValueAsString(root);
    }

    private static CliRun run(String... args) {
        return CliRun.of(args);
    }

    private static CliRun train(Path modelDir, Path data, Path out, int steps, String... extra) {
        List<String> a = new ArrayList<>(List.of("train", "--model", modelDir.toString(), "--data", data.toString(),
                "--backend", "cpu", "--batch", "4", "--seq-len", "48", "--steps", "" + steps,
                "--eval-every", "" + steps, "--log-every", "1", "--val-fraction", "0.2", "--out", out.toString()));
        a.addAll(List.of(extra));
        return run(a.toArray(String[]::new));
    }

    @Test
    void promptCompletionTrainsAndEvaluatesOnCompletionTokens() throws IOException {
        Path out = tmp.resolve("run-prompts");
        CliRun t = train(model, prompts, out, 30, "--method", "full", "--lr", "1e-2");
        assertEquals(0, t.code(), t.toString());
        assertTrue(t.out().contains("HfTokenizer"), "the folder's tokenizer.json is used: " + t.out());
        assertTrue(t.out().contains("16 training rows") && t.out().contains("4 validation rows")
                && t.out().contains("loss on completion tokens only"), t.out());
        List<JsonNode> metrics = MetricsLog.read(out);
        double before = metrics.getFirst().get("val_loss").asDouble();
        double after = metrics.getLast().get("val_loss").asDouble();
        assertTrue(after < before - 0.5, "validation loss " + before + " -> " + after + ": " + metrics);

        Path trained = out.resolve("model");
        assertTrue(Files.isRegularFile(trained.resolve("tokenizer.json"))
                && Files.isRegularFile(trained.resolve("tokenizer_config.json")), "the written model has its tokenizer");
        CliRun e = run("eval", "--model", trained.toString(),
                "--data", prompts.toString(), "--backend", "cpu", "--seq-len", "48", "--batch", "4", "--split", "all");
        assertEquals(0, e.code(), e.toString());
        Matcher mt = Pattern.compile("data loss ([0-9.]+) .*\\((\\d+) completion tokens").matcher(e.out());
        assertTrue(mt.find(), e.out());
        assertEquals(completionTokens, Integer.parseInt(mt.group(2)), "the loss is over the completion tokens only");
        CliRun ev = run("eval", "--model", trained.toString(),
                "--data", prompts.toString(), "--backend", "cpu", "--seq-len", "48", "--batch", "4",
                "--val-fraction", "0.2");
        assertEquals(0, ev.code(), ev.toString());
        assertTrue(ev.out().contains(String.format(Locale.ROOT, "validation loss %.4f", after)),
                "eval's validation split and loss are train's: " + after + " vs " + ev.out());
    }

    @Test
    void messagesTrainThroughTheChatTemplate() throws IOException {
        Path out = tmp.resolve("run-chats");
        CliRun t = train(model, chats, out, 30, "--lr", "3e-2");
        assertEquals(0, t.code(), t.toString());
        List<JsonNode> metrics = MetricsLog.read(out);
        assertTrue(metrics.getLast().get("val_loss").asDouble() < metrics.getFirst().get("val_loss").asDouble(),
                metrics.toString());
        assertTrue(Files.isRegularFile(out.resolve("adapter").resolve("adapter_config.json")));
    }

    /** LoRA-drop on instruction rows: stage 1, the selection and stage 2 run and write a plain PEFT LoRA. */
    @Test
    void loraDropTrainsOnInstructionRows() throws IOException {
        Path out = tmp.resolve("run-drop");
        CliRun t = train(model, prompts, out, 20, "--method", "lora-drop", "--lr", "1e-2");
        assertEquals(0, t.code(), t.toString());
        assertTrue(Files.isRegularFile(out.resolve("lora_drop_selection.json")), t.out());
        assertTrue(Files.isRegularFile(out.resolve("adapter").resolve("adapter_config.json")), t.out());
        List<JsonNode> metrics = MetricsLog.read(out);
        assertTrue(metrics.getLast().get("val_loss").asDouble() < metrics.getFirst().get("val_loss").asDouble(),
                metrics.toString());
    }

    @Test
    void messagesWithoutAChatTemplateExit2() {
        CliRun t = train(noTemplate, chats, tmp.resolve("run-none"), 2);
        assertEquals(2, t.code(), t.toString());
        assertTrue(t.err().contains("chat_template") && t.err().contains("tokenizer_config.json"), t.err());
        // prompt/completion lines need no template
        CliRun ok = train(noTemplate, prompts, tmp.resolve("run-none-prompts"), 2);
        assertEquals(0, ok.code(), ok.toString());
    }

    @Test
    void generateUsesTheFolderTokenizer() {
        CliRun g = run("generate", "--model", model.toString(), "--prompt", "Greet ann:", "--max-tokens", "4",
                "--seed", "3", "--backend", "cpu");
        assertEquals(0, g.code(), g.toString());
        assertTrue(g.out().startsWith("Greet ann:"), g.out());
    }
}
