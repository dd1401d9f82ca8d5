package ai.lorakit.gpu.dist;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, without a GPU, where lorakit looks for libnccl.so.2 (the property alone when set; else the loader path,
 * then python3's nvidia.nccl wheel folders) and that a machine without NCCL gets a reason that lists what was tried
 * and how to fix it. The device all-reduce itself is NcclIT's (GPU check).
 */
class NcclTest {

    @Test
    void candidatesComeInTheDocumentedOrder(@TempDir Path root) throws IOException {
        Path wheel = Files.createDirectories(root.resolve("python3.11/site-packages/nvidia/nccl/lib"));
        Files.writeString(wheel.resolve("libnccl.so.2"), "");
        Path deb = Files.createDirectories(root.resolve("python3/dist-packages/nvidia/nccl/lib"));
        Files.writeString(deb.resolve("libnccl.so.2"), "");
        Files.createDirectories(root.resolve("python3.12/site-packages/nvidia/cublas/lib"));   // not NCCL
        List<NcclLocator.Candidate> c = NcclLocator.candidates(null, List.of(root, root.resolve("missing")));
        assertEquals(3, c.size(), c.toString());
        assertNull(c.get(0).path());
        assertEquals("loader path", c.get(0).origin());
        assertEquals(deb.resolve("libnccl.so.2"), c.get(1).path());
        assertEquals(wheel.resolve("libnccl.so.2"), c.get(2).path());
        assertEquals("python3 nvidia.nccl wheel", c.get(2).origin());

        List<NcclLocator.Candidate> only = NcclLocator.candidates(wheel.toString(), List.of(root));
        assertEquals(List.of(new NcclLocator.Candidate(wheel.resolve("libnccl.so.2"), NcclLocator.PROPERTY)), only);
    }

    @Test
    void withoutNcclTheReasonListsWhatWasTriedAndTheRemedy() {
        String before = System.getProperty(NcclLocator.PROPERTY);
        System.setProperty(NcclLocator.PROPERTY, "/nonexistent/libnccl.so.2");
        try {
            String why = Nccl.unavailableReason();
            assertTrue(why.startsWith("no libnccl.so.2 loads (tried /nonexistent/libnccl.so.2 ["
                    + NcclLocator.PROPERTY + "]: "), why);
            assertTrue(why.contains("nvidia-nccl-cu13") && why.contains("-D" + NcclLocator.PROPERTY), why);
        } finally {
            if (before == null) {
                System.clearProperty(NcclLocator.PROPERTY);
            } else {
                System.setProperty(NcclLocator.PROPERTY, before);
            }
        }
    }

    @Test
    void aLibraryThatIsNotNcclIsRefusedByName() {
        // the JVM's own libjava.so loads everywhere but has no NCCL entry points: the reason names the missing one
        Path libjava = Path.of(System.getProperty("java.home"), "lib", "libjava.so");
        assertTrue(Files.isRegularFile(libjava), libjava.toString());
        String before = System.getProperty(NcclLocator.PROPERTY);
        System.setProperty(NcclLocator.PROPERTY, libjava.toString());
        try {
            String why = Nccl.unavailableReason();
            assertTrue(why.contains("has no ncclGetVersion"), why);
        } finally {
            if (before == null) {
                System.clearProperty(NcclLocator.PROPERTY);
            } else {
                System.setProperty(NcclLocator.PROPERTY, before);
            }
        }
    }
}
