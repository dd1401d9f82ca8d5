package ai.lorakit.bench.variants;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/** The machine a benchmark ran on (PERFORMANCE.md: record the device, commit and date with every result). */
final class Machine {

    private Machine() {
    }

    static Map<String, Object> describe() {
        Map<String, Object> m = new LinkedHashMap<>();
        m.put("cpu", cpuModel());
        m.put("cores", Runtime.getRuntime().availableProcessors());
        m.put("memory_gib", String.format(java.util.Locale.ROOT, "%.1f", memTotalKb() / 1048576.0));
        m.put("os", System.getProperty("os.name") + " " + System.getProperty("os.version"));
        m.put("java", System.getProperty("java.vm.vendor") + " " + System.getProperty("java.vm.name") + " "
                + Runtime.version());
        m.put("max_heap_mib", Runtime.getRuntime().maxMemory() / 1048576);
        m.put("commit", commit());
        m.put("load_average_start", loadAverage());
        return m;
    }

    /** The three load averages of /proc/loadavg ("?" where missing). */
    static String loadAverage() {
        try {
            String[] f = Files.readString(Path.of("/proc/loadavg")).trim().split("\\s+");
            return f[0] + " " + f[1] + " " + f[2];
        } catch (IOException | RuntimeException e) {
            return "?";
        }
    }

    static String cpuModel() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/cpuinfo"))) {
                if (line.startsWith("model name")) {
                    return line.substring(line.indexOf(':') + 1).trim();
                }
            }
        } catch (IOException | RuntimeException e) {
            // fall through
        }
        return System.getProperty("os.arch");
    }

    /**
     * HEAD's commit of the git checkout in the working folder (or a parent), read from .git without running git. A
     * linked worktree's .git is a file "gitdir: DIR": HEAD is read there, branch refs in its common dir (DIR/commondir).
     */
    static String commit() {
        return commit(Path.of("").toAbsolutePath());
    }

    /** {@link #commit()} of the checkout holding {@code dir}. */
    static String commit(Path dir) {
        while (dir != null && !Files.exists(dir.resolve(".git"))) {
            dir = dir.getParent();
        }
        if (dir == null) {
            return "?";
        }
        try {
            Path git = dir.resolve(".git");
            if (Files.isRegularFile(git)) {                    // a linked worktree
                String link = Files.readString(git).trim();
                if (!link.startsWith("gitdir: ")) {
                    return "?";
                }
                git = dir.resolve(link.substring(8)).normalize();
            }
            String head = Files.readString(git.resolve("HEAD")).trim();
            if (!head.startsWith("ref: ")) {
                return head.substring(0, Math.min(12, head.length()));
            }
            String ref = head.substring(5);
            Path common = Files.isRegularFile(git.resolve("commondir"))
                    ? git.resolve(Files.readString(git.resolve("commondir")).trim()).normalize() : git;
            Path loose = common.resolve(ref);
            if (Files.isRegularFile(loose)) {
                return Files.readString(loose).trim().substring(0, 12) + " (" + ref + ")";
            }
            Path packed = common.resolve("packed-refs");
            if (Files.isRegularFile(packed)) {
                for (String line : Files.readAllLines(packed)) {
                    if (line.endsWith(" " + ref)) {
                        return line.substring(0, 12) + " (" + ref + ")";
                    }
                }
            }
        } catch (IOException | RuntimeException e) {
            return "?";
        }
        return "?";
    }

    /** MemTotal of /proc/meminfo in kB (0 where missing). */
    static long memTotalKb() {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/meminfo"))) {
                if (line.startsWith("MemTotal:")) {
                    return Long.parseLong(line.replaceAll("\\D+", ""));
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }
}
