package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves DocumentReader reads plain text and JSONL files and folders (recursive, sorted, hidden files skipped,
 * UTF-8 with BOM dropped) and that bad input names the file (and JSONL line).
 */
class DocumentReaderTest {

    @Test
    void readsFolderRecursivelyInSortedOrder(@TempDir Path dir) throws IOException {
        Files.createDirectories(dir.resolve("a/deep"));
        Files.createDirectories(dir.resolve(".git"));
        Files.writeString(dir.resolve("b.txt"), "second file\n");
        Files.writeString(dir.resolve("a/z.txt"), "\uFEFFzed é 😀");
        Files.writeString(dir.resolve("a/deep/x.md"), "deep");
        Files.writeString(dir.resolve("a/y.jsonl"),
                "{\"text\": \"one\", \"id\": 7}\n\n{\"text\": \"two\\nlines\"}\n{\"text\": \"\"}\n");
        Files.writeString(dir.resolve("empty.txt"), "");
        Files.writeString(dir.resolve(".hidden.txt"), "hidden");
        Files.writeString(dir.resolve(".git/config"), "hidden too");

        List<Document> docs = DocumentReader.read(dir);
        assertEquals(List.of("a/deep/x.md", "a/y.jsonl:1", "a/y.jsonl:3", "a/z.txt", "b.txt"),
                docs.stream().map(Document::name).toList());
        assertEquals(List.of("deep", "one", "two\nlines", "zed é 😀", "second file\n"),
                docs.stream().map(Document::text).toList());
    }

    @Test
    void readsSingleFiles(@TempDir Path dir) throws IOException {
        Path txt = Files.writeString(dir.resolve("t.txt"), "hello");
        assertEquals(List.of(new Document("t.txt", "hello")), DocumentReader.read(txt));
        Path jsonl = Files.writeString(dir.resolve("d.JSONL"), "{\"text\":\"x\"}");
        assertEquals(List.of(new Document("d.JSONL:1", "x")), DocumentReader.read(jsonl));
    }

    @Test
    void badJsonlLinesNameFileAndLine(@TempDir Path dir) throws IOException {
        Path bad = Files.writeString(dir.resolve("bad.jsonl"), "{\"text\": \"ok\"}\n{\"text\": \"unterminated\n");
        IOException e = assertThrows(IOException.class, () -> DocumentReader.read(bad));
        assertTrue(e.getMessage().contains("bad.jsonl:2") && e.getMessage().contains("invalid JSON"), e.getMessage());

        Path noText = Files.writeString(dir.resolve("notext.jsonl"), "{\"text\": \"ok\"}\n{\"body\": \"x\"}\n");
        e = assertThrows(IOException.class, () -> DocumentReader.read(noText));
        assertTrue(e.getMessage().contains("notext.jsonl:2") && e.getMessage().contains("\"text\""), e.getMessage());

        Path number = Files.writeString(dir.resolve("num.jsonl"), "{\"text\": 5}\n");
        e = assertThrows(IOException.class, () -> DocumentReader.read(number));
        assertTrue(e.getMessage().contains("num.jsonl:1") && e.getMessage().contains("number"), e.getMessage());

        Path array = Files.writeString(dir.resolve("arr.jsonl"), "[1, 2]\n");
        e = assertThrows(IOException.class, () -> DocumentReader.read(array));
        assertTrue(e.getMessage().contains("arr.jsonl:1") && e.getMessage().contains("object"), e.getMessage());
    }

    @Test
    void missingPathAndBinaryFileAreNamed(@TempDir Path dir) throws IOException {
        NoSuchFileException missing = assertThrows(NoSuchFileException.class,
                () -> DocumentReader.read(dir.resolve("nope")));
        assertTrue(missing.getMessage().contains("nope"), missing.getMessage());
        Path bin = Files.write(dir.resolve("blob.bin"), new byte[] {(byte) 0xFF, (byte) 0xFE, 0, 1});
        IOException e = assertThrows(IOException.class, () -> DocumentReader.read(dir));
        assertTrue(e.getMessage().contains("blob.bin") && e.getMessage().contains("UTF-8"), e.getMessage());
    }
}
