package ai.lorakit.models.tokenizer;

import java.util.regex.Pattern;
import java.util.regex.PatternSyntaxException;

/**
 * The regexes of {@code tokenizer.json} (written for Oniguruma, which Hugging Face's Rust tokenizers run) compiled
 * to {@link java.util.regex} with the meaning they have in the JS reference (ECMAScript with the {@code u} flag),
 * which is what our ids are checked against.
 *
 * <p>The translation, character by character, outside and inside {@code [...]}:
 * <ul>
 *   <li>{@code \s} becomes JS's whitespace set {@link #JS_SPACE} (it has U+FEFF and lacks U+0085; Java's Unicode
 *       {@code \s} is the reverse, and Oniguruma's matches Java's: the one place where JS and HF's Rust differ);
 *       {@code \S} becomes its complement (refused inside a class, where Java has no clean equivalent);</li>
 *   <li>{@code .} becomes "anything but \n, \r, U+2028, U+2029" (Java's {@code .} also stops at U+0085);</li>
 *   <li>inside a class, {@code [} and {@code &} are literal, as in JS (Java would read a nested class or an
 *       intersection);</li>
 *   <li>{@code \p{X}} is a general category in both; script or binary properties ({@code \p{Script=Han}}) are
 *       refused.</li>
 * </ul>
 * Everything else keeps its meaning: {@code \p{L}}, {@code \p{N}}, {@code \d} and {@code \w} (ASCII in both
 * without Java's UNICODE_CHARACTER_CLASS, which is deliberately off because it also turns on Unicode case
 * folding), lookahead, counted repetition, and {@code (?i:...)}, whose ASCII-only case folding in Java matches
 * the {@code [sS]}-style rewrite the JS reference applies to the contraction group of Llama 3 and Qwen.
 */
final class HfRegex {

    /** JS {@code \s} under the u flag: the WhiteSpace and LineTerminator code points, as a class body. */
    static final String JS_SPACE = "\\t\\n\\x0B\\f\\r \\u00A0\\u1680\\u2000-\\u200A\\u2028\\u2029\\u202F\\u205F"
            + "\\u3000\\uFEFF";

    private HfRegex() {
    }

    /** Whether {@code c} is JS whitespace ({@code String.prototype.trim}'s set, the same as {@link #JS_SPACE}). */
    static boolean isJsSpace(char c) {
        return (c >= '\t' && c <= '\r') || c == ' ' || c == '\u00A0' || c == '\u1680' || (c >= '\u2000' && c <= '\u200A')
                || c == '\u2028' || c == '\u2029' || c == '\u202F' || c == '\u205F' || c == '\u3000' || c == '\uFEFF';
    }

    /** Compiles {@code regex}; a construct we cannot carry over is an IllegalArgumentException naming it. */
    static Pattern compile(String regex) {
        try {
            return Pattern.compile(translate(regex));
        } catch (PatternSyntaxException e) {
            throw new IllegalArgumentException("regex " + quote(regex) + " does not compile in Java: "
                    + e.getDescription(), e);
        }
    }

    /** The Java source of {@code regex} (see the class comment). */
    static String translate(String regex) {
        StringBuilder out = new StringBuilder(regex.length() + 64);
        boolean inClass = false;
        int n = regex.length();
        for (int i = 0; i < n; i++) {
            char c = regex.charAt(i);
            if (c == '\\') {
                if (i + 1 >= n) {
                    throw new IllegalArgumentException("regex " + quote(regex) + " ends with a lone backslash");
                }
                char e = regex.charAt(++i);
                switch (e) {
                    case 's' -> out.append(inClass ? JS_SPACE : "[" + JS_SPACE + "]");
                    case 'S' -> {
                        if (inClass) {
                            throw new IllegalArgumentException("regex " + quote(regex) + ": \\S inside [...] is not"
                                    + " supported");
                        }
                        out.append("[^").append(JS_SPACE).append(']');
                    }
                    case 'p', 'P' -> {
                        int close = regex.indexOf('}', i);
                        if (i + 1 >= n || regex.charAt(i + 1) != '{' || close < 0) {
                            throw new IllegalArgumentException("regex " + quote(regex) + ": \\" + e
                                    + " needs a {Category}");
                        }
                        String name = regex.substring(i + 2, close);
                        if (!name.matches("[A-Z][a-z]?")) {
                            throw new IllegalArgumentException("regex " + quote(regex) + ": property \\" + e + "{"
                                    + name + "} is not supported (only general categories such as L, N, Lu)");
                        }
                        out.append('\\').append(e).append('{').append(name).append('}');
                        i = close;
                    }
                    default -> out.append('\\').append(e);
                }
            } else if (inClass) {
                switch (c) {
                    case ']' -> {
                        inClass = false;
                        out.append(c);
                    }
                    case '[', '&' -> out.append('\\').append(c);
                    default -> out.append(c);
                }
            } else if (c == '[') {
                inClass = true;
                out.append(c);
                if (i + 1 < n && regex.charAt(i + 1) == '^') {
                    out.append('^');
                    i++;
                }
            } else if (c == '.') {
                out.append("[^\\n\\r\\u2028\\u2029]");
            } else {
                out.append(c);
            }
        }
        if (inClass) {
            throw new IllegalArgumentException("regex " + quote(regex) + " has an unclosed [");
        }
        return out.toString();
    }

    private static String quote(String s) {
        return "'" + s + "'";
    }
}
