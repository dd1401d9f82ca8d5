package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.text.Normalizer;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;
import java.util.regex.Matcher;

/**
 * The {@code normalizer} of tokenizer.json, applied to each stretch of ordinary text between added tokens:
 * Sequence, Prepend (Llama 2's "▁"), Replace (a String or Regex pattern; Llama 2's " " -> "▁"), and the Unicode
 * forms NFC (Qwen), NFD, NFKC, NFKD. Anything else is refused by name.
 */
final class Normalizers {

    static final String SUPPORTED = "Sequence, Prepend, Replace, NFC, NFD, NFKC, NFKD";

    private Normalizers() {
    }

    /** The normalizer of {@code node} ({@code null} or JSON null: identity). */
    static UnaryOperator<String> of(JsonNode node) {
        if (node == null || node.isNull()) {
            return UnaryOperator.identity();
        }
        String type = HfJson.type(node, "normalizer");
        return switch (type) {
            case "Sequence" -> {
                List<UnaryOperator<String>> parts = new ArrayList<>();
                for (JsonNode n : HfJson.array(node, "normalizers", "normalizer Sequence")) {
                    parts.add(of(n));
                }
                yield s -> {
                    for (UnaryOperator<String> p : parts) {
                        s = p.apply(s);
                    }
                    return s;
                };
            }
            case "Prepend" -> {
                String prefix = HfJson.string(node, "prepend", "normalizer Prepend");
                yield s -> prefix + s;
            }
            case "Replace" -> replace(node, "normalizer Replace");
            case "NFC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFC);
            case "NFD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFD);
            case "NFKC" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKC);
            case "NFKD" -> s -> Normalizer.normalize(s, Normalizer.Form.NFKD);
            default -> throw HfJson.unsupported("normalizer", type, SUPPORTED);
        };
    }

    /** Replace {pattern: {String|Regex}, content}: every match replaced (shared with the Replace decoder). */
    static UnaryOperator<String> replace(JsonNode node, String where) {
        JsonNode pattern = HfJson.object(node, "pattern", where);
        String content = HfJson.string(node, "content", where);
        if (pattern.has("String")) {
            String literal = HfJson.string(pattern, "String", where + " pattern");
            return s -> s.replace(literal, content);
        }
        if (pattern.has("Regex")) {
            var regex = HfRegex.compile(HfJson.string(pattern, "Regex", where + " pattern"));
            String replacement = Matcher.quoteReplacement(content);
            return s -> regex.matcher(s).replaceAll(replacement);
        }
        throw new IllegalArgumentException(where + ": pattern has neither String nor Regex");
    }
}
