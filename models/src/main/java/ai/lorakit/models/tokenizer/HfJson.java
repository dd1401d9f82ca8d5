package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

/**
 * Typed reads of tokenizer.json nodes. A missing or mistyped field, or an unsupported component, is an
 * IllegalArgumentException naming the component; {@link HfTokenizer#load} adds the file name.
 */
final class HfJson {

    private HfJson() {
    }

    /** The {@code type} of a component node. */
    static String type(JsonNode node, String component) {
        if (!node.isObject()) {
            throw new IllegalArgumentException(component + " is not a JSON object: " + abbreviate(node));
        }
        return string(node, "type", component);
    }

    static String string(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || !v.isTextual()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be a string, got "
                    + abbreviate(v));
        }
        return v.asText();
    }

    /** A string field that may be absent or null. */
    static String optionalString(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        return v == null || v.isNull() ? null : string(node, field, where);
    }

    static boolean bool(JsonNode node, String field, boolean absent, String where) {
        JsonNode v = node.get(field);
        if (v == null || v.isNull()) {
            return absent;
        }
        if (!v.isBoolean()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be true or false, got "
                    + abbreviate(v));
        }
        return v.asBoolean();
    }

    static int integer(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || !v.canConvertToInt() || !v.isIntegralNumber()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be an integer, got "
                    + abbreviate(v));
        }
        return v.asInt();
    }

    static JsonNode array(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || !v.isArray()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be an array, got "
                    + abbreviate(v));
        }
        return v;
    }

    static JsonNode object(JsonNode node, String field, String where) {
        JsonNode v = node.get(field);
        if (v == null || !v.isObject()) {
            throw new IllegalArgumentException(where + ": field '" + field + "' must be an object, got "
                    + abbreviate(v));
        }
        return v;
    }

    /** "unsupported pre_tokenizer 'Whitespace' (lorakit supports: ...)". */
    static IllegalArgumentException unsupported(String component, String type, String supported) {
        return new IllegalArgumentException("unsupported " + component + " '" + type + "' (lorakit supports: "
                + supported + ")");
    }

    private static String abbreviate(JsonNode v) {
        if (v == null) {
            return "nothing";
        }
        String s = v.toString();
        return s.length() > 80 ? s.substring(0, 77) + "..." : s;
    }
}
