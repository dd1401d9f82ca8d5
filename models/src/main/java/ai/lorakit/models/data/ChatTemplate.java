package ai.lorakit.models.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.hubspot.jinjava.Jinjava;
import com.hubspot.jinjava.JinjavaConfig;
import com.hubspot.jinjava.LegacyOverrides;
import com.hubspot.jinjava.el.JinjavaInterpreterResolver;
import com.hubspot.jinjava.interpret.RenderResult;
import com.hubspot.jinjava.interpret.TemplateError;
import com.hubspot.jinjava.lib.fn.ELFunctionDefinition;
import jinjava.javax.el.CompositeELResolver;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The chat template of a Hugging Face tokenizer folder ({@code tokenizer_config.json}'s {@code chat_template}),
 * rendered as {@code tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=...)} renders
 * it, with Jinjava.
 *
 * <p>Hugging Face renders with Python's Jinja2 ({@code trim_blocks}, {@code lstrip_blocks}); the templates use
 * Python-flavoured things this class supplies: the variables {@code messages}, {@code bos_token},
 * {@code eos_token}, {@code add_generation_prompt}; the functions {@code raise_exception(msg)} (a
 * {@link ChatTemplateException}) and {@code strftime_now(fmt)}; Python string methods ({@link PyStringMethods});
 * {@code x[::-1]} (rewritten to {@code x|reverse}); whitespace control on expressions ({@code {{- x -}}}) and
 * {@code namespace(k=v)} with filtered values (Jinjava's natural-precedence and trimming overrides); Python's
 * {@code tojson} ({@link PyToJson}). Message text is never interpreted as template (nested interpretation off).
 * {@code ChatTemplateReferenceTest} checks the result against the JS reference on real templates.
 */
public final class ChatTemplate {

    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Pattern REVERSE_SLICE = Pattern.compile("\\[\\s*:\\s*:\\s*-1\\s*]");

    private final String template;
    private final String bosToken;
    private final String eosToken;
    private final List<String> specialTokens;
    private final Jinjava jinjava;

    /**
     * @param template      the Jinja source
     * @param bosToken      the text of BOS, or null (the template sees an empty string)
     * @param eosToken      the text of EOS, or null
     * @param specialTokens texts of the tokenizer's special tokens (the end-of-turn search of
     *                      {@link InstructionEncoder} looks for them)
     */
    public ChatTemplate(String template, String bosToken, String eosToken, List<String> specialTokens) {
        this.template = parenthesizeNamespaceArgs(REVERSE_SLICE.matcher(template).replaceAll("|reverse"));
        this.bosToken = bosToken;
        this.eosToken = eosToken;
        this.specialTokens = List.copyOf(specialTokens);
        CompositeELResolver resolver = new CompositeELResolver();
        resolver.add(new PyStringMethods());
        resolver.add(JinjavaInterpreterResolver.DEFAULT_RESOLVER_READ_ONLY);
        LegacyOverrides py = LegacyOverrides.newBuilder().withUseNaturalOperatorPrecedence(true)
                .withUseTrimmingForNotesAndExpressions(true).withParseWhitespaceControlStrictly(true)
                .withKeepNullableLoopValues(true).build();
        jinjava = new Jinjava(JinjavaConfig.newBuilder().withTrimBlocks(true).withLstripBlocks(true)
                .withElResolver(resolver).withLegacyOverrides(py).withFailOnUnknownTokens(false)
                .withNestedInterpretationEnabled(false)     // message text is data: "{{ x }}" in it stays text
                .build());
        jinjava.getGlobalContext().registerFilter(new PyToJson());
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "raise_exception", ChatTemplate.class,
                "raiseException", String.class));
        jinjava.getGlobalContext().registerFunction(new ELFunctionDefinition("", "strftime_now", ChatTemplate.class,
                "strftimeNow", String.class));
    }

    /**
     * The template of {@code tokenizer_config.json} in {@code dir} (a string, or HF's list of named templates, of
     * which "default" is taken).
     *
     * @throws IOException a missing or unreadable file
     * @throws ChatTemplateException the file has no chat_template
     */
    public static ChatTemplate load(Path dir) throws IOException {
        Path file = Files.isDirectory(dir) ? dir.resolve("tokenizer_config.json") : dir;
        JsonNode c;
        try {
            c = JSON.readTree(file.toFile());
        } catch (IOException e) {
            throw new IOException(file + ": cannot read the tokenizer config: " + e.getMessage(), e);
        }
        JsonNode t = c.path("chat_template");
        String src = null;
        if (t.isTextual()) {
            src = t.asText();
        } else if (t.isArray()) {
            for (JsonNode named : t) {
                if ("default".equals(named.path("name").asText())) {
                    src = named.path("template").asText();
                }
            }
        }
        if (src == null) {
            throw new ChatTemplateException(file + " has no chat_template: {\"messages\": ...} data needs a chat"
                    + " model's tokenizer folder (or use {\"prompt\", \"completion\"} lines)");
        }
        List<String> specials = new ArrayList<>();
        c.path("added_tokens_decoder").forEach(tok -> {
            if (tok.path("special").asBoolean(false) && tok.path("content").isTextual()) {
                specials.add(tok.path("content").asText());
            }
        });
        return new ChatTemplate(src, tokenText(c, "bos_token"), tokenText(c, "eos_token"), specials);
    }

    /** A token given as a string or as an AddedToken object {"content": ...}; null when absent. */
    static String tokenText(JsonNode config, String key) {
        JsonNode n = config.path(key);
        if (n.isTextual()) {
            return n.asText();
        }
        if (n.path("content").isTextual()) {
            return n.path("content").asText();
        }
        return null;
    }

    public String bosToken() {
        return bosToken;
    }

    public String eosToken() {
        return eosToken;
    }

    public List<String> specialTokens() {
        return specialTokens;
    }

    /**
     * The rendered conversation.
     *
     * @throws ChatTemplateException the template raised an exception or failed to render
     */
    public String render(List<ChatMessage> messages, boolean addGenerationPrompt) {
        List<Map<String, Object>> msgs = new ArrayList<>();
        for (ChatMessage m : messages) {
            Map<String, Object> mm = new LinkedHashMap<>();
            mm.put("role", m.role());
            mm.put("content", m.content());
            msgs.add(mm);
        }
        Map<String, Object> ctx = new HashMap<>();
        ctx.put("messages", msgs);
        ctx.put("bos_token", bosToken == null ? "" : bosToken);
        ctx.put("eos_token", eosToken == null ? "" : eosToken);
        ctx.put("add_generation_prompt", addGenerationPrompt);
        RAISED.remove();
        RenderResult r = jinjava.renderForResult(template, ctx);
        String raised = RAISED.get();
        RAISED.remove();
        if (raised != null) {
            throw new ChatTemplateException("the chat template refused the conversation: " + raised);
        }
        for (TemplateError e : r.getErrors()) {
            if (e.getSeverity() == TemplateError.ErrorType.FATAL) {
                throw new ChatTemplateException("chat template failed at line " + e.getLineno() + ": "
                        + e.getMessage());
            }
        }
        return r.getOutput();
    }

    /**
     * {@code namespace(a=x|length - 1)} as {@code namespace(a=(x|length - 1))}: Jinjava binds a named argument
     * tighter than a filter, Jinja the other way round. Quotes and nested brackets are respected.
     */
    static String parenthesizeNamespaceArgs(String src) {
        StringBuilder out = new StringBuilder();
        int from = 0;
        for (int at = src.indexOf("namespace(", from); at >= 0; at = src.indexOf("namespace(", from)) {
            int open = at + "namespace(".length();
            out.append(src, from, open);
            List<String> args = new ArrayList<>();
            int depth = 0;
            int start = open;
            int i = open;
            char quote = 0;
            for (; i < src.length(); i++) {
                char ch = src.charAt(i);
                if (quote != 0) {
                    if (ch == '\\') {
                        i++;
                    } else if (ch == quote) {
                        quote = 0;
                    }
                } else if (ch == '\'' || ch == '"') {
                    quote = ch;
                } else if (ch == '(' || ch == '[' || ch == '{') {
                    depth++;
                } else if ((ch == ')' || ch == ']' || ch == '}') && depth > 0) {
                    depth--;
                } else if (ch == ')' || (ch == ',' && depth == 0)) {
                    args.add(src.substring(start, i));
                    start = i + 1;
                    if (ch == ')') {
                        break;
                    }
                }
            }
            if (i >= src.length()) {
                out.append(src.substring(open));     // unbalanced: leave it for Jinjava to report
                return out.toString();
            }
            List<String> fixed = new ArrayList<>();
            for (String a : args) {
                Matcher m = NAMED_ARG.matcher(a);
                fixed.add(m.matches() ? m.group(1) + "=(" + m.group(2) + ")" : a);
            }
            out.append(String.join(",", fixed)).append(')');
            from = i + 1;
        }
        return out.append(src.substring(from)).toString();
    }

    private static final Pattern NAMED_ARG = Pattern.compile("(\\s*[A-Za-z_][A-Za-z0-9_]*\\s*)=(?!=)(.*)",
            Pattern.DOTALL);

    // ---------------------------------------------------------------- template functions

    /** The message of the raise_exception call of the render in progress on this thread (Jinjava wraps it). */
    private static final ThreadLocal<String> RAISED = new ThreadLocal<>();

    /** raise_exception(msg): the template refuses the conversation ({@link #render} throws with msg). */
    public static String raiseException(String message) {
        if (RAISED.get() == null) {
            RAISED.set(message);
        }
        throw new ChatTemplateException("the chat template refused the conversation: " + message);
    }

    /** strftime_now(fmt): the current local time in Python's strftime format. */
    public static String strftimeNow(String format) {
        return strftime(ZonedDateTime.now(), format);
    }

    private static final Map<Character, String> STRFTIME = Map.ofEntries(Map.entry('Y', "yyyy"), Map.entry('y', "yy"),
            Map.entry('m', "MM"), Map.entry('d', "dd"), Map.entry('B', "MMMM"), Map.entry('b', "MMM"),
            Map.entry('A', "EEEE"), Map.entry('a', "EEE"), Map.entry('H', "HH"), Map.entry('I', "hh"),
            Map.entry('M', "mm"), Map.entry('S', "ss"), Map.entry('p', "a"), Map.entry('j', "DDD"),
            Map.entry('Z', "zzz"), Map.entry('z', "xx"));

    /** Python's strftime directives (those above, plus %-d / %e / %%) in Java's formatter. */
    static String strftime(ZonedDateTime t, String format) {
        StringBuilder out = new StringBuilder();
        Matcher m = Pattern.compile("%(-?)(.)").matcher(format);
        int last = 0;
        while (m.find()) {
            out.append(format, last, m.start());
            char d = m.group(2).charAt(0);
            if (d == '%') {
                out.append('%');
            } else if (d == 'e' || (d == 'd' && !m.group(1).isEmpty())) {
                out.append(d == 'e' ? String.format("%2d", t.getDayOfMonth()) : t.getDayOfMonth());
            } else if (STRFTIME.containsKey(d)) {
                out.append(DateTimeFormatter.ofPattern(STRFTIME.get(d), Locale.ENGLISH).format(t));
            } else {
                throw new ChatTemplateException("strftime_now: unsupported directive %" + d + " in \"" + format + "\"");
            }
            last = m.end();
        }
        return out.append(format.substring(last)).toString();
    }
}
