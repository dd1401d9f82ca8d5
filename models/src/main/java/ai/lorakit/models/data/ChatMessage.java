package ai.lorakit.models.data;

import java.util.Set;

/** One turn of a conversation: role (system, user or assistant) and its text. */
public record ChatMessage(String role, String content) {

    /** The roles instruction data may use. */
    public static final Set<String> ROLES = Set.of("system", "user", "assistant");

    public boolean isAssistant() {
        return role.equals("assistant");
    }
}
