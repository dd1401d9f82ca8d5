package ai.lorakit.gpu.cuda;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The parameter count of every kernel in the sources (cuda-kernels/cuda/*.cu: {@code extern "C" __global__};
 * cuda-kernels/portable/*.kc: {@code KERNEL void}), read from the source tree. The fake driver checks each recorded
 * launch against it, so a launch that passes the wrong number of arguments (a kernel whose signature changed, a
 * call site that was not updated) fails every fake-driver test that reaches it: on a real GPU it would read garbage.
 */
public final class KernelSignatures {
    private static final Pattern HEAD = Pattern.compile(
            "(?:extern\\s+\"C\"\\s+__global__\\s+void|KERNEL\\s+void)\\s+(?:__launch_bounds__\\s*\\([^)]*\\)\\s*)?(\\w+)\\s*\\(");
    private static Map<String, Integer> arity;

    private KernelSignatures() {
    }

    /** Kernel name -> parameter count, parsed once from the source tree. */
    public static synchronized Map<String, Integer> arity() {
        if (arity == null) {
            Map<String, Integer> m = new HashMap<>();
            Path root = sources();
            for (String dir : new String[] {"cuda", "portable"}) {
                try (Stream<Path> files = Files.list(root.resolve(dir))) {
                    for (Path f : files.filter(p -> p.toString().endsWith(".cu") || p.toString().endsWith(".kc"))
                            .toList()) {
                        parse(Files.readString(f), m);
                    }
                } catch (IOException e) {
                    throw new UncheckedIOException("reading the kernel sources under " + root, e);
                }
            }
            arity = Map.copyOf(m);
        }
        return arity;
    }

    /** Adds every kernel of {@code source} (comments stripped) to {@code into}. */
    static void parse(String source, Map<String, Integer> into) {
        String s = source.replaceAll("(?s)/\\*.*?\\*/", " ").replaceAll("//[^\\n]*", " ");
        Matcher h = HEAD.matcher(s);
        while (h.find()) {
            int depth = 1;
            int commas = 0;
            boolean any = false;
            int i = h.end();
            for (; i < s.length() && depth > 0; i++) {
                char c = s.charAt(i);
                if (c == '(') {
                    depth++;
                } else if (c == ')') {
                    depth--;
                } else if (c == ',' && depth == 1) {
                    commas++;
                } else if (!Character.isWhitespace(c) && depth == 1) {
                    any = true;
                }
            }
            into.put(h.group(1), any ? commas + 1 : 0);
        }
    }

    /** Throws when {@code kernel} is a known kernel and {@code args} is not its parameter count. */
    public static void checkArity(String kernel, int args) {
        Integer want = arity().get(kernel);
        if (want != null && want != args) {
            throw new AssertionError("launch of " + kernel + " with " + args + " arguments, but its source takes "
                    + want + ": update the call site (or the kernel)");
        }
    }

    /** cuda-kernels/ of the source tree, from the module's directory (where Maven runs the tests). */
    private static Path sources() {
        Path dir = Path.of("").toAbsolutePath();
        for (Path p = dir; p != null; p = p.getParent()) {
            Path k = p.resolve("cuda-kernels");
            if (Files.isDirectory(k.resolve("cuda")) && Files.isDirectory(k.resolve("portable"))) {
                return k;
            }
        }
        throw new IllegalStateException("no cuda-kernels/{cuda,portable} above " + dir);
    }
}
