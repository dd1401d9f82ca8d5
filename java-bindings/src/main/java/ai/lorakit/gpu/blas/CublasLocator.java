package ai.lorakit.gpu.blas;

import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.TreeSet;

/**
 * Where a libcublas.so.13 or .so.12 may be, in the order lorakit tries them (the first that loads and creates a
 * handle wins). Nothing is loaded here: {@link #candidates} only lists, so the order is tested on fake folder layouts.
 * <ol>
 *   <li>{@value #PROPERTY} (a file, or a folder holding libcublas.so.N): when set, only that;</li>
 *   <li>the loader path by soname ({@code dlopen("libcublas.so.13")}: LD_LIBRARY_PATH, RUNPATH, the ldconfig cache);</li>
 *   <li>each LD_LIBRARY_PATH folder by file;</li>
 *   <li>Python's NVIDIA wheels: {@code <site>/nvidia/<pkg>/lib/} for every site-packages / dist-packages folder under
 *       the Python library roots (/usr/lib, /usr/local/lib, ~/.local/lib, $VIRTUAL_ENV/lib, $CONDA_PREFIX/lib,
 *       /opt/conda/lib, each {@code python3*}/, plus Debian's /usr/lib/python3/dist-packages) -- the folders
 *       {@code python3 -c 'import site; print(site.getsitepackages())'} would list, found by globbing;</li>
 *   <li>CUDA toolkit folders (/usr/local/cuda{,-*}/lib64 and targets/x86_64-linux/lib).</li>
 * </ol>
 * Within each group the newest major the driver supports comes first (a CUDA 13 cuBLAS needs a CUDA 13 driver); a
 * path candidate carries the libcublasLt.so.N beside it, which is loaded first so that libcublas finds it by soname.
 */
public final class CublasLocator {
    /** System property: the libcublas file (or its folder) to use; "none" disables cuBLAS. */
    public static final String PROPERTY = "lorakit.cublas";

    /** cuBLAS majors lorakit binds to, newest first. */
    static final int[] MAJORS = {13, 12};

    /**
     * One place to try. {@code path} is null for a soname lookup through the loader; {@code lt} is the
     * libcublasLt.so.N beside a path candidate, or null.
     */
    public record Candidate(String soname, Path path, Path lt, String origin) {
        /** The cuBLAS major (13 or 12). */
        public int major() {
            return Integer.parseInt(soname.substring(soname.lastIndexOf('.') + 1));
        }

        @Override
        public String toString() {
            return (path == null ? soname + " (loader path)" : path.toString()) + " [" + origin + "]";
        }
    }

    /**
     * What the search looks at (injectable for tests): the property value (or null), LD_LIBRARY_PATH (or null), the
     * Python library roots and the CUDA toolkit roots.
     */
    public record Env(String property, String ldLibraryPath, List<Path> pythonRoots, List<Path> cudaRoots) {

        /** This process's environment. */
        public static Env system() {
            List<Path> py = new ArrayList<>(List.of(Path.of("/usr/lib"), Path.of("/usr/local/lib"),
                    Path.of("/usr/lib64"), Path.of("/opt/conda/lib")));
            String home = System.getProperty("user.home");
            if (home != null) {
                py.add(Path.of(home, ".local", "lib"));
            }
            for (String var : new String[] {"VIRTUAL_ENV", "CONDA_PREFIX"}) {
                String v = System.getenv(var);
                if (v != null && !v.isBlank()) {
                    py.add(Path.of(v, "lib"));
                }
            }
            List<Path> cuda = new ArrayList<>(List.of(Path.of("/usr/local/cuda")));
            cuda.addAll(glob(Path.of("/usr/local"), "cuda-*"));
            return new Env(System.getProperty(PROPERTY), System.getenv("LD_LIBRARY_PATH"), py, cuda);
        }
    }

    private CublasLocator() {
    }

    /** Majors to try for a driver of {@code driverVersion} (0 = unknown: all), newest first. */
    static List<Integer> majorsFor(int driverVersion) {
        List<Integer> out = new ArrayList<>();
        for (int m : MAJORS) {
            if (driverVersion <= 0 || driverVersion >= m * 1000) {
                out.add(m);
            }
        }
        return out;
    }

    /** Every candidate, in the order to try, for a driver of {@code driverVersion} (e.g. 13000; 0 = unknown). */
    public static List<Candidate> candidates(Env env, int driverVersion) {
        List<Integer> majors = majorsFor(driverVersion);
        List<Candidate> out = new ArrayList<>();
        Set<Path> seen = new LinkedHashSet<>();
        if (env.property() != null && !env.property().isBlank()) {
            Path p = Path.of(env.property().trim());
            if (Files.isDirectory(p)) {
                addFolder(out, seen, p, majors, PROPERTY);
            } else {
                String name = p.getFileName().toString();
                int major = name.matches("libcublas\\.so\\.\\d+.*") ? Integer.parseInt(name.split("\\.")[2]) : majors.isEmpty() ? 12 : majors.get(0);
                Path lt = p.resolveSibling("libcublasLt.so." + major);
                out.add(new Candidate("libcublas.so." + major, p, Files.exists(lt) ? lt : null, PROPERTY));
            }
            return out;
        }
        for (int m : majors) {
            out.add(new Candidate("libcublas.so." + m, null, null, "loader path"));
        }
        if (env.ldLibraryPath() != null) {
            List<Path> dirs = new ArrayList<>();
            for (String d : env.ldLibraryPath().split(":")) {
                if (!d.isBlank()) {
                    dirs.add(Path.of(d));
                }
            }
            addFolders(out, seen, dirs, majors, "LD_LIBRARY_PATH");
        }
        addFolders(out, seen, pythonLibFolders(env.pythonRoots()), majors, "python site-packages");
        List<Path> cudaLibs = new ArrayList<>();
        for (Path root : env.cudaRoots()) {
            cudaLibs.add(root.resolve("lib64"));
            cudaLibs.add(root.resolve("targets/x86_64-linux/lib"));
        }
        addFolders(out, seen, cudaLibs, majors, "CUDA toolkit");
        return out;
    }

    /** {@code <root>/python3*}/{site,dist}-packages/nvidia/*&#47;lib and {@code <root>/python3/dist-packages/...}, sorted. */
    static List<Path> pythonLibFolders(List<Path> roots) {
        Set<Path> sites = new TreeSet<>();
        for (Path root : roots) {
            for (Path py : glob(root, "python3*")) {
                for (String s : new String[] {"site-packages", "dist-packages"}) {
                    Path site = py.resolve(s);
                    if (Files.isDirectory(site)) {
                        sites.add(site);
                    }
                }
            }
        }
        List<Path> libs = new ArrayList<>();
        for (Path site : sites) {
            for (Path pkg : glob(site.resolve("nvidia"), "*")) {
                Path lib = pkg.resolve("lib");
                if (Files.isDirectory(lib)) {
                    libs.add(lib);
                }
            }
        }
        return libs;
    }

    /** Group by major (newest first), then folder order. */
    private static void addFolders(List<Candidate> out, Set<Path> seen, List<Path> dirs, List<Integer> majors,
                                   String origin) {
        for (int m : majors) {
            for (Path d : dirs) {
                addOne(out, seen, d, m, origin);
            }
        }
    }

    private static void addFolder(List<Candidate> out, Set<Path> seen, Path dir, List<Integer> majors, String origin) {
        for (int m : majors) {
            addOne(out, seen, dir, m, origin);
        }
    }

    private static void addOne(List<Candidate> out, Set<Path> seen, Path dir, int major, String origin) {
        Path f = dir.resolve("libcublas.so." + major);
        if (!Files.isRegularFile(f)) {
            return;
        }
        Path key;
        try {
            key = f.toRealPath();
        } catch (IOException e) {
            key = f.toAbsolutePath().normalize();
        }
        if (seen.add(key)) {
            Path lt = dir.resolve("libcublasLt.so." + major);
            out.add(new Candidate("libcublas.so." + major, f, Files.isRegularFile(lt) ? lt : null, origin));
        }
    }

    /** Entries of {@code dir} matching a glob, sorted; empty when dir is missing. */
    static List<Path> glob(Path dir, String pattern) {
        List<Path> out = new ArrayList<>();
        if (!Files.isDirectory(dir)) {
            return out;
        }
        try (DirectoryStream<Path> ds = Files.newDirectoryStream(dir, pattern)) {
            ds.forEach(out::add);
        } catch (IOException | RuntimeException e) {
            return out;
        }
        out.sort(null);
        return out;
    }
}
