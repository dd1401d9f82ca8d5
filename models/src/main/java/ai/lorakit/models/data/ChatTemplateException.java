package ai.lorakit.models.data;

/** A chat template that is missing, fails to render, or refuses a conversation (raise_exception). */
public class ChatTemplateException extends RuntimeException {
    public ChatTemplateException(String message) {
        super(message);
    }
}
