package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.GpuException;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves what lorakit says about loading liblorakit.so on an unknown machine: the requirements native/build.sh ships
 * beside the library are parsed and compared with this machine's glibc (versions numerically: 2.9 < 2.34), the
 * shipped library's minimum glibc is a real version no newer than the glibc it loads on here, a library the loader
 * refuses is reported with the loader's message and those requirements, and loading it is optional for cuda-ffm
 * (tryGet never throws).
 */
class NativeRequirementsTest {

    @Test
    void parsesTheBuildOutputAndComparesVersionsNumerically() {
        NativeRequirements r = NativeRequirements.parse("# comment\nglibc=2.34\nglibcxx=\ncxxabi=1.3\n"
                + "needed=libstdc++.so.6 libc.so.6\nfuture=x\n");
        assertEquals(new NativeRequirements("2.34", "", "1.3", List.of("libstdc++.so.6", "libc.so.6")), r);
        assertEquals("glibc >= 2.34, CXXABI_1.3, libraries libstdc++.so.6 libc.so.6", r.describe());
        assertTrue(r.glibcSatisfiedBy("2.36"));
        assertTrue(r.glibcSatisfiedBy("2.34"));
        assertFalse(r.glibcSatisfiedBy("2.31"));
        assertFalse(r.glibcSatisfiedBy("2.4"));
        assertTrue(NativeRequirements.compareVersions("2.9", "2.34") < 0);
        assertTrue(NativeRequirements.parse("").glibcSatisfiedBy("1.0"), "nothing required");
    }

    @Test
    void theShippedLibraryNamesAGlibcThisMachineSatisfies() {
        assumeTrue(LorakitNative.present(), "the jar has no liblorakit.so (built without nvcc)");
        Optional<NativeRequirements> r = NativeRequirements.bundled();
        assertTrue(r.isPresent(), NativeRequirements.RESOURCE + " must ship with the library");
        assertTrue(r.get().glibc().matches("2\\.\\d+(\\.\\d+)?"), r.get().toString());
        assertTrue(r.get().needed().contains("libc.so.6"), r.get().toString());
        String sys = NativeRequirements.systemGlibc().orElseThrow();
        assertTrue(sys.matches("\\d+\\.\\d+.*"), sys);
        assertTrue(r.get().glibcSatisfiedBy(sys), "the library loads here, so " + sys + " >= " + r.get().glibc());
        assertTrue(NativeRequirements.summary().startsWith("needs glibc >= " + r.get().glibc()), NativeRequirements.summary());
    }

    @Test
    void aLibraryTheLoaderRefusesIsReportedWithItsRequirements(@TempDir Path dir) throws IOException {
        assumeTrue(LorakitNative.present(), "the jar has no liblorakit.so (built without nvcc)");
        Path notElf = Files.writeString(dir.resolve("liblorakit.so"), "not an ELF file");
        GpuException e = assertThrows(GpuException.class, () -> LorakitNative.load(notElf));
        assertTrue(e.getMessage().startsWith("liblorakit.so: loading "), e.getMessage());
        assertTrue(e.getMessage().contains("needs glibc >= "), e.getMessage());
    }

    @Test
    void loadingIsOptionalForCudaFfm() {
        LorakitNative.Loaded l = LorakitNative.tryGet();
        assertTrue((l.library() == null) != (l.unavailableReason() == null), l.toString());
        if (LorakitNative.present()) {
            assertTrue(l.library() != null, "the shipped library loads here: " + l.unavailableReason());
        }
    }
}
