package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The {@code pre_tokenizer} of tokenizer.json: cuts normalised text into the words that BPE merges within.
 * <ul>
 *   <li><b>Split</b> with a Regex or String pattern, behaviour {@code Isolated}, not inverted (Llama 3's and Qwen's
 *       regex): matches and the text between them each become a word;</li>
 *   <li><b>ByteLevel</b> (GPT-2, and after Split in Llama 3 / Qwen): optional prefix space, optional GPT-2 regex
 *       split, then each word's UTF-8 bytes written as {@link ByteUnicode} symbols;</li>
 *   <li><b>Metaspace</b> (Llama 2 / Mistral in the newer layout): spaces become the replacement ("▁"), which is
 *       prepended per {@code prepend_scheme} (always; first = only the section at the start of the input; never);
 *       {@code split: true} is refused (the JS reference does not split there, so ids could not be checked);</li>
 *   <li><b>Sequence</b> of these.</li>
 * </ul>
 */
final class PreTokenizers {

    static final String SUPPORTED = "Sequence, Split (Isolated, not inverted), ByteLevel, Metaspace (split=false)";

    /** GPT-2's word regex, as the ByteLevel pre-tokenizer uses it with {@code use_regex}. */
    static final String GPT2_REGEX = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+";

    /** One pre-tokenizer: appends the words of {@code text} to {@code out}. */
    interface PreTokenizer {
        /** @param section index of this text among the sections of the input (added tokens count) */
        void split(String text, int section, List<String> out);
    }

    private PreTokenizers() {
    }

    /** The pre-tokenizer of {@code node} ({@code null} or JSON null: the whole text is one word). */
    static PreTokenizer of(JsonNode node) {
        if (node == null || node.isNull()) {
            return (text, section, out) -> out.add(text);
        }
        String type = HfJson.type(node, "pre_tokenizer");
        return switch (type) {
            case "Sequence" -> sequence(node);
            case "Split" -> split(node);
            case "ByteLevel" -> byteLevel(node);
            case "Metaspace" -> metaspace(node);
            default -> throw HfJson.unsupported("pre_tokenizer", type, SUPPORTED);
        };
    }

    private static PreTokenizer sequence(JsonNode node) {
        List<PreTokenizer> parts = new ArrayList<>();
        for (JsonNode n : HfJson.array(node, "pretokenizers", "pre_tokenizer Sequence")) {
            parts.add(of(n));
        }
        return (text, section, out) -> {
            List<String> words = List.of(text);
            for (PreTokenizer p : parts) {
                List<String> next = new ArrayList<>();
                for (String w : words) {
                    p.split(w, section, next);
                }
                words = next;
            }
            out.addAll(words);
        };
    }

    private static PreTokenizer split(JsonNode node) {
        String where = "pre_tokenizer Split";
        String behavior = HfJson.string(node, "behavior", where);
        if (!behavior.equals("Isolated")) {
            throw HfJson.unsupported("pre_tokenizer Split behavior", behavior, "Isolated");
        }
        if (HfJson.bool(node, "invert", false, where)) {
            throw HfJson.unsupported("pre_tokenizer Split", "invert: true", "invert: false");
        }
        JsonNode pattern = HfJson.object(node, "pattern", where);
        Pattern regex;
        if (pattern.has("Regex")) {
            regex = HfRegex.compile(HfJson.string(pattern, "Regex", where + " pattern"));
        } else if (pattern.has("String")) {
            regex = Pattern.compile(Pattern.quote(HfJson.string(pattern, "String", where + " pattern")));
        } else {
            throw new IllegalArgumentException(where + ": pattern has neither String nor Regex");
        }
        return (text, section, out) -> isolate(regex, text, out);
    }

    /** Matches and the gaps between them, in order, empty strings dropped (HF's Isolated behaviour). */
    static void isolate(Pattern regex, String text, List<String> out) {
        Matcher m = regex.matcher(text);
        int prev = 0;
        while (m.find()) {
            if (prev < m.start()) {
                out.add(text.substring(prev, m.start()));
            }
            if (m.end() > m.start()) {
                out.add(m.group());
            }
            prev = m.end();
        }
        if (prev < text.length()) {
            out.add(text.substring(prev));
        }
    }

    private static PreTokenizer byteLevel(JsonNode node) {
        String where = "pre_tokenizer ByteLevel";
        boolean addPrefixSpace = HfJson.bool(node, "add_prefix_space", true, where);
        boolean useRegex = HfJson.bool(node, "use_regex", true, where);
        Pattern gpt2 = useRegex ? HfRegex.compile(GPT2_REGEX) : null;
        return (text, section, out) -> {
            String t = addPrefixSpace && !text.startsWith(" ") ? " " + text : text;
            if (gpt2 == null) {
                out.add(ByteUnicode.encode(Utf8.encodeReplacing(t)));
                return;
            }
            Matcher m = gpt2.matcher(t);
            while (m.find()) {
                out.add(ByteUnicode.encode(Utf8.encodeReplacing(m.group())));
            }
        };
    }

    private static PreTokenizer metaspace(JsonNode node) {
        String where = "pre_tokenizer Metaspace";
        String replacement = HfJson.string(node, "replacement", where);
        if (HfJson.bool(node, "split", true, where)) {
            throw HfJson.unsupported("pre_tokenizer Metaspace", "split: true (or absent)", "split: false");
        }
        String scheme = metaspaceScheme(node, where);
        return (text, section, out) -> {
            String t = text.replace(" ", replacement);
            boolean prepend = scheme.equals("always") || (scheme.equals("first") && section == 0);
            out.add(prepend && !t.startsWith(replacement) ? replacement + t : t);
        };
    }

    /**
     * always, first or never. Older files say {@code add_prefix_space} instead: false means never. (HF's Rust
     * reads {@code prepend_scheme}; the JS reference prepends only when {@code add_prefix_space} is true, so a
     * file with a scheme but no add_prefix_space tokenizes differently there.)
     */
    static String metaspaceScheme(JsonNode node, String where) {
        String scheme = HfJson.optionalString(node, "prepend_scheme", where);
        if (!HfJson.bool(node, "add_prefix_space", true, where)) {
            return "never";
        }
        if (scheme == null) {
            return "always";
        }
        if (!scheme.equals("always") && !scheme.equals("first") && !scheme.equals("never")) {
            throw HfJson.unsupported(where + " prepend_scheme", scheme, "always, first, never");
        }
        return scheme;
    }
}
