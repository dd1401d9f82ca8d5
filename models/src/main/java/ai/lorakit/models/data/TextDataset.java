package ai.lorakit.models.data;

import ai.lorakit.models.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * Tokenised documents joined into one stream of N ids: {@code doc0 EOT doc1 EOT ... docD-1}, with the
 * tokenizer's end-of-text id between documents (none if the tokenizer has no such id). Immutable.
 *
 * <p>{@link #split} divides by document, never inside one, so no text is in both training and validation.
 * {@link #sampler} draws random training windows, {@link #sequential} walks validation windows in order.
 */
public final class TextDataset {

    private final String name;          // for messages: the path, "train", "validation", ...
    private final List<Document> docs;  // [D]
    private final List<int[]> docIds;   // [D] token ids of each document
    private final int[] tokens;         // [N] the joined stream
    private final int endOfText;        // -1 if none

    private TextDataset(String name, List<Document> docs, List<int[]> docIds, int endOfText) {
        this.name = name;
        this.docs = List.copyOf(docs);
        this.docIds = List.copyOf(docIds);
        this.endOfText = endOfText;
        long n = 0;
        for (int[] ids : docIds) {
            n += ids.length;
        }
        n += endOfText >= 0 ? docIds.size() - 1 : 0;
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("dataset '" + name + "' has " + n + " tokens; at most "
                    + (Integer.MAX_VALUE - 8) + " fit in one stream");
        }
        if (n == 0) {
            throw new IllegalArgumentException("dataset '" + name + "' is empty: no documents with text");
        }
        int[] t = new int[(int) n];
        int at = 0;
        for (int d = 0; d < docIds.size(); d++) {
            if (d > 0 && endOfText >= 0) {
                t[at++] = endOfText;
            }
            System.arraycopy(docIds.get(d), 0, t, at, docIds.get(d).length);
            at += docIds.get(d).length;
        }
        this.tokens = t;
    }

    /** Reads a file or folder with {@link DocumentReader} and tokenises it; an empty dataset is an error. */
    public static TextDataset load(Path path, Tokenizer tokenizer) throws IOException {
        List<Document> docs = DocumentReader.read(path);
        if (docs.isEmpty()) {
            throw new IllegalArgumentException("dataset " + path + " is empty: no file in it has any text");
        }
        return of(path.toString(), docs, tokenizer);
    }

    /** Tokenises {@code docs} (in parallel; order kept); an empty list is an error naming {@code name}. */
    public static TextDataset of(String name, List<Document> docs, Tokenizer tokenizer) {
        if (docs.isEmpty()) {
            throw new IllegalArgumentException("dataset '" + name + "' is empty: no documents");
        }
        List<int[]> ids = docs.parallelStream().map(d -> tokenizer.encode(d.text())).toList();
        return new TextDataset(name, docs, ids, tokenizer.endOfTextId().orElse(-1));
    }

    /** Training and validation parts of a {@link #split}. */
    public record Split(TextDataset train, TextDataset validation) {
    }

    /**
     * Splits by document: the documents are shuffled with {@code SplittableRandom(seed)} (Fisher–Yates) and the
     * first round(D·fraction) of them (at least one) become validation; each part keeps the original order.
     * The same documents, fraction and seed always give the same split.
     *
     * @param validationFraction share of documents for validation, in (0, 1)
     */
    public Split split(double validationFraction, long seed) {
        if (!(validationFraction > 0 && validationFraction < 1)) {
            throw new IllegalArgumentException("validationFraction must be in (0, 1), got " + validationFraction);
        }
        int d = docs.size();
        if (d < 2) {
            throw new IllegalArgumentException("dataset '" + name + "' has " + d
                    + " document; a split by document needs at least 2"
                    + " (add files, or use JSONL with one text per line)");
        }
        int v = (int) Math.min(d - 1, Math.max(1, Math.round(d * validationFraction)));
        int[] order = new int[d];
        Arrays.setAll(order, i -> i);
        SplittableRandom rng = new SplittableRandom(seed);
        for (int i = d - 1; i > 0; i--) {
            int j = rng.nextInt(i + 1);
            int tmp = order[i];
            order[i] = order[j];
            order[j] = tmp;
        }
        boolean[] isVal = new boolean[d];
        for (int i = 0; i < v; i++) {
            isVal[order[i]] = true;
        }
        return new Split(subset("train", isVal, false), subset("validation", isVal, true));
    }

    private TextDataset subset(String part, boolean[] isVal, boolean want) {
        List<Document> ds = new ArrayList<>();
        List<int[]> ids = new ArrayList<>();
        for (int i = 0; i < docs.size(); i++) {
            if (isVal[i] == want) {
                ds.add(docs.get(i));
                ids.add(docIds.get(i));
            }
        }
        return new TextDataset(name + " (" + part + ")", ds, ids, endOfText);
    }

    /** Random training windows of T+1 tokens, B per batch, from {@code seed}. */
    public WindowSampler sampler(int seqLen, int batchSize, long seed) {
        return new WindowSampler(name, tokens, seqLen, batchSize, seed);
    }

    /** Consecutive windows of T+1 tokens in order (validation). */
    public SequentialBatches sequential(int seqLen, int batchSize) {
        return new SequentialBatches(name, tokens, seqLen, batchSize);
    }

    public String name() {
        return name;
    }

    public int documentCount() {
        return docs.size();
    }

    public List<Document> documents() {
        return docs;
    }

    /** N: tokens in the stream, separators included. */
    public int tokenCount() {
        return tokens.length;
    }

    /** A copy of the stream [N]. */
    public int[] tokens() {
        return tokens.clone();
    }

    /** A copy of document {@code d}'s ids. */
    public int[] documentTokens(int d) {
        return docIds.get(d).clone();
    }

    @Override
    public String toString() {
        return "TextDataset[" + name + ": " + docs.size() + " documents, " + tokens.length + " tokens]";
    }
}
