package ai.lorakit.adapters;

import java.util.List;

/**
 * A parametrisation's configuration (VARIANTS.md sections 1, 4, 5, 6). Immutable, validated on construction
 * (a bad value names the field and the value); sealed so every switch over variants is exhaustive.
 */
public sealed interface AdapterConfig permits LoraConfig, VeraConfig, AdaLoraConfig {

    /** Module-name patterns this adapter attaches to (PEFT's target_modules: exact name or dotted suffix). */
    List<String> targetModules();

    /** PEFT's peft_type string: LORA (also DoRA), VERA, ADALORA. */
    String peftType();

    /** Dropout probability on the adapter input. */
    float dropout();

    /** Whether module {@code name} is targeted: equal to a pattern or ending with "." + pattern (PEFT's list rule). */
    default boolean targets(String name) {
        for (String t : targetModules()) {
            if (name.equals(t) || name.endsWith("." + t)) {
                return true;
            }
        }
        return false;
    }

    /** target_modules as an immutable list: at least one name, no null or empty entry. */
    static List<String> targetList(List<String> targetModules) {
        require(targetModules != null && !targetModules.isEmpty(), "target_modules", targetModules,
                "must name at least one module");
        for (String t : targetModules) {
            require(t != null && !t.isEmpty(), "target_modules", targetModules, "must not contain a null or empty name");
        }
        return List.copyOf(targetModules);
    }

    static void require(boolean ok, String field, Object value, String rule) {
        if (!ok) {
            throw new IllegalArgumentException(field + " " + rule + ", got " + value);
        }
    }
}
