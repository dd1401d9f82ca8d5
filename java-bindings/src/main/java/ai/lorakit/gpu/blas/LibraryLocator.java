package ai.lorakit.gpu.blas;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.SymbolLookup;
import java.nio.charset.StandardCharsets;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeSet;
import java.util.concurrent.ConcurrentHashMap;
import java.util.concurrent.TimeUnit;

/**
 * Where an NVIDIA library lorakit loads by itself ({@link #CUBLAS}: libcublas.so.13 / .12 with libcublasLt beside it;
 * {@link #NCCL}: libnccl.so.2) may be, in the order lorakit tries them, the same on every machine:
 * <ol>
 *   <li>the loader path by soname ({@code dlopen("libcublas.so.13")}: LD_LIBRARY_PATH, RUNPATH, the ldconfig cache),
 *       then each LD_LIBRARY_PATH folder by file;</li>
 *   <li>the NVIDIA wheels of the {@code python3} on PATH: it is asked (5 s at most, once per JVM) for the folders of
 *       its {@code nvidia} namespace package, and each {@code nvidia/<pkg>/lib} is searched (nvidia/cublas/lib,
 *       nvidia/cu13/lib, nvidia/nccl/lib, ...); then the same folders of every other site-packages / dist-packages
 *       under the usual Python roots (/usr/lib, /usr/local/lib, ~/.local/lib, $VIRTUAL_ENV/lib, $CONDA_PREFIX/lib,
 *       /opt/conda/lib), found by globbing, for environments not on PATH;</li>
 *   <li>CUDA toolkit folders (/usr/local/cuda{,-*}/lib64 and targets/x86_64-linux/lib);</li>
 *   <li>the library's system property ({@code -Dlorakit.cublas}, {@code -Dlorakit.nccl}: a file, or a folder holding
 *       the library), for a machine where none of the above finds it; "none" disables the library.</li>
 * </ol>
 * Within each group the newest major the driver supports comes first (a CUDA 13 cuBLAS needs a CUDA 13 driver); a
 * path candidate carries its companion (libcublasLt.so.N) when it is beside it, which is loaded first so that the
 * library finds it by soname. {@link #candidates} only lists (tested on fake folder layouts); {@link #locate} also
 * loads, to name the first candidate that opens.
 */
public final class LibraryLocator {
    /**
     * One library: display name, system property, file stem ("libcublas.so"), majors newest first, whether a major
     * is a CUDA major the driver must support, companion stem beside it (or null).
     */
    public record Library(String name, String property, String stem, List<Integer> majors, boolean cudaMajors,
                          String companion) {
    }

    /** cuBLAS 13 and 12 (libcublasLt beside it). */
    public static final Library CUBLAS = new Library("cuBLAS", "lorakit.cublas", "libcublas.so", List.of(13, 12), true,
            "libcublasLt.so");
    /** NCCL 2 (bound by ai.lorakit.gpu.dist.Nccl). */
    public static final Library NCCL = new Library("NCCL", "lorakit.nccl", "libnccl.so", List.of(2), false, null);

    /** Seconds the python3 on PATH may take to say where its nvidia wheels are. */
    static final int PYTHON_TIMEOUT_S = 5;
    private static final Map<String, List<Path>> PYTHON_ANSWERS = new ConcurrentHashMap<>();

    /**
     * One place to try. {@code path} is null for a soname lookup through the loader; {@code companion} is the
     * companion library beside a path candidate, or null.
     */
    public record Candidate(String soname, Path path, Path companion, String origin) {
        /** The library's major (13 or 12 for cuBLAS, 2 for NCCL). */
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
     * answer of the python3 on PATH (its nvidia/&lt;pkg&gt;/lib folders), the Python library roots to glob and the CUDA
     * toolkit roots.
     */
    public record Env(String property, String ldLibraryPath, List<Path> pythonOnPath, List<Path> pythonRoots,
                      List<Path> cudaRoots) {

        /** This process's environment for {@code lib} (asks the python3 on PATH once per JVM). */
        public static Env system(Library lib) {
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
            return new Env(System.getProperty(lib.property()), System.getenv("LD_LIBRARY_PATH"),
                    PYTHON_ANSWERS.computeIfAbsent("python3", LibraryLocator::askPython), py, cuda);
        }
    }

    private LibraryLocator() {
    }

    /** Whether {@code lib}'s property turns it off ("none" or "off"). */
    public static boolean disabled(Library lib) {
        String p = System.getProperty(lib.property());
        return p != null && (p.equalsIgnoreCase("none") || p.equalsIgnoreCase("off"));
    }

    /** Majors of {@code lib} to try for a driver of {@code driverVersion} (0 = unknown: all), newest first. */
    static List<Integer> majorsFor(Library lib, int driverVersion) {
        List<Integer> out = new ArrayList<>();
        for (int m : lib.majors()) {
            if (!lib.cudaMajors() || driverVersion <= 0 || driverVersion >= m * 1000) {
                out.add(m);
            }
        }
        return out;
    }

    /** Every candidate for {@code lib}, in the order to try, for a driver of {@code driverVersion} (0 = unknown). */
    public static List<Candidate> candidates(Library lib, Env env, int driverVersion) {
        List<Integer> majors = majorsFor(lib, driverVersion);
        List<Candidate> out = new ArrayList<>();
        Set<Path> seen = new LinkedHashSet<>();
        for (int m : majors) {
            out.add(new Candidate(lib.stem() + "." + m, null, null, "loader path"));
        }
        if (env.ldLibraryPath() != null) {
            List<Path> dirs = new ArrayList<>();
            for (String d : env.ldLibraryPath().split(":")) {
                if (!d.isBlank()) {
                    dirs.add(Path.of(d));
                }
            }
            addFolders(lib, out, seen, dirs, majors, "LD_LIBRARY_PATH");
        }
        addFolders(lib, out, seen, env.pythonOnPath(), majors, "python3 on PATH");
        addFolders(lib, out, seen, pythonLibFolders(env.pythonRoots()), majors, "python site-packages");
        List<Path> cudaLibs = new ArrayList<>();
        for (Path root : env.cudaRoots()) {
            cudaLibs.add(root.resolve("lib64"));
            cudaLibs.add(root.resolve("targets/x86_64-linux/lib"));
        }
        addFolders(lib, out, seen, cudaLibs, majors, "CUDA toolkit");
        if (env.property() != null && !env.property().isBlank()) {
            Path p = Path.of(env.property().trim());
            String origin = "-D" + lib.property();
            if (Files.isDirectory(p)) {
                addFolders(lib, out, seen, List.of(p), majors, origin);
            } else {
                String name = p.getFileName().toString();
                String prefix = lib.stem() + ".";
                int major = name.startsWith(prefix) && name.substring(prefix.length()).matches("\\d+.*")
                        ? Integer.parseInt(name.substring(prefix.length()).split("\\.")[0])
                        : majors.isEmpty() ? lib.majors().get(lib.majors().size() - 1) : majors.get(0);
                Path comp = lib.companion() == null ? null : p.resolveSibling(lib.companion() + "." + major);
                out.add(new Candidate(lib.stem() + "." + major, p, comp != null && Files.exists(comp) ? comp : null,
                        origin));
            }
        }
        return out;
    }

    /**
     * The first candidate of {@code lib} that the dynamic loader opens here (the companion first), or empty; the
     * libraries are loaded into a confined arena and closed again. For {@code lorakit info} and the GPU check.
     */
    public static Optional<Candidate> locate(Library lib, int driverVersion) {
        if (disabled(lib)) {
            return Optional.empty();
        }
        for (Candidate c : candidates(lib, Env.system(lib), driverVersion)) {
            try (Arena a = Arena.ofConfined()) {
                if (c.path() == null) {
                    SymbolLookup.libraryLookup(c.soname(), a);
                } else {
                    if (c.companion() != null) {
                        SymbolLookup.libraryLookup(c.companion(), a);
                    }
                    SymbolLookup.libraryLookup(c.path(), a);
                }
                return Optional.of(c);
            } catch (IllegalArgumentException | IllegalStateException e) {
                // not there or not loadable: the next candidate
            }
        }
        return Optional.empty();
    }

    /**
     * One line for {@code lorakit info} and the GPU check: where {@code lib} loads from here, or that it does not
     * (with the property to set).
     */
    public static String describe(Library lib, int driverVersion) {
        if (disabled(lib)) {
            return "disabled (-D" + lib.property() + "=" + System.getProperty(lib.property()) + ")";
        }
        return locate(lib, driverVersion).map(c -> c.path() == null ? c.soname() + " from the loader path"
                        : c.path() + " (" + c.origin() + ")")
                .orElse("not found (loader path, the nvidia wheels of python3, CUDA toolkit folders; set -D"
                        + lib.property() + "=FILE)");
    }

    /**
     * The nvidia/&lt;pkg&gt;/lib folders of {@code python}'s {@code nvidia} namespace package (empty when there is no
     * such python, no wheel, or it takes longer than {@value #PYTHON_TIMEOUT_S} s).
     */
    static List<Path> askPython(String python) {
        String script = "import os, sys\n"
                + "try:\n    import nvidia\nexcept Exception:\n    sys.exit(0)\n"
                + "for p in list(nvidia.__path__):\n"
                + "    for d in sorted(os.listdir(p)):\n"
                + "        lib = os.path.join(p, d, 'lib')\n"
                + "        if os.path.isdir(lib):\n            print(lib)\n";
        Process proc = null;
        try {
            proc = new ProcessBuilder(python, "-c", script).redirectErrorStream(false)
                    .redirectError(ProcessBuilder.Redirect.DISCARD).start();
            proc.getOutputStream().close();
            if (!proc.waitFor(PYTHON_TIMEOUT_S, TimeUnit.SECONDS)) {
                return List.of();
            }
            String out;
            try (InputStream in = proc.getInputStream()) {
                out = new String(in.readAllBytes(), StandardCharsets.UTF_8);
            }
            List<Path> dirs = new ArrayList<>();
            for (String line : out.split("\n")) {
                if (!line.isBlank()) {
                    dirs.add(Path.of(line.trim()));
                }
            }
            return proc.exitValue() == 0 ? dirs : List.of();
        } catch (IOException | RuntimeException e) {
            return List.of();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
            return List.of();
        } finally {
            if (proc != null && proc.isAlive()) {
                proc.destroyForcibly();
            }
        }
    }

    /** {@code <root>/python3*}/{site,dist}-packages/nvidia/*&#47;lib, sorted. */
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
    private static void addFolders(Library lib, List<Candidate> out, Set<Path> seen, List<Path> dirs,
                                   List<Integer> majors, String origin) {
        for (int m : majors) {
            for (Path d : dirs) {
                addOne(lib, out, seen, d, m, origin);
            }
        }
    }

    private static void addOne(Library lib, List<Candidate> out, Set<Path> seen, Path dir, int major, String origin) {
        Path f = dir.resolve(lib.stem() + "." + major);
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
            Path comp = lib.companion() == null ? null : dir.resolve(lib.companion() + "." + major);
            out.add(new Candidate(lib.stem() + "." + major, f, comp != null && Files.isRegularFile(comp) ? comp : null,
                    origin));
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
