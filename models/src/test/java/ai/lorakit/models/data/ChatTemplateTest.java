package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZoneOffset;
import java.time.ZonedDateTime;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, offline, the Python-flavoured pieces {@link ChatTemplate} adds to Jinjava, each against the value
 * Python's Jinja2 gives (worked out by hand below): string methods with Python semantics, {@code [::-1]},
 * {@code namespace(k=x|length - 1)}, {@code {{- -}}} whitespace control with trim/lstrip blocks,
 * {@code raise_exception}, {@code strftime_now}, the token variables, and that message text is never
 * interpreted as template.
 */
class ChatTemplateTest {

    private static final List<ChatMessage> CONV = List.of(new ChatMessage("user", "a"),
            new ChatMessage("assistant", "b"),
            new ChatMessage("user", "c"));

    private static String render(String template, List<ChatMessage> messages, boolean gen) {
        return new ChatTemplate(template, "<s>", "</s>", List.of()).render(messages, gen);
    }

    @Test
    void pythonStringMethods() {
        List<ChatMessage> m = List.of(new ChatMessage("user", "\n\n  x</think>\n\ny  \n"));
        assertEquals("[  x</think>\n\ny  \n]", render("[{{ messages[0].content.lstrip('\\n') }}]", m, false),
                "lstrip(chars) strips only those chars");
        assertEquals("[x</think>\n\ny]", render("[{{ messages[0].content.strip() }}]", m, false));
        assertEquals("[y  \n]", render("[{{ messages[0].content.split('</think>')[-1].lstrip('\\n') }}]", m, false));
        assertEquals("TrueFalse", render("{{ 'ab'.startswith('a') }}{{ 'ab'.endswith('a') }}", m, false)
                .replace("true", "True").replace("false", "False"));
        assertEquals("3", render("{{ 'a b  c'.split() | length }}", m, false));
    }

    @Test
    void reverseSliceNamespaceAndWhitespaceControl() {
        String t = """
                {%- set ns = namespace(last=messages|length - 1, found=false) %}
                {%- for m in messages[::-1] %}
                    {%- if not ns.found and m.role == 'user' %}
                        {%- set ns.last = (messages|length - 1) - loop.index0 %}
                        {%- set ns.found = true %}
                    {%- endif %}
                {%- endfor %}
                {{- bos_token }}
                {%- for m in messages %}
                    {{- m.role + ':' + m.content }}
                    {%- if loop.index0 == ns.last %}!{% endif %}
                    {{- '|' }}
                {%- endfor %}
                {%- if add_generation_prompt %}
                    {{- 'assistant:' }}
                {%- endif %}
                """;
        assertEquals("<s>user:a|assistant:b|user:c!|", render(t, CONV, false));
        assertEquals("<s>user:a|assistant:b|user:c!|assistant:", render(t, CONV, true));
    }

    @Test
    void tojsonIsPythonsJsonDumps() {
        List<ChatMessage> m = List.of(new ChatMessage("user", "a\"é\n\u0001"));
        // json.dumps(x, ensure_ascii=False) and json.dumps(x, ensure_ascii=False, indent=2) in Python 3
        assertEquals("[{\"role\": \"user\", \"content\": \"a\\\"é\\n\\u0001\"}]",
                render("{{ messages|tojson }}", m, false));
        assertEquals("{\n  \"role\": \"user\",\n  \"content\": \"a\\\"é\\n\\u0001\"\n}",
                render("{{ messages[0]|tojson(indent=2) }}", m, false));
        assertEquals("[]|{}|[1, true, null]",
                render("{{ []|tojson }}|{{ {}|tojson }}|{{ [1, true, none]|tojson }}", m, false));
    }

    @Test
    void raiseExceptionRefusesTheConversation() {
        String t = "{% if messages[0].role != 'system' %}{{ raise_exception('system first') }}{% endif %}ok";
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> render(t, CONV, false));
        assertTrue(e.getMessage().contains("system first"), e.getMessage());
    }

    @Test
    void strftimeUsesPythonDirectives() {
        ZonedDateTime t = ZonedDateTime.of(2024, 7, 5, 14, 3, 9, 0, ZoneOffset.UTC);
        assertEquals("05 Jul 2024 14:03:09 %", ChatTemplate.strftime(t, "%d %b %Y %H:%M:%S %%"));
        assertEquals("5 July 2024, Friday", ChatTemplate.strftime(t, "%-d %B %Y, %A"));
        assertTrue(render("{{ strftime_now('%Y') }}", CONV, false).matches("\\d{4}"));
        assertThrows(ChatTemplateException.class, () -> ChatTemplate.strftime(t, "%Q"));
    }

    @Test
    void messageTextIsNeverInterpreted() {
        List<ChatMessage> m = List.of(new ChatMessage("user", "{{ bos_token }} {% raw %} {# c #}"));
        assertEquals("{{ bos_token }} {% raw %} {# c #}", render("{{ messages[0]['content'] }}", m, false));
    }

    @Test
    void loadReadsTokensAndRefusesAMissingTemplate(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("tokenizer_config.json"), """
                {"bos_token": {"content": "<B>"}, "eos_token": "<E>", "chat_template": [{"name": "default",
                 "template": "{{ bos_token }}{{ messages[0].content }}{{ eos_token }}"}],
                 "added_tokens_decoder": {"7": {"content": "<E>", "special": true},
                                          "8": {"content": "x", "special": false}}}
                """);
        ChatTemplate t = ChatTemplate.load(dir);
        assertEquals("<B>a<E>", t.render(CONV, false));
        assertEquals(List.of("<E>"), t.specialTokens());
        Files.writeString(dir.resolve("tokenizer_config.json"), "{\"bos_token\": \"<s>\"}");
        ChatTemplateException e = assertThrows(ChatTemplateException.class, () -> ChatTemplate.load(dir));
        assertTrue(e.getMessage().contains("tokenizer_config.json has no chat_template"), e.getMessage());
    }
}
