package ai.lorakit.gpu.blas;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Proves the cuBLAS search order on fake folder layouts (empty files named like the libraries; nothing is loaded):
 * the loader path by soname first, then LD_LIBRARY_PATH folders, then Python's nvidia/*&#47;lib wheels under every
 * site-packages and dist-packages, then CUDA toolkit folders; .so.13 before .so.12 within each group and only majors
 * the driver supports; libcublasLt found beside each; duplicates (a symlinked folder) listed once; the system property
 * overriding everything with a file or a folder.
 */
class CublasLocatorTest {

    private static Path touch(Path p) throws IOException {
        Files.createDirectories(p.getParent());
        return Files.createFile(p);
    }

    private static List<String> names(List<CublasLocator.Candidate> cs) {
        return cs.stream().map(c -> (c.path() == null ? c.soname() : c.path().toString())
                + (c.lt() == null ? "" : " +Lt") + " @" + c.origin()).toList();
    }

    @Test
    void searchOrderOnAFakeLayout(@TempDir Path tmp) throws IOException {
        Path ld = tmp.resolve("ld");
        touch(ld.resolve("libcublas.so.12"));
        Path site311 = tmp.resolve("usr/lib/python3.11/site-packages/nvidia");
        touch(site311.resolve("cublas/lib/libcublas.so.12"));
        touch(site311.resolve("cublas/lib/libcublasLt.so.12"));
        Path dist312 = tmp.resolve("usr/local/lib/python3.12/dist-packages/nvidia");
        touch(dist312.resolve("cu13/lib/libcublas.so.13"));
        touch(dist312.resolve("cu13/lib/libcublasLt.so.13"));
        touch(dist312.resolve("cuda_runtime/lib/libcudart.so.13"));        // not cuBLAS: ignored
        Path cuda = tmp.resolve("usr/local/cuda-13.0");
        touch(cuda.resolve("targets/x86_64-linux/lib/libcublas.so.13"));
        Files.createSymbolicLink(tmp.resolve("ldlink"), ld);               // same folder twice on LD_LIBRARY_PATH

        CublasLocator.Env env = new CublasLocator.Env(null, ld + "::" + tmp.resolve("ldlink") + ":" + tmp.resolve("nope"),
                List.of(tmp.resolve("usr/lib"), tmp.resolve("usr/local/lib"), tmp.resolve("missing")), List.of(cuda));
        assertEquals(List.of(
                "libcublas.so.13 @loader path",
                "libcublas.so.12 @loader path",
                ld.resolve("libcublas.so.12") + " @LD_LIBRARY_PATH",
                dist312.resolve("cu13/lib/libcublas.so.13") + " +Lt @python site-packages",
                site311.resolve("cublas/lib/libcublas.so.12") + " +Lt @python site-packages",
                cuda.resolve("targets/x86_64-linux/lib/libcublas.so.13") + " @CUDA toolkit"),
                names(CublasLocator.candidates(env, 13000)));

        // a CUDA 12 driver cannot run a CUDA 13 cuBLAS: only .so.12 candidates
        assertEquals(List.of(
                "libcublas.so.12 @loader path",
                ld.resolve("libcublas.so.12") + " @LD_LIBRARY_PATH",
                site311.resolve("cublas/lib/libcublas.so.12") + " +Lt @python site-packages"),
                names(CublasLocator.candidates(env, 12080)));
    }

    @Test
    void thePropertyOverridesEverything(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("mine");
        Path f13 = touch(dir.resolve("libcublas.so.13"));
        touch(dir.resolve("libcublasLt.so.13"));
        touch(dir.resolve("libcublas.so.12"));
        CublasLocator.Env byFolder = new CublasLocator.Env(dir.toString(), tmp.toString(), List.of(), List.of());
        assertEquals(List.of(f13 + " +Lt @lorakit.cublas", dir.resolve("libcublas.so.12") + " @lorakit.cublas"),
                names(CublasLocator.candidates(byFolder, 13000)));
        CublasLocator.Env byFile = new CublasLocator.Env(f13.toString(), null, List.of(), List.of());
        List<CublasLocator.Candidate> c = CublasLocator.candidates(byFile, 13000);
        assertEquals(List.of(f13 + " +Lt @lorakit.cublas"), names(c));
        assertEquals(13, c.get(0).major());
    }

    @Test
    void nothingInstalledLeavesOnlyTheLoaderPath(@TempDir Path tmp) {
        CublasLocator.Env env = new CublasLocator.Env(null, null, List.of(tmp), List.of(tmp.resolve("cuda")));
        List<CublasLocator.Candidate> c = CublasLocator.candidates(env, 0);
        assertEquals(List.of("libcublas.so.13 @loader path", "libcublas.so.12 @loader path"), names(c));
        assertNull(c.get(0).path());
        assertEquals(List.of(13, 12), CublasLocator.majorsFor(0));
        assertEquals(List.of(), CublasLocator.majorsFor(11080));
    }
}
