package ai.lorakit.gpu.blas;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;

import static ai.lorakit.gpu.blas.LibraryLocator.CUBLAS;
import static ai.lorakit.gpu.blas.LibraryLocator.NCCL;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;

/**
 * Proves the library search order on fake folder layouts (empty files named like the libraries; nothing is loaded):
 * the loader path by soname first, then LD_LIBRARY_PATH folders, then the nvidia/&lt;pkg&gt;/lib folders the python3 on
 * PATH names, then the globbed site-packages and dist-packages, then CUDA toolkit folders, then the system property
 * (a file or a folder); .so.13 before .so.12 within each group and only majors the driver supports; libcublasLt found
 * beside each; duplicates (a symlinked folder, a folder found twice) listed once; NCCL found the same way; and the
 * python3 question answered by a real (fake) interpreter.
 */
class LibraryLocatorTest {

    private static Path touch(Path p) throws IOException {
        Files.createDirectories(p.getParent());
        return Files.createFile(p);
    }

    private static List<String> names(List<LibraryLocator.Candidate> cs) {
        return cs.stream().map(c -> (c.path() == null ? c.soname() : c.path().toString())
                + (c.companion() == null ? "" : " +Lt") + " @" + c.origin()).toList();
    }

    @Test
    void searchOrderOnAFakeLayout(@TempDir Path tmp) throws IOException {
        Path ld = tmp.resolve("ld");
        touch(ld.resolve("libcublas.so.12"));
        Path venv = tmp.resolve("venv/lib/python3.12/site-packages/nvidia");    // the python3 on PATH
        touch(venv.resolve("cu13/lib/libcublas.so.13"));
        touch(venv.resolve("cu13/lib/libcublasLt.so.13"));
        Path site311 = tmp.resolve("usr/lib/python3.11/site-packages/nvidia");
        touch(site311.resolve("cublas/lib/libcublas.so.12"));
        touch(site311.resolve("cublas/lib/libcublasLt.so.12"));
        Path dist312 = tmp.resolve("usr/local/lib/python3.12/dist-packages/nvidia");
        touch(dist312.resolve("cu13/lib/libcublas.so.13"));
        touch(dist312.resolve("cu13/lib/libcublasLt.so.13"));
        touch(dist312.resolve("cuda_runtime/lib/libcudart.so.13"));        // not cuBLAS: ignored
        Path cuda = tmp.resolve("usr/local/cuda-13.0");
        touch(cuda.resolve("targets/x86_64-linux/lib/libcublas.so.13"));
        Path mine = tmp.resolve("mine");
        touch(mine.resolve("libcublas.so.13"));
        Files.createSymbolicLink(tmp.resolve("ldlink"), ld);               // same folder twice on LD_LIBRARY_PATH

        LibraryLocator.Env env = new LibraryLocator.Env(mine.toString(),
                ld + "::" + tmp.resolve("ldlink") + ":" + tmp.resolve("nope"),
                List.of(venv.resolve("cu13/lib"), venv.resolve("missing/lib")),
                List.of(tmp.resolve("usr/lib"), tmp.resolve("usr/local/lib"), tmp.resolve("missing")), List.of(cuda));
        // the exact order: all .so.13 groups first, then .so.12 groups, within a group by origin order
        List<String> order = names(LibraryLocator.candidates(CUBLAS, env, 13000));
        assertEquals(List.of(
                "libcublas.so.13 @loader path",
                "libcublas.so.12 @loader path",
                ld.resolve("libcublas.so.12") + " @LD_LIBRARY_PATH",
                venv.resolve("cu13/lib/libcublas.so.13") + " +Lt @python3 on PATH",
                dist312.resolve("cu13/lib/libcublas.so.13") + " +Lt @python site-packages",
                site311.resolve("cublas/lib/libcublas.so.12") + " +Lt @python site-packages",
                cuda.resolve("targets/x86_64-linux/lib/libcublas.so.13") + " @CUDA toolkit",
                mine.resolve("libcublas.so.13") + " @-Dlorakit.cublas"), order);

        // a CUDA 12 driver cannot run a CUDA 13 cuBLAS: only .so.12 candidates
        assertEquals(List.of(
                "libcublas.so.12 @loader path",
                ld.resolve("libcublas.so.12") + " @LD_LIBRARY_PATH",
                site311.resolve("cublas/lib/libcublas.so.12") + " +Lt @python site-packages"),
                names(LibraryLocator.candidates(CUBLAS, env, 12080)));
    }

    @Test
    void thePropertyIsTheLastResortAsAFileOrAFolder(@TempDir Path tmp) throws IOException {
        Path dir = tmp.resolve("mine");
        Path f13 = touch(dir.resolve("libcublas.so.13"));
        touch(dir.resolve("libcublasLt.so.13"));
        touch(dir.resolve("libcublas.so.12"));
        LibraryLocator.Env byFolder = new LibraryLocator.Env(dir.toString(), null, List.of(), List.of(), List.of());
        assertEquals(List.of("libcublas.so.13 @loader path", "libcublas.so.12 @loader path",
                        f13 + " +Lt @-Dlorakit.cublas", dir.resolve("libcublas.so.12") + " @-Dlorakit.cublas"),
                names(LibraryLocator.candidates(CUBLAS, byFolder, 13000)));
        LibraryLocator.Env byFile = new LibraryLocator.Env(f13.toString(), null, List.of(), List.of(), List.of());
        List<LibraryLocator.Candidate> c = LibraryLocator.candidates(CUBLAS, byFile, 13000);
        assertEquals(f13 + " +Lt @-Dlorakit.cublas", names(c).get(2));
        assertEquals(13, c.get(2).major());
    }

    @Test
    void ncclIsFoundTheSameWay(@TempDir Path tmp) throws IOException {
        Path wheel = tmp.resolve("site/nvidia/nccl/lib");
        Path lib = touch(wheel.resolve("libnccl.so.2"));
        LibraryLocator.Env env = new LibraryLocator.Env(null, null, List.of(wheel), List.of(), List.of());
        assertEquals(List.of("libnccl.so.2 @loader path", lib + " @python3 on PATH"),
                names(LibraryLocator.candidates(NCCL, env, 13000)));
        assertEquals(List.of("libnccl.so.2 @loader path"),
                names(LibraryLocator.candidates(NCCL, new LibraryLocator.Env(null, null, List.of(), List.of(),
                        List.of()), 0)));
    }

    @Test
    void nothingInstalledLeavesOnlyTheLoaderPath(@TempDir Path tmp) {
        LibraryLocator.Env env = new LibraryLocator.Env(null, null, List.of(), List.of(tmp),
                List.of(tmp.resolve("cuda")));
        List<LibraryLocator.Candidate> c = LibraryLocator.candidates(CUBLAS, env, 0);
        assertEquals(List.of("libcublas.so.13 @loader path", "libcublas.so.12 @loader path"), names(c));
        assertNull(c.get(0).path());
        assertEquals(List.of(13, 12), LibraryLocator.majorsFor(CUBLAS, 0));
        assertEquals(List.of(), LibraryLocator.majorsFor(CUBLAS, 11080));
        assertEquals(List.of(2), LibraryLocator.majorsFor(NCCL, 11080));
    }

    @Test
    void thePythonOnPathIsAskedForItsNvidiaWheels(@TempDir Path tmp) throws IOException {
        // a stand-in interpreter: prints what a python3 with nvidia-cublas and nvidia-nccl wheels would print
        Path lib1 = Files.createDirectories(tmp.resolve("site/nvidia/cublas/lib"));
        Path lib2 = Files.createDirectories(tmp.resolve("site/nvidia/nccl/lib"));
        Path py = tmp.resolve("python3");
        Files.writeString(py, "#!/bin/sh\necho " + lib1 + "\necho " + lib2 + "\n");
        Files.setPosixFilePermissions(py, PosixFilePermissions.fromString("rwx------"));
        assertEquals(List.of(lib1, lib2), LibraryLocator.askPython(py.toString()));

        Path slow = tmp.resolve("slow");
        Files.writeString(slow, "#!/bin/sh\nsleep 30\necho " + lib1 + "\n");
        Files.setPosixFilePermissions(slow, PosixFilePermissions.fromString("rwx------"));
        long t0 = System.nanoTime();
        assertEquals(List.of(), LibraryLocator.askPython(slow.toString()), "a python3 that hangs is not waited for");
        long seconds = (System.nanoTime() - t0) / 1_000_000_000L;
        assertEquals(true, seconds <= LibraryLocator.PYTHON_TIMEOUT_S + 2, seconds + " s");

        assertEquals(List.of(), LibraryLocator.askPython(tmp.resolve("no-such-python").toString()));
    }
}
