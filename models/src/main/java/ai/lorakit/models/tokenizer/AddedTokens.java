package ai.lorakit.models.tokenizer;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The {@code added_tokens} of tokenizer.json (special tokens such as {@code <|begin_of_text|>} and added plain
 * ones such as Qwen's {@code <think>}) and how they are cut out of the text before normalisation.
 *
 * <p>Hugging Face's behaviour, which the JS reference shares: scanning left to right, at each position the longest
 * added token that starts there is taken (leftmost-longest); the text between matches is ordinary text. Special
 * and non-special added tokens are matched alike (HF's default {@code split_special_tokens=False}), so the string
 * {@code "<|endoftext|>"} inside plain text becomes the single special id. {@code lstrip}/{@code rstrip} tokens
 * eat the whitespace of the neighbouring text on that side. Tokens flagged {@code normalized: true} are matched
 * on the raw text too (the JS reference does so; HF's Rust would match them after normalisation; none of the
 * Llama 3 / Llama 2 / Qwen3 files has one).
 */
final class AddedTokens {

    /** One added token. */
    record Token(String content, int id, boolean special, boolean lstrip, boolean rstrip) {
    }

    /** A piece of the input: an added token, or ordinary text ({@code token == null}). */
    record Section(String text, Token token) {
    }

    private final Map<Character, List<Token>> byFirstChar = new HashMap<>(); // longest first

    AddedTokens(List<Token> tokens) {
        for (Token t : tokens) {
            if (t.content().isEmpty()) {
                throw new IllegalArgumentException("added token id " + t.id() + " has empty content");
            }
            byFirstChar.computeIfAbsent(t.content().charAt(0), k -> new ArrayList<>()).add(t);
        }
        byFirstChar.values().forEach(l -> l.sort(Comparator.comparingInt((Token t) -> -t.content().length())));
    }

    /** {@code text} cut into sections (some may be empty after stripping; their indices still count). */
    List<Section> split(String text) {
        List<Section> out = new ArrayList<>();
        int start = 0;
        int i = 0;
        int n = text.length();
        while (i < n) {
            Token match = longestAt(text, i);
            if (match == null) {
                i++;
                continue;
            }
            if (i > start) {
                out.add(new Section(text.substring(start, i), null));
            }
            out.add(new Section(match.content(), match));
            i += match.content().length();
            start = i;
        }
        if (start < n) {
            out.add(new Section(text.substring(start), null));
        }
        strip(out);
        return out;
    }

    private Token longestAt(String text, int i) {
        List<Token> candidates = byFirstChar.get(text.charAt(i));
        if (candidates != null) {
            for (Token t : candidates) {
                if (text.startsWith(t.content(), i)) {
                    return t;
                }
            }
        }
        return null;
    }

    /** lstrip/rstrip: trims JS whitespace off the ordinary text beside such a token. */
    private static void strip(List<Section> sections) {
        for (int i = 0; i < sections.size(); i++) {
            Token t = sections.get(i).token();
            if (t == null) {
                continue;
            }
            if (t.lstrip() && i > 0 && sections.get(i - 1).token() == null) {
                String s = sections.get(i - 1).text();
                int end = s.length();
                while (end > 0 && HfRegex.isJsSpace(s.charAt(end - 1))) {
                    end--;
                }
                sections.set(i - 1, new Section(s.substring(0, end), null));
            }
            if (t.rstrip() && i + 1 < sections.size() && sections.get(i + 1).token() == null) {
                String s = sections.get(i + 1).text();
                int begin = 0;
                while (begin < s.length() && HfRegex.isJsSpace(s.charAt(begin))) {
                    begin++;
                }
                sections.set(i + 1, new Section(s.substring(begin), null));
            }
        }
    }
}
