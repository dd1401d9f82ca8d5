package ai.lorakit.models.train;

import ai.lorakit.adapters.io.AtomicFiles;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.BufferedWriter;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;

/**
 * {@code metrics.jsonl}: one JSON object per line ({@link StepMetrics#toJson}), flushed after each line so a
 * crashed run keeps what it logged. A resumed run first drops the lines after its checkpoint's step (they
 * belong to the interrupted segment and will be logged again), so the file reads as one uninterrupted run.
 */
public final class MetricsLog implements AutoCloseable {

    public static final String FILE = "metrics.jsonl";
    private static final JsonMapper JSON = new JsonMapper();

    private final BufferedWriter out;

    private MetricsLog(BufferedWriter out) {
        this.out = out;
    }

    /** A new, empty log in {@code dir} (an existing file is replaced). */
    public static MetricsLog create(Path dir) throws IOException {
        Files.createDirectories(dir);
        return new MetricsLog(Files.newBufferedWriter(dir.resolve(FILE), StandardCharsets.UTF_8,
                StandardOpenOption.CREATE, StandardOpenOption.TRUNCATE_EXISTING, StandardOpenOption.WRITE));
    }

    /** Keeps the lines with step &lt;= {@code step} (rewritten atomically) and appends after them. */
    public static MetricsLog resume(Path dir, int step) throws IOException {
        Path file = dir.resolve(FILE);
        if (Files.isRegularFile(file)) {
            StringBuilder kept = new StringBuilder();
            for (String line : Files.readAllLines(file, StandardCharsets.UTF_8)) {
                if (line.isBlank()) {
                    continue;
                }
                JsonNode n;
                try {
                    n = JSON.readTree(line);
                } catch (JsonProcessingException e) {
                    continue;   // a line cut short by a crash
                }
                if (n != null && n.has("step") && n.get("step").asInt() <= step) {
                    kept.append(line).append('\n');
                }
            }
            AtomicFiles.write(file, kept.toString().getBytes(StandardCharsets.UTF_8));
        }
        return new MetricsLog(Files.newBufferedWriter(file, StandardCharsets.UTF_8, StandardOpenOption.CREATE,
                StandardOpenOption.APPEND, StandardOpenOption.WRITE));
    }

    /** Appends one line and flushes. */
    public void write(StepMetrics m) {
        try {
            out.write(JSON.writeValueAsString(m.toJson()));
            out.write('\n');
            out.flush();
        } catch (IOException e) {
            throw new UncheckedIOException("cannot write " + FILE + ": " + e.getMessage(), e);
        }
    }

    /** Every line of {@code dir/metrics.jsonl}, parsed. */
    public static List<JsonNode> read(Path dir) throws IOException {
        List<JsonNode> out = new ArrayList<>();
        for (String line : Files.readAllLines(dir.resolve(FILE), StandardCharsets.UTF_8)) {
            if (!line.isBlank()) {
                out.add(JSON.readTree(line));
            }
        }
        return out;
    }

    @Override
    public void close() throws IOException {
        out.close();
    }
}
