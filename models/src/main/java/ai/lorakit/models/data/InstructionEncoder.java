package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;
import ai.lorakit.models.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Turns instruction examples into token ids and loss labels ({@link InstructionExample}).
 *
 * <p><b>prompt/completion:</b> ids = BOS? + prompt + completion + EOS, where BOS is added when
 * {@code tokenizer_config.json} says {@code add_bos_token} (or, without that key, when it names a bos_token, as
 * Llama 3's post-processor does) and EOS is its eos_token when it names one. Only completion + EOS are trained.
 *
 * <p><b>messages:</b> the conversation is rendered with the chat template ({@code add_generation_prompt=false}).
 * The trained spans are found with <i>content markers</i>: the conversation is rendered a second time with every
 * message's text (less its leading/trailing whitespace) wrapped in two private-use characters; removing them must
 * give the first rendering exactly (else the template rewrites the text around the markers, and the example is
 * refused with that reason). A span is an assistant message's text as the template placed it, plus the template
 * text after it up to and including the first special token (the end-of-turn: {@code <|eot_id|>},
 * {@code <|im_end|>}, {@code </s>}), so the model learns to stop. Text after the last span is dropped (it
 * trains nothing). The rendering's own BOS text (e.g. Llama 3's {@code <|begin_of_text|>}) is tokenised like
 * the rest: the tokenizer maps special-token strings to their ids, and no BOS is added on top (HF's
 * {@code apply_chat_template} tokenises with add_special_tokens=False).
 *
 * <p>Each span and each gap is encoded separately and the ids concatenated; this equals encoding the whole text
 * when the boundaries fall on pre-tokenizer boundaries, as they do next to the templates' special tokens.
 */
public final class InstructionEncoder {

    static final char OPEN = '\uE000';
    static final char CLOSE = '\uE001';

    private final Tokenizer tokenizer;
    private final ChatTemplate template;
    private final String bos;
    private final String eos;
    private final List<String> specials;

    /**
     * @param template the chat template, or null (then only prompt/completion examples can be encoded)
     * @param bos      the BOS text added before a prompt, or null for none
     * @param eos      the EOS text added after a completion, or null for none
     * @param specials texts that end an assistant turn (the tokenizer's special tokens)
     */
    public InstructionEncoder(Tokenizer tokenizer, ChatTemplate template, String bos, String eos,
                              List<String> specials) {
        this.tokenizer = tokenizer;
        this.template = template;
        this.bos = bos;
        this.eos = eos;
        this.specials = List.copyOf(specials);
    }

    /** The encoder of a Hugging Face tokenizer folder's {@code tokenizer_config.json} (its chat template optional). */
    public static InstructionEncoder forTokenizerDir(Tokenizer tokenizer, Path dir) throws IOException {
        Path file = dir.resolve("tokenizer_config.json");
        JsonNode c;
        try {
            c = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": cannot read the tokenizer config: " + e.getMessage(), e);
        }
        String bosText = ChatTemplate.tokenText(c, "bos_token");
        boolean addBos = c.has("add_bos_token") ? c.path("add_bos_token").asBoolean() : bosText != null;
        ChatTemplate t = c.path("chat_template").isMissingNode() || c.path("chat_template").isNull() ? null
                : ChatTemplate.load(file);
        List<String> sp = t != null ? t.specialTokens() : List.of();
        String eosText = ChatTemplate.tokenText(c, "eos_token");
        return new InstructionEncoder(tokenizer, t, addBos ? bosText : null, eosText, sp);
    }

    /** BOS? + prompt (ignored) + completion + EOS? (trained). */
    public InstructionExample encode(String prompt, String completion) {
        Spans s = new Spans();
        s.add((bos == null ? "" : bos) + prompt, false);
        s.add(completion + (eos == null ? "" : eos), true);
        return s.build();
    }

    /**
     * The conversation's rendering, with assistant spans trained (see the class comment).
     *
     * @throws ChatTemplateException no chat template, no assistant text, or a template the markers cannot follow
     */
    public InstructionExample encode(List<ChatMessage> messages) {
        if (template == null) {
            throw new ChatTemplateException("the tokenizer config has no chat_template: {\"messages\": ...} data"
                    + " needs a chat model's tokenizer folder (or use {\"prompt\", \"completion\"} lines)");
        }
        List<ChatMessage> marked = new ArrayList<>();
        List<ChatMessage> expected = new ArrayList<>();       // the messages that carry markers, in order
        for (ChatMessage m : messages) {
            String c = m.content();
            if (c.indexOf(OPEN) >= 0 || c.indexOf(CLOSE) >= 0) {
                throw new ChatTemplateException("message text holds U+E000/U+E001 (private-use characters lorakit"
                        + " uses to locate assistant text); remove them");
            }
            String core = PyStringMethods.rstrip(PyStringMethods.lstrip(c, null), null);
            if (core.isEmpty()) {
                marked.add(m);
                continue;
            }
            int a = c.indexOf(core);
            String wrapped = c.substring(0, a) + OPEN + core + CLOSE + c.substring(a + core.length());
            marked.add(new ChatMessage(m.role(), wrapped));
            expected.add(new ChatMessage(m.role(), core));
        }
        String plain = template.render(messages, false);
        String withMarks = template.render(marked, false);
        if (!withMarks.replace(String.valueOf(OPEN), "").replace(String.valueOf(CLOSE), "").equals(plain)) {
            throw new ChatTemplateException("the chat template rewrites message text (it changed once wrapped in"
                    + " markers), so the assistant spans cannot be located");
        }
        // walk the marked rendering: text outside markers is template, inside is message text
        Spans s = new Spans();
        StringBuilder pending = new StringBuilder();
        int k = 0;
        int i = 0;
        boolean anyTrained = false;
        while (i < withMarks.length()) {
            int open = withMarks.indexOf(OPEN, i);
            if (open < 0) {
                break;
            }
            int close = withMarks.indexOf(CLOSE, open);
            if (close < 0 || k >= expected.size()
                    || !withMarks.substring(open + 1, close).equals(expected.get(k).content())) {
                throw new ChatTemplateException("the chat template reorders, repeats or drops message text, so the"
                        + " assistant spans cannot be located");
            }
            pending.append(withMarks, i, open);
            String text = withMarks.substring(open + 1, close);
            i = close + 1;
            if (!expected.get(k).isAssistant()) {
                pending.append(text);
            } else {
                int next = withMarks.indexOf(OPEN, i);
                String after = withMarks.substring(i, next < 0 ? withMarks.length() : next);
                int end = endOfTurn(after);
                s.add(pending.toString(), false);
                pending.setLength(0);
                s.add(text + after.substring(0, end), true);
                anyTrained = true;
                i += end;
            }
            k++;
        }
        if (k != expected.size() || withMarks.indexOf(CLOSE, i) >= 0) {
            throw new ChatTemplateException("the chat template reorders, repeats or drops message text, so the"
                    + " assistant spans cannot be located");
        }
        if (!anyTrained) {
            throw new ChatTemplateException("the conversation has no assistant text: nothing to train on");
        }
        return s.build();
    }

    /** Length of {@code after}'s prefix up to and including its first special token (0 when it has none). */
    private int endOfTurn(String after) {
        int best = -1;
        int len = 0;
        List<String> all = new ArrayList<>(specials);
        if (eos != null) {
            all.add(eos);
        }
        for (String sp : all) {
            int at = sp.isEmpty() ? -1 : after.indexOf(sp);
            if (at >= 0 && (best < 0 || at < best)) {
                best = at;
                len = sp.length();
            }
        }
        return best < 0 ? 0 : best + len;
    }

    /** Text pieces, each trained or not, encoded piece by piece. */
    private final class Spans {
        private final List<int[]> ids = new ArrayList<>();
        private final List<Boolean> trained = new ArrayList<>();

        void add(String text, boolean train) {
            if (!text.isEmpty()) {
                ids.add(tokenizer.encode(text));
                trained.add(train);
            }
        }

        InstructionExample build() {
            int n = ids.stream().mapToInt(a -> a.length).sum();
            int[] all = new int[n];
            int[] labels = new int[n];
            int at = 0;
            for (int p = 0; p < ids.size(); p++) {
                for (int id : ids.get(p)) {
                    all[at] = id;
                    labels[at++] = trained.get(p) ? id : CrossEntropy.IGNORE;
                }
            }
            return new InstructionExample(all, labels);
        }
    }
}
