package ai.lorakit.models.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Instruction data from JSONL, one example per non-blank line, either
 * {@code {"prompt": "...", "completion": "..."}} or {@code {"messages": [{"role": "system|user|assistant",
 * "content": "..."}, ...]}} (rendered with the chat template). Bad input (invalid JSON, missing or non-string
 * fields, an unknown role, a conversation the template refuses, an empty file) is an
 * {@link InstructionFormatException} naming the file and line.
 */
public final class InstructionData {

    private static final ObjectMapper JSON = new ObjectMapper();

    private InstructionData() {
    }

    /** Every example of {@code file}, encoded. */
    public static List<InstructionExample> read(Path file, InstructionEncoder encoder) throws IOException {
        List<InstructionExample> out = new ArrayList<>();
        try (BufferedReader r = Files.newBufferedReader(file, StandardCharsets.UTF_8)) {
            int lineNo = 0;
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                lineNo++;
                if (!line.isBlank()) {
                    out.add(parse(file, lineNo, line, encoder));
                }
            }
        }
        if (out.isEmpty()) {
            throw new InstructionFormatException(file, 1, "no examples: the file is empty (expected one JSON object"
                    + " per line with \"prompt\"/\"completion\" or \"messages\")");
        }
        return out;
    }

    private static InstructionExample parse(Path file, int line, String text, InstructionEncoder encoder) {
        JsonNode n;
        try {
            n = JSON.readTree(text);
        } catch (JsonProcessingException e) {
            throw new InstructionFormatException(file, line, "invalid JSON: " + e.getOriginalMessage());
        }
        if (n == null || !n.isObject()) {
            throw new InstructionFormatException(file, line, "expected a JSON object, got " + text);
        }
        try {
            if (n.has("messages")) {
                return encoder.encode(messages(file, line, n.get("messages")));
            }
            if (n.has("prompt") || n.has("completion")) {
                return encoder.encode(string(file, line, n, "prompt"), string(file, line, n, "completion"));
            }
        } catch (ChatTemplateException e) {
            throw new InstructionFormatException(file, line, e.getMessage());
        }
        throw new InstructionFormatException(file, line, "expected \"prompt\" and \"completion\", or \"messages\";"
                + " got the fields " + fieldNames(n));
    }

    private static List<ChatMessage> messages(Path file, int line, JsonNode arr) {
        if (!arr.isArray() || arr.isEmpty()) {
            throw new InstructionFormatException(file, line, "\"messages\" must be a non-empty array");
        }
        List<ChatMessage> out = new ArrayList<>();
        for (int i = 0; i < arr.size(); i++) {
            JsonNode m = arr.get(i);
            if (!m.isObject()) {
                throw new InstructionFormatException(file, line, "messages[" + i + "] is not an object");
            }
            String role = string(file, line, m, "role");
            if (!ChatMessage.ROLES.contains(role)) {
                throw new InstructionFormatException(file, line, "messages[" + i + "] has the unknown role \"" + role
                        + "\" (expected one of system, user, assistant)");
            }
            out.add(new ChatMessage(role, string(file, line, m, "content")));
        }
        return out;
    }

    private static String string(Path file, int line, JsonNode n, String field) {
        JsonNode v = n.get(field);
        if (v == null || !v.isTextual()) {
            throw new InstructionFormatException(file, line, "\"" + field + "\" is " + (v == null ? "missing"
                    : "not a string (" + v.getNodeType().toString().toLowerCase(java.util.Locale.ROOT) + ")"));
        }
        return v.asText();
    }

    private static List<String> fieldNames(JsonNode n) {
        List<String> names = new ArrayList<>();
        n.fieldNames().forEachRemaining(names::add);
        return names;
    }
}
