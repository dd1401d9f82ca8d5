package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * The {@code decoder} of tokenizer.json, a chain over token strings:
 * <ul>
 *   <li><b>ByteLevel</b>: symbols back to bytes, bytes to text (invalid UTF-8 becomes U+FFFD); added tokens
 *       pass through as their own text;</li>
 *   <li><b>Replace</b> (Llama 2's "▁" -> " "), <b>ByteFallback</b> ({@code <0xNN>} runs to text),
 *       <b>Fuse</b> (one string), <b>Strip</b> (up to {@code start}/{@code stop} copies of {@code content} off
 *       each token's ends), <b>Metaspace</b> (replacement -> " ", the prepended one dropped);</li>
 *   <li><b>Sequence</b> of these.</li>
 * </ul>
 * HF's {@code clean_up_tokenization_spaces} is not applied, so decode inverts encode where the pipeline allows.
 */
final class Decoders {

    static final String SUPPORTED = "Sequence, ByteLevel, Replace, ByteFallback, Fuse, Strip, Metaspace";

    /** One step of the chain. */
    interface Decoder {
        List<String> decode(List<String> tokens);
    }

    private Decoders() {
    }

    /** The decoder of {@code node} ({@code null} or JSON null: tokens concatenated). */
    static Decoder of(JsonNode node, Set<String> addedTokens) {
        if (node == null || node.isNull()) {
            return tokens -> tokens;
        }
        String type = HfJson.type(node, "decoder");
        return switch (type) {
            case "Sequence" -> {
                List<Decoder> parts = new ArrayList<>();
                for (JsonNode n : HfJson.array(node, "decoders", "decoder Sequence")) {
                    parts.add(of(n, addedTokens));
                }
                yield tokens -> {
                    for (Decoder d : parts) {
                        tokens = d.decode(tokens);
                    }
                    return tokens;
                };
            }
            case "ByteLevel" -> tokens -> byteLevel(tokens, addedTokens);
            case "Replace" -> {
                UnaryOperator<String> r = Normalizers.replace(node, "decoder Replace");
                yield tokens -> tokens.stream().map(r).toList();
            }
            case "ByteFallback" -> Decoders::byteFallback;
            case "Fuse" -> tokens -> List.of(String.join("", tokens));
            case "Strip" -> strip(node);
            case "Metaspace" -> metaspace(node);
            default -> throw HfJson.unsupported("decoder", type, SUPPORTED);
        };
    }

    private static List<String> byteLevel(List<String> tokens, Set<String> addedTokens) {
        List<String> out = new ArrayList<>();
        ByteArrayOutputStream run = new ByteArrayOutputStream();
        for (String t : tokens) {
            if (addedTokens.contains(t)) {
                flush(run, out);
                out.add(t);
                continue;
            }
            for (int k = 0; k < t.length(); k++) {
                int b = ByteUnicode.byteOf(t.charAt(k));
                if (b >= 0) {
                    run.write(b);
                } else { // a symbol outside the byte map: its own UTF-8
                    run.writeBytes(String.valueOf(t.charAt(k)).getBytes(StandardCharsets.UTF_8));
                }
            }
        }
        flush(run, out);
        return out;
    }

    private static List<String> byteFallback(List<String> tokens) {
        List<String> out = new ArrayList<>();
        ByteArrayOutputStream run = new ByteArrayOutputStream();
        for (String t : tokens) {
            int b = t.length() == 6 && t.startsWith("<0x") && t.endsWith(">") ? hexByte(t.substring(3, 5)) : -1;
            if (b >= 0) {
                run.write(b);
            } else {
                flush(run, out);
                out.add(t);
            }
        }
        flush(run, out);
        return out;
    }

    private static int hexByte(String hex) {
        try {
            return Integer.parseInt(hex, 16);
        } catch (NumberFormatException e) {
            return -1;
        }
    }

    private static void flush(ByteArrayOutputStream run, List<String> out) {
        if (run.size() > 0) {
            out.add(Utf8.decodeReplacing(run.toByteArray(), run.size()));
            run.reset();
        }
    }

    private static Decoder strip(JsonNode node) {
        String where = "decoder Strip";
        String content = HfJson.string(node, "content", where);
        if (content.length() != 1) {
            throw new IllegalArgumentException(where + ": content must be one character, got '" + content + "'");
        }
        char c = content.charAt(0);
        int start = HfJson.integer(node, "start", where);
        int stop = HfJson.integer(node, "stop", where);
        return tokens -> tokens.stream().map(t -> {
            int from = 0;
            while (from < start && from < t.length() && t.charAt(from) == c) {
                from++;
            }
            int to = t.length();
            while (t.length() - to < stop && to > from && t.charAt(to - 1) == c) {
                to--;
            }
            return t.substring(from, to);
        }).toList();
    }

    private static Decoder metaspace(JsonNode node) {
        String where = "decoder Metaspace";
        String replacement = HfJson.string(node, "replacement", where);
        boolean dropFirst = !PreTokenizers.metaspaceScheme(node, where).equals("never");
        return tokens -> {
            List<String> out = new ArrayList<>(tokens.size());
            for (int i = 0; i < tokens.size(); i++) {
                String t = tokens.get(i).replace(replacement, " ");
                out.add(dropFirst && i == 0 && t.startsWith(" ") ? t.substring(1) : t);
            }
            return out;
        };
    }
}
