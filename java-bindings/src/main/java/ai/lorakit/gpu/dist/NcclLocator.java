package ai.lorakit.gpu.dist;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Where libnccl.so.2 may be, in the order {@link Nccl} tries them; nothing is loaded here, so the order is tested
 * on fake folders.
 * <ol>
 *   <li>{@value #PROPERTY} (the file, or its folder): when set, only that;</li>
 *   <li>the loader path by soname (LD_LIBRARY_PATH, RUNPATH, the ldconfig cache);</li>
 *   <li>python3's {@code nvidia-nccl-cu*} wheel: {@code <root>/python3*}/{site,dist}-packages/nvidia/nccl/lib under
 *       the usual Python library roots (the folder {@code python3 -c "import nvidia.nccl"} would find).</li>
 * </ol>
 * Minimal and self-contained on purpose; {@code blas/CublasLocator} does the same search for cuBLAS.
 */
public final class NcclLocator {
    /** System property: libnccl.so.2 (or its folder) to use. */
    public static final String PROPERTY = "lorakit.nccl";
    static final String SONAME = "libnccl.so.2";

    /** A place to try: {@code path} null means the loader's soname lookup. */
    public record Candidate(Path path, String origin) {
        @Override
        public String toString() {
            return (path == null ? SONAME + " (loader path)" : path.toString()) + " [" + origin + "]";
        }
    }

    private NcclLocator() {
    }

    /** Every candidate for this property value (or null) and these Python library roots, in order. */
    public static List<Candidate> candidates(String property, List<Path> pythonRoots) {
        List<Candidate> out = new ArrayList<>();
        if (property != null && !property.isBlank()) {
            Path p = Path.of(property.trim());
            out.add(new Candidate(Files.isDirectory(p) ? p.resolve(SONAME) : p, PROPERTY));
            return out;
        }
        out.add(new Candidate(null, "loader path"));
        for (Path root : pythonRoots) {
            for (Path py : glob(root, "python3*")) {
                for (String site : new String[] {"site-packages", "dist-packages"}) {
                    Path f = py.resolve(site).resolve("nvidia/nccl/lib").resolve(SONAME);
                    if (Files.isRegularFile(f)) {
                        out.add(new Candidate(f, "python3 nvidia.nccl wheel"));
                    }
                }
            }
        }
        return out;
    }

    /** This process's candidates. */
    public static List<Candidate> candidates() {
        List<Path> roots = new ArrayList<>(List.of(Path.of("/usr/lib"), Path.of("/usr/local/lib"),
                Path.of("/opt/conda/lib")));
        String home = System.getProperty("user.home");
        if (home != null) {
            roots.add(Path.of(home, ".local", "lib"));
        }
        for (String var : new String[] {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
            String v = System.getenv(var);
            if (v != null && !v.isBlank()) {
                roots.add(Path.of(v, "lib"));
            }
        }
        return candidates(System.getProperty(PROPERTY), roots);
    }

    private static List<Path> glob(Path dir, String pattern) {
        List<Path> out = new ArrayList<>();
        if (Files.isDirectory(dir)) {
            try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, pattern)) {
                ds.forEach(out::add);
            } catch (IOException | RuntimeException e) {
                return out;
            }
        }
        out.sort(null);
        return out;
    }
}
