package ai.lorakit.models.data;

import ai.lorakit.gpu.CrossEntropy;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the loss mask of {@link InstructionEncoder} with a one-id-per-char tokenizer (so each label can be read
 * back as a character): prompt/completion gives BOS? + prompt (ignored) + completion + EOS (trained); a
 * ChatML-style template trains each assistant text and its {@code <|im_end|>}, and nothing of the system/user
 * turns or headers; templates that rewrite message text, and conversations without assistant text, are refused.
 */
class InstructionEncoderTest {

    private static final String CHATML = """
            {%- for m in messages %}
                {{- '<|im_start|>' + m.role + '\\n' + m.content | trim + '<|im_end|>\\n' }}
            {%- endfor %}
            {%- if add_generation_prompt %}{{- '<|im_start|>assistant\\n' }}{%- endif %}""";

    private static final CharTokenizer TOK = new CharTokenizer();

    /** The text of the trained labels, and of the ignored ones (as '.' per token). */
    private static String trained(InstructionExample e) {
        StringBuilder sb = new StringBuilder();
        for (int l : e.labels()) {
            sb.append(l == CrossEntropy.IGNORE ? '.' : (char) l);
        }
        return sb.toString();
    }

    @Test
    void promptCompletionTrainsCompletionAndEos() {
        InstructionEncoder enc = new InstructionEncoder(TOK, null, "^", "$", List.of());
        InstructionExample e = enc.encode("Q?", "A!");
        assertEquals("^Q?A!$", TOK.decode(e.ids()));
        assertEquals("...A!$", trained(e));
        assertEquals(3, e.trainedTokens());
        InstructionExample noBos = new InstructionEncoder(TOK, null, null, "$", List.of()).encode("Q", "A");
        assertEquals("QA$", TOK.decode(noBos.ids()));
        assertEquals(".A$", trained(noBos));
    }

    @Test
    void chatTrainsAssistantTurnsAndTheirEndOfTurn() {
        ChatTemplate t = new ChatTemplate(CHATML, null, "<|im_end|>", List.of("<|im_end|>", "<|im_start|>"));
        InstructionEncoder enc = new InstructionEncoder(TOK, t, null, null, t.specialTokens());
        List<ChatMessage> c = List.of(new ChatMessage("system", "sys"), new ChatMessage("user", "hi"),
                new ChatMessage("assistant", "  yo \n"), new ChatMessage("user", "again"),
                new ChatMessage("assistant", "ok"),
                new ChatMessage("user", "trailing"));
        InstructionExample e = enc.encode(c);
        String rendered = t.render(c, false);
        String text = TOK.decode(e.ids());
        assertTrue(rendered.startsWith(text) && text.endsWith("ok<|im_end|>"),
                "text stops after the last trained turn: " + text);
        String mask = trained(e);
        assertEquals("yo<|im_end|>ok<|im_end|>", mask.replace(".", ""));
        int first = text.indexOf("yo<|im_end|>");
        assertEquals("yo<|im_end|>", mask.substring(first, first + "yo<|im_end|>".length()), "trained in place");
        assertTrue(mask.substring(0, first).chars().allMatch(ch -> ch == '.'), "system/user/headers ignored");
    }

    @Test
    void refusesTemplatesThatRewriteTextAndConversationsWithoutAnswers() {
        ChatTemplate upper = new ChatTemplate("{% for m in messages %}{{ m.content | upper }}{% endfor %}", null, null,
                List.of());
        InstructionEncoder enc = new InstructionEncoder(TOK, upper, null, null, List.of());
        List<ChatMessage> c = List.of(new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo"));
        assertEquals("HIYO", upper.render(c, false));
        assertTrue(assertThrows(ChatTemplateException.class, () -> enc.encode(c)).getMessage()
                .contains("cannot be located"));
        ChatTemplate t = new ChatTemplate(CHATML, null, null, List.of());
        InstructionEncoder chat = new InstructionEncoder(TOK, t, null, null, List.of());
        assertTrue(assertThrows(ChatTemplateException.class, () -> chat.encode(List.of(new ChatMessage("user", "hi"))))
                .getMessage().contains("no assistant text"));
        InstructionEncoder none = new InstructionEncoder(TOK, null, null, null, List.of());
        assertTrue(assertThrows(ChatTemplateException.class, () -> none.encode(c)).getMessage()
                .contains("no chat_template"));
    }

    @Test
    void templateThatTransformsTextIsRefused() {
        ChatTemplate length = new ChatTemplate("{% for m in messages %}{{ m.content|length }};{% endfor %}", null, null,
                List.of());
        List<ChatMessage> c = List.of(new ChatMessage("user", "hi"), new ChatMessage("assistant", "yo"));
        assertEquals("2;2;", length.render(c, false));
        InstructionEncoder enc = new InstructionEncoder(TOK, length, null, null, List.of());
        assertTrue(assertThrows(ChatTemplateException.class, () -> enc.encode(c)).getMessage()
                .contains("rewrites message text"));
    }

    @Test
    void templateDroppingAMessageIsRefused() {
        ChatTemplate skipSystem = new ChatTemplate(
                "{% for m in messages %}{% if m.role != 'system' %}[{{ m.content }}]{% endif %}{% endfor %}",
                null, null, List.of());
        InstructionEncoder enc = new InstructionEncoder(TOK, skipSystem, null, null, List.of());
        List<ChatMessage> c = List.of(new ChatMessage("system", "s"), new ChatMessage("user", "u"),
                new ChatMessage("assistant", "a"));
        assertTrue(assertThrows(ChatTemplateException.class, () -> enc.encode(c)).getMessage()
                .contains("cannot be located"));
    }
}
