package ai.lorakit.models.train;

import ai.lorakit.adapters.io.AtomicFiles;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.PropertyNamingStrategies;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.json.JsonMapper;

import java.io.CharConversionException;
import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.concurrent.ThreadLocalRandom;
import java.util.stream.Stream;

/**
 * The checkpoint folder of a run, {@code <out>/checkpoint}, replaced as a whole so that a good checkpoint
 * survives any failure:
 * <ol>
 *   <li>the new one is built in {@code <out>/checkpoint.tmp-<random>} (each file written and fsynced through
 *       {@link AtomicFiles}; {@code trainer.json}, the completion marker, last; then the folder is fsynced);</li>
 *   <li>the old {@code checkpoint} is renamed to {@code checkpoint.prev}, the new folder renamed to
 *       {@code checkpoint}, {@code <out>} fsynced, and {@code checkpoint.prev} deleted.</li>
 * </ol>
 * POSIX cannot rename a folder over a non-empty one, hence the two renames; a crash between them leaves
 * {@code checkpoint.prev}, which {@link #locate} falls back to (and the next write restores). Leftover temp
 * folders are deleted by the next write.
 *
 * <p>Contents: {@value #STATE} ({@link TrainerState}), {@value #PARAMS} (trainable weights and every adapter
 * tensor, fp32, by parameter name), {@value #OPTIMIZER} (AdamW moments {@code <name>.exp_avg},
 * {@code <name>.exp_avg_sq}), {@value #HOOKS} (the training hook's tensors: AdaLoRA's importance EMAs and masks,
 * Delta-LoRA's snapshots and changed W; only when the hook has state) and, for adapter runs, {@value #ADAPTER}/ in
 * PEFT format ({@code Trainer#saveAdapter}: AdaLoRA pruned by its rank_pattern, Delta-LoRA as its rank-2r export).
 */
public final class Checkpoint {

    public static final String DIR = "checkpoint";
    public static final String PREV = "checkpoint.prev";
    public static final String TMP_PREFIX = "checkpoint.tmp-";
    public static final String STATE = "trainer.json";
    public static final String PARAMS = "params.safetensors";
    public static final String OPTIMIZER = "optimizer.safetensors";
    public static final String ADAPTER = "adapter";
    /** The training hook's state ({@code TrainingHook.state()}), when it has any. */
    public static final String HOOKS = "hooks.safetensors";

    static final JsonMapper JSON = JsonMapper.builder()
            .propertyNamingStrategy(PropertyNamingStrategies.SNAKE_CASE)
            .enable(SerializationFeature.INDENT_OUTPUT)
            .disable(DeserializationFeature.FAIL_ON_UNKNOWN_PROPERTIES)
            .build();

    /** Writes the files of a checkpoint into a (temporary) folder. */
    @FunctionalInterface
    public interface Body {
        void write(Path dir) throws IOException;
    }

    private Checkpoint() {
    }

    /**
     * Builds a checkpoint with {@code body} and puts it in place of {@code <out>/checkpoint}. On any failure the
     * temp folder is removed and the previous checkpoint is untouched.
     *
     * @return {@code <out>/checkpoint}
     */
    public static Path write(Path outDir, Body body) throws IOException {
        Files.createDirectories(outDir);
        recover(outDir);
        Path tmp = outDir.resolve(TMP_PREFIX + Long.toHexString(ThreadLocalRandom.current().nextLong()));
        Files.createDirectory(tmp);
        try {
            body.write(tmp);
            if (!Files.isRegularFile(tmp.resolve(STATE))) {
                throw new IllegalStateException("checkpoint body did not write " + STATE);
            }
            fsync(tmp);
        } catch (IOException | RuntimeException | Error e) {
            deleteTree(tmp);
            throw e;
        }
        Path cur = outDir.resolve(DIR);
        Path prev = outDir.resolve(PREV);
        if (Files.exists(cur)) {
            deleteTree(prev);
            Files.move(cur, prev, StandardCopyOption.ATOMIC_MOVE);
        }
        Files.move(tmp, cur, StandardCopyOption.ATOMIC_MOVE);
        fsync(outDir);
        deleteTree(prev);
        return cur;
    }

    /** The complete checkpoint of {@code outDir} ({@code checkpoint}, else {@code checkpoint.prev}), or null. */
    public static Path locate(Path outDir) {
        for (String name : new String[]{DIR, PREV}) {
            Path p = outDir.resolve(name);
            if (Files.isRegularFile(p.resolve(STATE))) {
                return p;
            }
        }
        return null;
    }

    /** Reads {@code dir/trainer.json}. */
    public static TrainerState readState(Path dir) throws IOException {
        Path f = dir.resolve(STATE);
        try {
            TrainerState s = JSON.readValue(Files.readAllBytes(f), TrainerState.class);
            if (!TrainerState.FORMAT.equals(s.format()) || s.version() != TrainerState.VERSION) {
                throw new IOException(f + ": not a lorakit checkpoint of version " + TrainerState.VERSION
                        + " (format " + s.format() + ", version " + s.version() + ")");
            }
            return s;
        } catch (NoSuchFileException e) {
            throw new NoSuchFileException(f.toString(), null, "no checkpoint state (" + STATE + ") here");
        } catch (JsonProcessingException e) {
            throw new IOException(f + ": invalid checkpoint state: " + e.getOriginalMessage(), e);
        } catch (CharConversionException e) {   // Jackson guessed UTF-16/32 from the first bytes (as ConfigJson)
            throw new IOException(f + ": invalid checkpoint state: not UTF-8 text (" + e.getMessage() + ")", e);
        }
    }

    /** Writes {@code dir/trainer.json} atomically. */
    static void writeState(Path dir, TrainerState s) throws IOException {
        AtomicFiles.write(dir.resolve(STATE), JSON.writeValueAsString(s).getBytes(StandardCharsets.UTF_8));
    }

    /** Restores {@code checkpoint} from {@code checkpoint.prev} after a crash between the renames; drops temps. */
    private static void recover(Path outDir) throws IOException {
        Path cur = outDir.resolve(DIR);
        Path prev = outDir.resolve(PREV);
        if (!Files.exists(cur) && Files.isRegularFile(prev.resolve(STATE))) {
            Files.move(prev, cur, StandardCopyOption.ATOMIC_MOVE);
        }
        List<Path> stale = new ArrayList<>();
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(outDir, TMP_PREFIX + "*")) {
            ds.forEach(stale::add);
        }
        for (Path p : stale) {
            deleteTree(p);
        }
    }

    static void deleteTree(Path p) throws IOException {
        if (!Files.exists(p)) {
            return;
        }
        try (Stream<Path> s = Files.walk(p)) {
            for (Path q : s.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(q);
            }
        }
    }

    /** fsync of a folder (makes renames inside it durable on Linux; a no-op where unsupported). */
    static void fsync(Path dir) {
        try (FileChannel ch = FileChannel.open(dir, StandardOpenOption.READ)) {
            ch.force(true);
        } catch (IOException | UnsupportedOperationException ignored) {
            // not supported on this platform or file system
        }
    }
}
