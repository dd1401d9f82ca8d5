package ai.lorakit.models.decoder;

import java.util.ArrayList;
import java.util.List;
import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * Which linear modules an adapter attaches to, from a config's target_modules list. PEFT accepts a list of names
 * (a module matches when its full dotted name equals an entry or ends with "." + entry), a single string that is a
 * regex the full name must match ({@code re.fullmatch}), and the string "all-linear" (every Linear/Conv1D except
 * the output head). lorakit's configs hold a list, so each entry is read by this rule:
 * <ul>
 *   <li>{@code "all-linear"}: every linear module of the model (GPT-2: c_attn, attn.c_proj, c_fc, mlp.c_proj of
 *       every block; the tied lm_head is not a linear module here);</li>
 *   <li>an entry starting with {@code "re:"}: the rest is a Java regex that must match the whole name;</li>
 *   <li>an entry containing a regex metacharacter other than '.' (one of {@code \ ^ $ | ? * + ( ) [ ] { }}): the
 *       entry itself is such a regex (module names never contain these characters, so no name is misread);</li>
 *   <li>anything else: PEFT's list rule, exact name or dotted suffix ({@code "c_attn"}, {@code "attn.c_attn"},
 *       {@code "transformer.h.0.attn.c_attn"}).</li>
 * </ul>
 * A module is selected when any entry matches it. {@link #select} is strict: an entry that matches no module is an
 * error listing the available names (PEFT only fails when nothing at all matches; lorakit also catches a typo in
 * one entry of several).
 */
public final class TargetModules {

    public static final String ALL_LINEAR = "all-linear";
    public static final String REGEX_PREFIX = "re:";

    private static final Pattern META = Pattern.compile("[\\\\^$|?*+()\\[\\]{}]");

    private sealed interface Rule permits AllLinear, Regex, Name {
        boolean matches(String module);
    }

    private record AllLinear() implements Rule {
        public boolean matches(String module) {
            return true;
        }
    }

    private record Regex(Pattern pattern) implements Rule {
        public boolean matches(String module) {
            return pattern.matcher(module).matches();
        }
    }

    private record Name(String name) implements Rule {
        public boolean matches(String module) {
            return module.equals(name) || module.endsWith("." + name);
        }
    }

    private final List<String> patterns;
    private final List<Rule> rules;

    private TargetModules(List<String> patterns, List<Rule> rules) {
        this.patterns = patterns;
        this.rules = rules;
    }

    /**
     * Parses target_modules entries (rule in the class comment).
     *
     * @throws IllegalArgumentException an empty list, a null or empty entry, or an invalid regex (named)
     */
    public static TargetModules parse(List<String> targetModules) {
        if (targetModules == null || targetModules.isEmpty()) {
            throw new IllegalArgumentException("target_modules must name at least one module, got " + targetModules);
        }
        List<Rule> rules = new ArrayList<>();
        for (String t : targetModules) {
            if (t == null || t.isEmpty()) {
                throw new IllegalArgumentException("target_modules entries must be non-empty, got '" + t + "' in "
                        + targetModules);
            }
            rules.add(rule(t));
        }
        return new TargetModules(List.copyOf(targetModules), List.copyOf(rules));
    }

    private static Rule rule(String t) {
        if (t.equals(ALL_LINEAR)) {
            return new AllLinear();
        }
        boolean prefixed = t.startsWith(REGEX_PREFIX);
        if (prefixed || META.matcher(t).find()) {
            String re = prefixed ? t.substring(REGEX_PREFIX.length()) : t;
            try {
                return new Regex(Pattern.compile(re));
            } catch (PatternSyntaxException e) {
                throw new IllegalArgumentException("target_modules entry '" + t + "' is not a valid regex: "
                        + e.getDescription() + " near index " + e.getIndex());
            }
        }
        return new Name(t);
    }

    /** The entries as given. */
    public List<String> patterns() {
        return patterns;
    }

    /** Whether any entry selects the module with this full dotted name. */
    public boolean matches(String module) {
        for (Rule r : rules) {
            if (r.matches(module)) {
                return true;
            }
        }
        return false;
    }

    /**
     * The names among {@code modules} (a model's linear modules, in model order) that some entry selects, in
     * that order.
     *
     * @throws IllegalArgumentException an entry that selects none of them; the message lists the available names
     */
    public List<String> select(List<String> modules) {
        List<String> none = new ArrayList<>();
        for (int i = 0; i < rules.size(); i++) {
            Rule r = rules.get(i);
            if (modules.stream().noneMatch(r::matches)) {
                none.add(patterns.get(i));
            }
        }
        if (!none.isEmpty()) {
            throw new IllegalArgumentException("target_modules " + none + " match no module of the model (rule: exact"
                    + " name or dotted suffix; \"re:...\" or an entry with regex metacharacters is a full-match regex;"
                    + " \"all-linear\"). Available modules: " + modules);
        }
        return modules.stream().filter(this::matches).toList();
    }

    @Override
    public String toString() {
        return "TargetModules" + patterns;
    }
}
