package ai.lorakit.models.data;

import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves TextDataset joins documents with the end-of-text id, splits by whole documents deterministically from
 * the seed (disjoint, complete, sized by the fraction), and refuses empty data with a clear message.
 */
class TextDatasetTest {

    private static List<Document> docs(int n) {
        List<Document> d = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            d.add(new Document("doc" + i, "text number " + i));
        }
        return d;
    }

    @Test
    void joinsDocumentsWithEndOfText() {
        List<Document> d = List.of(new Document("a", "ab"), new Document("b", "c"));
        TextDataset withEot = TextDataset.of("t", d, new ByteTokenizer());
        assertArrayEquals(new int[] {97, 98, 256, 99}, withEot.tokens());
        assertEquals(4, withEot.tokenCount());
        assertEquals(2, withEot.documentCount());
        assertArrayEquals(new int[] {99}, withEot.documentTokens(1));
        TextDataset plain = TextDataset.of("t", d, ByteTokenizer.withoutEndOfText());
        assertArrayEquals(new int[] {97, 98, 99}, plain.tokens());
        withEot.tokens()[0] = -1;
        assertEquals(97, withEot.tokens()[0], "tokens() is a copy");
    }

    @Test
    void splitIsByDocumentDeterministicAndComplete() {
        TextDataset ds = TextDataset.of("t", docs(40), new ByteTokenizer());
        TextDataset.Split s = ds.split(0.1, 7);
        assertEquals(4, s.validation().documentCount());
        assertEquals(36, s.train().documentCount());
        Set<String> train = new HashSet<>(names(s.train()));
        Set<String> val = new HashSet<>(names(s.validation()));
        assertTrue(train.stream().noneMatch(val::contains), "no document in both parts");
        Set<String> all = new HashSet<>(train);
        all.addAll(val);
        assertEquals(new HashSet<>(names(ds)), all, "every document is in one part");

        assertEquals(names(s.validation()), names(ds.split(0.1, 7).validation()), "same seed, same split");
        assertNotEquals(names(s.validation()), names(ds.split(0.1, 8).validation()), "another seed, another split");
        List<String> v = names(s.validation());
        assertEquals(v.stream().sorted((a, b) -> Integer.compare(num(a), num(b))).toList(), v, "original order kept");
        int eots = (int) java.util.Arrays.stream(s.train().tokens()).filter(t -> t == 256).count();
        assertEquals(35, eots, "a separator between each pair of training documents");
    }

    @Test
    void splitKeepsAtLeastOneDocumentEachSide() {
        TextDataset ds = TextDataset.of("t", docs(3), new ByteTokenizer());
        assertEquals(1, ds.split(0.01, 1).validation().documentCount());
        assertEquals(1, ds.split(0.99, 1).train().documentCount());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> ds.split(0, 1));
        assertTrue(e.getMessage().contains("validationFraction"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> ds.split(1, 1));
        assertThrows(IllegalArgumentException.class, () -> ds.split(Double.NaN, 1));
        TextDataset one = TextDataset.of("single", docs(1), new ByteTokenizer());
        e = assertThrows(IllegalArgumentException.class, () -> one.split(0.5, 1));
        assertTrue(e.getMessage().contains("at least 2"), e.getMessage());
    }

    @Test
    void emptyDataIsRefused(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("empty.txt"), "");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> TextDataset.load(dir, new ByteTokenizer()));
        assertTrue(e.getMessage().contains("empty") && e.getMessage().contains(dir.toString()), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> TextDataset.of("none", List.of(), new ByteTokenizer()));
    }

    @Test
    void loadsFolder(@TempDir Path dir) throws IOException {
        Files.writeString(dir.resolve("1.txt"), "hi");
        Files.writeString(dir.resolve("2.jsonl"), "{\"text\":\"yo\"}\n");
        TextDataset ds = TextDataset.load(dir, new ByteTokenizer());
        assertArrayEquals(new int[] {'h', 'i', 256, 'y', 'o'}, ds.tokens());
        assertEquals("yo", ds.documents().get(1).text());
    }

    private static List<String> names(TextDataset ds) {
        return ds.documents().stream().map(Document::name).toList();
    }

    private static int num(String name) {
        return Integer.parseInt(name.substring(3));
    }
}
