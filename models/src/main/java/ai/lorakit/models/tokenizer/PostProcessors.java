package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The {@code post_processor} of tokenizer.json, reduced to what encoding one sequence with special tokens needs:
 * the ids put before and after it. TemplateProcessing's {@code single} template (Llama 2 / Mistral: {@code <s>}
 * then the text), ByteLevel (offsets only: no ids; Llama 3's and Qwen's files), and a Sequence of these.
 */
final class PostProcessors {

    static final String SUPPORTED = "TemplateProcessing (single sequence), ByteLevel, Sequence of these";

    /** Special-token ids before ({@code prefix}) and after ({@code suffix}) the text. */
    record Template(int[] prefix, int[] suffix) {
    }

    private PostProcessors() {
    }

    /** The template of {@code node} ({@code null} or JSON null: nothing added). */
    static Template of(JsonNode node, Map<String, Integer> vocab) {
        List<Integer> prefix = new ArrayList<>();
        List<Integer> suffix = new ArrayList<>();
        collect(node, vocab, prefix, suffix);
        return new Template(prefix.stream().mapToInt(Integer::intValue).toArray(),
                suffix.stream().mapToInt(Integer::intValue).toArray());
    }

    /** Appends {@code node}'s ids before the text to {@code prefix} and after it to {@code suffix}. */
    private static void collect(JsonNode node, Map<String, Integer> vocab, List<Integer> prefix, List<Integer> suffix) {
        if (node == null || node.isNull()) {
            return;
        }
        String type = HfJson.type(node, "post_processor");
        switch (type) {
            case "ByteLevel" -> {
                // offsets only: no ids
            }
            case "Sequence" -> {
                for (JsonNode p : HfJson.array(node, "processors", "post_processor Sequence")) {
                    collect(p, vocab, prefix, suffix);
                }
            }
            case "TemplateProcessing" -> {
                String where = "post_processor TemplateProcessing";
                JsonNode specials = node.path("special_tokens");
                boolean seenA = false;
                for (JsonNode item : HfJson.array(node, "single", where)) {
                    if (item.has("Sequence")) {
                        String id = HfJson.string(item.get("Sequence"), "id", where + " Sequence");
                        if (!id.equals("A") || seenA) {
                            throw new IllegalArgumentException(where + ": single template must hold sequence A once,"
                                    + " got " + node.get("single"));
                        }
                        seenA = true;
                    } else if (item.has("SpecialToken")) {
                        String name = HfJson.string(item.get("SpecialToken"), "id", where + " SpecialToken");
                        List<Integer> ids = specialIds(name, specials.get(name), vocab, where);
                        (seenA ? suffix : prefix).addAll(ids);
                    } else {
                        throw new IllegalArgumentException(where + ": unknown template item " + item);
                    }
                }
                if (!seenA) {
                    throw new IllegalArgumentException(where + ": single template lacks sequence A");
                }
            }
            default -> throw HfJson.unsupported("post_processor", type, SUPPORTED);
        }
    }

    private static List<Integer> specialIds(String name, JsonNode special, Map<String, Integer> vocab, String where) {
        List<Integer> ids = new ArrayList<>();
        if (special != null && special.has("ids")) {
            for (JsonNode id : HfJson.array(special, "ids", where + " special_tokens." + name)) {
                ids.add(id.asInt());
            }
        } else {
            Integer id = vocab.get(name);
            if (id == null) {
                throw new IllegalArgumentException(where + ": special token '" + name + "' is not in the vocabulary");
            }
            ids.add(id);
        }
        return ids;
    }
}
