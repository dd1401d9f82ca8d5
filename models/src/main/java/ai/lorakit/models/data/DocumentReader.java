package ai.lorakit.models.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.nio.charset.CharacterCodingException;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;

/**
 * Reads documents from a file or a folder.
 * <ul>
 *   <li>a {@code .jsonl} file: one JSON object per line with a string field {@code "text"} (other fields are
 *       ignored, blank lines skipped); each line is a document named {@code file:line};</li>
 *   <li>any other file: UTF-8 plain text, the whole file one document (a leading byte-order mark is dropped);</li>
 *   <li>a folder: every non-hidden regular file below it, recursively, in the order of their relative paths
 *       ('/'-separated, so the order is the same on every platform), each read as above.</li>
 * </ul>
 * Empty texts are skipped. Text that is not valid UTF-8 is an IOException naming the file, as is a bad JSONL
 * line (with its line number).
 */
public final class DocumentReader {

    private static final ObjectMapper JSON = new ObjectMapper();

    private DocumentReader() {
    }

    /** The documents at {@code path} (a file or a folder); an empty list if every file is empty. */
    public static List<Document> read(Path path) throws IOException {
        if (!Files.exists(path)) {
            throw new NoSuchFileException(path.toString(), null, "data file or folder does not exist");
        }
        if (!Files.isDirectory(path)) {
            return readFile(path, path.getFileName().toString());
        }
        List<Path> files;
        try (Stream<Path> walk = Files.walk(path)) {
            files = walk.filter(Files::isRegularFile)
                    .filter(p -> !isHidden(path.relativize(p)))
                    .sorted(Comparator.comparing(p -> slashed(path.relativize(p))))
                    .toList();
        }
        List<Document> docs = new ArrayList<>();
        for (Path f : files) {
            docs.addAll(readFile(f, slashed(path.relativize(f))));
        }
        return docs;
    }

    private static List<Document> readFile(Path file, String name) throws IOException {
        boolean jsonl = name.toLowerCase(java.util.Locale.ROOT).endsWith(".jsonl");
        return jsonl ? readJsonl(file, name) : readText(file, name);
    }

    private static List<Document> readText(Path file, String name) throws IOException {
        String text;
        try {
            text = StandardCharsets.UTF_8.newDecoder()
                    .onMalformedInput(CodingErrorAction.REPORT)
                    .onUnmappableCharacter(CodingErrorAction.REPORT)
                    .decode(java.nio.ByteBuffer.wrap(Files.readAllBytes(file)))
                    .toString();
        } catch (CharacterCodingException e) {
            throw new IOException(file + " is not UTF-8 text (" + e.getMessage() + ")", e);
        }
        text = stripBom(text);
        return text.isEmpty() ? List.of() : List.of(new Document(name, text));
    }

    private static List<Document> readJsonl(Path file, String name) throws IOException {
        List<Document> docs = new ArrayList<>();
        var decoder = StandardCharsets.UTF_8.newDecoder()
                .onMalformedInput(CodingErrorAction.REPORT)
                .onUnmappableCharacter(CodingErrorAction.REPORT);
        try (BufferedReader in = new BufferedReader(new InputStreamReader(Files.newInputStream(file), decoder))) {
            int lineNo = 0;
            for (String line; ; ) {
                try {
                    line = in.readLine();
                } catch (CharacterCodingException e) {
                    throw new IOException(file + ":" + (lineNo + 1) + ": not UTF-8 text (" + e.getMessage() + ")", e);
                }
                if (line == null) {
                    break;
                }
                lineNo++;
                if (lineNo == 1) {
                    line = stripBom(line);
                }
                if (line.isBlank()) {
                    continue;
                }
                String text = textField(line, file, lineNo);
                if (!text.isEmpty()) {
                    docs.add(new Document(name + ":" + lineNo, text));
                }
            }
        }
        return docs;
    }

    private static String textField(String line, Path file, int lineNo) throws IOException {
        JsonNode node;
        try {
            node = JSON.readTree(line);
        } catch (JsonProcessingException e) {
            throw new IOException(file + ":" + lineNo + ": invalid JSON (" + e.getOriginalMessage() + ")", e);
        }
        if (node == null || !node.isObject()) {
            throw new IOException(file + ":" + lineNo + ": expected a JSON object like {\"text\": \"...\"}");
        }
        JsonNode text = node.get("text");
        if (text == null || !text.isTextual()) {
            throw new IOException(file + ":" + lineNo + ": expected a string field \"text\""
                    + (text == null ? " (missing)" : " (found " + text.getNodeType().name().toLowerCase() + ")"));
        }
        return text.asText();
    }

    private static String stripBom(String s) {
        return s.startsWith("\uFEFF") ? s.substring(1) : s;
    }

    private static boolean isHidden(Path relative) {
        for (Path part : relative) {
            if (part.toString().startsWith(".")) {
                return true;
            }
        }
        return false;
    }

    private static String slashed(Path relative) {
        StringBuilder sb = new StringBuilder();
        for (Path part : relative) {
            if (!sb.isEmpty()) {
                sb.append('/');
            }
            sb.append(part);
        }
        return sb.toString();
    }
}
