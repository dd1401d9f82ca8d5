package ai.lorakit.models.data;

import java.util.Objects;

/**
 * One training document: a text and where it came from ({@code "notes/a.txt"}, {@code "data.jsonl:12"},
 * {@code "brown/ck01"}), used in messages and to keep splits inspectable.
 */
public record Document(String name, String text) {

    public Document {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(text, "text");
    }
}
