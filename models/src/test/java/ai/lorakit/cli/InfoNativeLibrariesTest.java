package ai.lorakit.cli;

import ai.lorakit.gpu.ffm.LorakitNative;
import ai.lorakit.gpu.ffm.NativeRequirements;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves {@code lorakit info} tells a user on an unknown machine what the native side needs: the minimum glibc of
 * liblorakit.so (the version native/build.sh read from the library, a real 2.x) with this machine's glibc, and where
 * cuBLAS and NCCL load from or how to point lorakit at them.
 */
class InfoNativeLibrariesTest {

    @Test
    void infoNamesTheMinimumGlibcAndTheNvidiaLibraries() {
        CliRun r = CliRun.of("info");
        assertEquals(0, r.code(), r.toString());
        String lib = r.out().lines().filter(l -> l.trim().startsWith("liblorakit.so")).findFirst().orElse("");
        assertTrue(r.out().lines().anyMatch(l -> l.trim().startsWith("cuBLAS ")), r.out());
        assertTrue(r.out().lines().anyMatch(l -> l.trim().startsWith("NCCL ")), r.out());
        assumeTrue(LorakitNative.present(), "built without nvcc: no liblorakit.so");
        String glibc = NativeRequirements.bundled().orElseThrow().glibc();
        assertTrue(glibc.matches("2\\.\\d+"), glibc);
        assertTrue(lib.contains("loads") && lib.contains("needs glibc >= " + glibc + ",")
                && lib.contains("(this machine: glibc "), lib);
    }
}
