package ai.lorakit.models.train;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the checkpoint folder's replacement protocol: a new checkpoint replaces the old one whole, a failing
 * write leaves the old one and no temp folder, a crash between the two renames (only checkpoint.prev left) is
 * found by locate and repaired by the next write, and trainer.json round-trips through Jackson.
 */
class CheckpointTest {

    private static TrainerState state(int step) {
        TrainConfig c = TrainConfig.defaults(10);
        return new TrainerState(TrainerState.FORMAT, TrainerState.VERSION, step, step, 1e-3f, 42L, 8L * step, step,
                Map.of("p", step), Map.of("m", 3L), Map.of("m", -7L), 1.5, c, true, Map.of("argv", java.util.List.of("--steps", "10")));
    }

    private static Path write(Path out, int step, String marker) throws IOException {
        return Checkpoint.write(out, dir -> {
            Files.writeString(dir.resolve("marker.txt"), marker);
            Checkpoint.writeState(dir, state(step));
        });
    }

    @Test
    void aNewCheckpointReplacesTheOldWholeAndStateRoundTrips(@TempDir Path out) throws IOException {
        assertNull(Checkpoint.locate(out));
        write(out, 1, "one");
        Path dir = write(out, 2, "two");
        assertEquals(out.resolve(Checkpoint.DIR), dir);
        assertEquals("two", Files.readString(dir.resolve("marker.txt")));
        TrainerState s = Checkpoint.readState(dir);
        assertEquals(state(2), s);
        assertFalse(Files.exists(out.resolve(Checkpoint.PREV)));
    }

    @Test
    void aFailedWriteKeepsTheOldCheckpointAndNoTempFolder(@TempDir Path out) throws IOException {
        write(out, 1, "one");
        assertThrows(IOException.class, () -> Checkpoint.write(out, dir -> {
            Files.writeString(dir.resolve("marker.txt"), "half");
            throw new IOException("no space left on device (simulated)");
        }));
        assertThrows(IllegalStateException.class, () -> Checkpoint.write(out, dir -> Files.writeString(dir.resolve("x"), "no state")));
        assertEquals("one", Files.readString(out.resolve(Checkpoint.DIR).resolve("marker.txt")));
        try (var s = Files.list(out)) {
            assertEquals(1, s.count());
        }
    }

    @Test
    void aCrashBetweenTheRenamesIsRecovered(@TempDir Path out) throws IOException {
        write(out, 1, "one");
        // the state after "checkpoint -> checkpoint.prev" and before "tmp -> checkpoint", plus a stale temp folder
        Files.move(out.resolve(Checkpoint.DIR), out.resolve(Checkpoint.PREV));
        Files.createDirectories(out.resolve(Checkpoint.TMP_PREFIX + "dead").resolve("x"));
        assertEquals(out.resolve(Checkpoint.PREV), Checkpoint.locate(out));
        assertEquals(1, Checkpoint.readState(Checkpoint.locate(out)).step());
        write(out, 2, "two");
        assertEquals(out.resolve(Checkpoint.DIR), Checkpoint.locate(out));
        assertEquals(2, Checkpoint.readState(out.resolve(Checkpoint.DIR)).step());
        try (var s = Files.list(out)) {
            assertTrue(s.allMatch(p -> p.getFileName().toString().equals(Checkpoint.DIR)));
        }
    }

    @Test
    void aForeignStateFileIsRefused(@TempDir Path out) throws IOException {
        Files.createDirectories(out);
        Files.writeString(out.resolve(Checkpoint.STATE), "{\"format\": \"something-else\", \"version\": 1}");
        IOException e = assertThrows(IOException.class, () -> Checkpoint.readState(out));
        assertTrue(e.getMessage().contains("not a lorakit checkpoint"), e.getMessage());
    }

    /**
     * Bytes Jackson takes for UTF-32 little-endian ('t' then NULs, the models fuzz target's regression-utf32-truncated
     * input) are refused as invalid state naming the file; before, Jackson's CharConversionException escaped bare.
     */
    @Test
    void aStateFileThatIsNotUtf8IsRefusedNamingTheFile(@TempDir Path out) throws IOException {
        Files.createDirectories(out);
        Files.write(out.resolve(Checkpoint.STATE), new byte[] {'t', 0, 0, 0, 0});
        IOException e = assertThrows(IOException.class, () -> Checkpoint.readState(out));
        assertTrue(e.getMessage().contains(Checkpoint.STATE) && e.getMessage().contains("invalid checkpoint state"),
                e.getMessage());
    }
}
