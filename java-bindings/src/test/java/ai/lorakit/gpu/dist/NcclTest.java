package ai.lorakit.gpu.dist;

import ai.lorakit.gpu.blas.LibraryLocator;
import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, without a GPU, how NCCL fails to load: the reason lists every {@link LibraryLocator} candidate tried (in
 * its order) with why it failed and names the remedy; a library that is not NCCL is refused by the missing entry
 * point; -Dlorakit.nccl=none turns NCCL off. Where lorakit looks is LibraryLocatorTest's; the device all-reduce is
 * NcclIT's (GPU check).
 */
class NcclTest {

    @Test
    void withoutNcclTheReasonListsWhatWasTriedAndTheRemedy() {
        List<LibraryLocator.Candidate> candidates = List.of(
                new LibraryLocator.Candidate("libnccl.so.2", Path.of("/nonexistent/a/libnccl.so.2"), null, "first"),
                new LibraryLocator.Candidate("libnccl.so.2", Path.of("/nonexistent/b/libnccl.so.2"), null,
                        "-Dlorakit.nccl"));
        DistributedException e = assertThrows(DistributedException.class, () -> Nccl.load(candidates));
        String why = e.getMessage();
        assertTrue(why.startsWith("no libnccl.so.2 loads (tried /nonexistent/a/libnccl.so.2 [first]: "), why);
        assertTrue(why.indexOf("/nonexistent/a/") < why.indexOf("/nonexistent/b/libnccl.so.2 [-Dlorakit.nccl]: "),
                why);
        assertTrue(why.contains("nvidia-nccl-cu13") && why.contains("-Dlorakit.nccl=<file or folder>"), why);
    }

    @Test
    void aLibraryThatIsNotNcclIsRefusedByName() {
        // the JVM's own libjava.so loads everywhere but has no NCCL entry points: the reason names the missing one
        Path libjava = Path.of(System.getProperty("java.home"), "lib", "libjava.so");
        assertTrue(Files.isRegularFile(libjava), libjava.toString());
        DistributedException e = assertThrows(DistributedException.class, () -> Nccl.load(List.of(
                new LibraryLocator.Candidate("libnccl.so.2", libjava, null, "-Dlorakit.nccl"))));
        assertTrue(e.getMessage().contains(libjava + " [-Dlorakit.nccl]: the library has no ncclGetVersion"),
                e.getMessage());
    }

    @Test
    void noneTurnsNcclOff() {
        String before = System.getProperty(LibraryLocator.NCCL.property());
        System.setProperty(LibraryLocator.NCCL.property(), "none");
        try {
            String why = Nccl.unavailableReason();
            assertTrue(why != null && why.startsWith("NCCL is disabled (-Dlorakit.nccl=none)"), why);
        } finally {
            if (before == null) {
                System.clearProperty(LibraryLocator.NCCL.property());
            } else {
                System.setProperty(LibraryLocator.NCCL.property(), before);
            }
        }
    }
}
