package ai.lorakit.adapters.optim;

/** Validation helper: the message names the field, the rule and the value. */
final class Checks {
    private Checks() {
    }

    static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException(field + " " + rule + ", got " + value);
        }
    }
}
