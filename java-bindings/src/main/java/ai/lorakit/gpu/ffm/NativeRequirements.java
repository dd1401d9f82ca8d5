package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.NativeAbi;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.invoke.MethodHandle;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Optional;

import static java.lang.foreign.ValueLayout.ADDRESS;

/**
 * What liblorakit.so needs from the machine that loads it, as native/build.sh read it from the library's versioned
 * symbols and dynamic section at build time (the resource {@value #RESOURCE}): the newest GLIBC_, GLIBCXX_ and
 * CXXABI_ version it imports ("" when it imports none) and its NEEDED libraries. With {@link #systemGlibc()} it
 * tells a user why the library cannot load on an old distribution, before or after trying.
 */
public record NativeRequirements(String glibc, String glibcxx, String cxxabi, List<String> needed) {
    /** The requirements resource beside the library. */
    public static final String RESOURCE = NativeAbi.NATIVE_RESOURCE + ".requires";

    /** The requirements shipped with this jar's liblorakit.so, or empty (no library, or built without objdump). */
    public static Optional<NativeRequirements> bundled() {
        try (InputStream in = NativeRequirements.class.getResourceAsStream(RESOURCE)) {
            return in == null ? Optional.empty() : Optional.of(parse(new String(in.readAllBytes(), StandardCharsets.UTF_8)));
        } catch (IOException e) {
            return Optional.empty();
        }
    }

    /** Parses the key=value lines native/build.sh writes ('#' lines are comments; unknown keys are ignored). */
    static NativeRequirements parse(String text) {
        String glibc = "";
        String glibcxx = "";
        String cxxabi = "";
        List<String> needed = new ArrayList<>();
        for (String line : text.split("\n")) {
            String l = line.trim();
            int eq = l.indexOf('=');
            if (l.startsWith("#") || eq < 0) {
                continue;
            }
            String v = l.substring(eq + 1).trim();
            switch (l.substring(0, eq).trim()) {
                case "glibc" -> glibc = v;
                case "glibcxx" -> glibcxx = v;
                case "cxxabi" -> cxxabi = v;
                case "needed" -> needed.addAll(v.isEmpty() ? List.of() : List.of(v.split("\\s+")));
                default -> { }
            }
        }
        return new NativeRequirements(glibc, glibcxx, cxxabi, List.copyOf(needed));
    }

    /** E.g. "glibc >= 2.34, CXXABI_1.3, libraries libstdc++.so.6 libgcc_s.so.1 libc.so.6". */
    public String describe() {
        List<String> parts = new ArrayList<>();
        parts.add("glibc >= " + (glibc.isEmpty() ? "any" : glibc));
        if (!glibcxx.isEmpty()) {
            parts.add("libstdc++ GLIBCXX_" + glibcxx);
        }
        if (!cxxabi.isEmpty()) {
            parts.add("CXXABI_" + cxxabi);
        }
        if (!needed.isEmpty()) {
            parts.add("libraries " + String.join(" ", needed));
        }
        return String.join(", ", parts);
    }

    /** Whether a glibc of {@code version} (e.g. "2.31") is new enough; true when no version is required. */
    public boolean glibcSatisfiedBy(String version) {
        return glibc.isEmpty() || compareVersions(version, glibc) >= 0;
    }

    /** Numeric comparison of dotted versions ("2.9" < "2.34"); non-numeric parts count as 0. */
    static int compareVersions(String a, String b) {
        String[] x = a.split("\\.");
        String[] y = b.split("\\.");
        for (int i = 0; i < Math.max(x.length, y.length); i++) {
            int c = Integer.compare(part(x, i), part(y, i));
            if (c != 0) {
                return c;
            }
        }
        return 0;
    }

    private static int part(String[] p, int i) {
        try {
            return i < p.length ? Integer.parseInt(p[i].replaceAll("\\D.*", "")) : 0;
        } catch (NumberFormatException e) {
            return 0;
        }
    }

    /** This machine's glibc version (gnu_get_libc_version()), or empty when the C library is not glibc. */
    public static Optional<String> systemGlibc() {
        try {
            Linker linker = Linker.nativeLinker();
            Optional<MemorySegment> f = linker.defaultLookup().find("gnu_get_libc_version");
            if (f.isEmpty()) {
                return Optional.empty();
            }
            MethodHandle h = linker.downcallHandle(f.get(), FunctionDescriptor.of(ADDRESS));
            MemorySegment s = (MemorySegment) h.invokeExact();
            return Optional.of(s.reinterpret(64).getString(0));
        } catch (Throwable t) {
            return Optional.empty();
        }
    }

    /** "needs glibc >= 2.34, ... (this machine: glibc 2.31, too old)" for messages; "" without a resource. */
    public static String summary() {
        Optional<NativeRequirements> r = bundled();
        if (r.isEmpty()) {
            return "";
        }
        Optional<String> sys = systemGlibc();
        return "needs " + r.get().describe() + " (this machine: " + sys.map(v -> "glibc " + v
                + (r.get().glibcSatisfiedBy(v) ? "" : ", too old")).orElse("not glibc") + ")";
    }
}
