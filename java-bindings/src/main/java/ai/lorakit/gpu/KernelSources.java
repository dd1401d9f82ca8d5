package ai.lorakit.gpu;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.net.JarURLConnection;
import java.net.URISyntaxException;
import java.net.URL;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.Enumeration;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.TreeMap;
import java.util.TreeSet;
import java.util.jar.JarEntry;
import java.util.jar.JarFile;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The single-source kernels (cuda-kernels/kcompat.h + portable/*.kc, packaged by java-bindings under
 * {@value #RESOURCE_DIR}) and, where nvcc built it, the CUDA fatbin. Every {@code .kc} in that folder is found
 * by listing it (a new kernel file needs no Java change); every {@code KERNEL void name(} entry point is indexed
 * by name. An OpenCL device builds the program of one file as the text of kcompat.h followed by the file's text
 * ({@link #openClProgram}), as TOOLCHAIN.md describes.
 */
public final class KernelSources {
    /** Classpath folder of kcompat.h and the .kc files. */
    public static final String RESOURCE_DIR = "ai/lorakit/kernels/src/";
    public static final String HEADER = "kcompat.h";
    /** Classpath location of the CUDA fatbin (present only when nvcc built it). */
    public static final String FATBIN = "ai/lorakit/kernels/lorakit.fatbin";

    private static final Pattern ENTRY = Pattern.compile("\\bKERNEL\\s+void\\s+(\\w+)\\s*\\(");
    private static volatile KernelSources portable;

    private final String header;
    private final Map<String, String> files;        // file name -> text, sorted by name
    private final Map<String, String> kernelFile;   // entry point -> file name

    private KernelSources(String header, Map<String, String> files) {
        this.header = header;
        this.files = Collections.unmodifiableMap(new TreeMap<>(files));
        Map<String, String> index = new LinkedHashMap<>();
        for (Map.Entry<String, String> f : this.files.entrySet()) {
            Matcher m = ENTRY.matcher(f.getValue());
            while (m.find()) {
                String prev = index.putIfAbsent(m.group(1), f.getKey());
                if (prev != null) {
                    throw new GpuException("kernel sources: entry point " + m.group(1) + " is defined in both "
                            + prev + " and " + f.getKey());
                }
            }
        }
        this.kernelFile = Collections.unmodifiableMap(index);
    }

    /** Sources given directly (tests, tools): kcompat.h text and file name -> kernel text. */
    public static KernelSources of(String header, Map<String, String> files) {
        return new KernelSources(header, files);
    }

    /** The packaged portable kernels (read once per JVM). */
    public static KernelSources portable() {
        KernelSources p = portable;
        if (p == null) {
            synchronized (KernelSources.class) {
                p = portable;
                if (p == null) {
                    p = loadPortable();
                    portable = p;
                }
            }
        }
        return p;
    }

    public String header() {
        return header;
    }

    /** File name -> kernel text, sorted by file name. */
    public Map<String, String> files() {
        return files;
    }

    /** Every entry point, sorted. */
    public Set<String> kernelNames() {
        return Collections.unmodifiableSet(new TreeSet<>(kernelFile.keySet()));
    }

    /** The file that defines {@code kernel}, or null. */
    public String fileOf(String kernel) {
        return kernelFile.get(kernel);
    }

    /** OpenCL C program text of one file: kcompat.h, then the file (with a #line so build logs name it). */
    public String openClProgram(String file) {
        String text = files.get(file);
        if (text == null) {
            throw new GpuException("kernel sources: no file " + file + " (have " + files.keySet() + ")");
        }
        return header + "\n#line 1 \"" + file + "\"\n" + text;
    }

    /** The CUDA fatbin bytes, when the build produced one. */
    public static Optional<byte[]> fatbin() {
        try (InputStream in = KernelSources.class.getClassLoader().getResourceAsStream(FATBIN)) {
            return in == null ? Optional.empty() : Optional.of(in.readAllBytes());
        } catch (IOException e) {
            throw new UncheckedIOException("reading " + FATBIN + " from the classpath", e);
        }
    }

    // ---------------------------------------------------------------- classpath listing

    private static KernelSources loadPortable() {
        ClassLoader cl = KernelSources.class.getClassLoader();
        URL headerUrl = cl.getResource(RESOURCE_DIR + HEADER);
        if (headerUrl == null) {
            throw new GpuException("kernel sources: " + RESOURCE_DIR + HEADER + " is not on the classpath (java-bindings"
                    + " packages cuda-kernels/kcompat.h and portable/*.kc there)");
        }
        Map<String, String> files = new TreeMap<>();
        try {
            for (String name : listKc(headerUrl)) {
                files.put(name, read(cl, RESOURCE_DIR + name));
            }
            if (files.isEmpty()) {
                throw new GpuException("kernel sources: no .kc file next to " + headerUrl);
            }
            return new KernelSources(read(cl, RESOURCE_DIR + HEADER), files);
        } catch (IOException e) {
            throw new UncheckedIOException("kernel sources: listing " + RESOURCE_DIR + " (" + headerUrl + ")", e);
        }
    }

    private static Set<String> listKc(URL headerUrl) throws IOException {
        Set<String> names = new TreeSet<>();
        switch (headerUrl.getProtocol()) {
            case "file" -> {
                Path dir;
                try {
                    dir = Path.of(headerUrl.toURI()).getParent();
                } catch (URISyntaxException e) {
                    throw new IOException("bad resource URL " + headerUrl, e);
                }
                try (Stream<Path> s = Files.list(dir)) {
                    s.map(p -> p.getFileName().toString()).filter(n -> n.endsWith(".kc")).forEach(names::add);
                }
            }
            case "jar" -> {
                JarURLConnection c = (JarURLConnection) headerUrl.openConnection();
                c.setUseCaches(false);
                try (JarFile jar = c.getJarFile()) {
                    Enumeration<JarEntry> en = jar.entries();
                    while (en.hasMoreElements()) {
                        String n = en.nextElement().getName();
                        if (n.startsWith(RESOURCE_DIR) && n.endsWith(".kc") && n.indexOf('/', RESOURCE_DIR.length()) < 0) {
                            names.add(n.substring(RESOURCE_DIR.length()));
                        }
                    }
                }
            }
            default -> throw new IOException("cannot list kernel sources behind a '" + headerUrl.getProtocol()
                    + "' URL: " + headerUrl);
        }
        return names;
    }

    private static String read(ClassLoader cl, String path) throws IOException {
        try (InputStream in = cl.getResourceAsStream(path)) {
            if (in == null) {
                throw new IOException(path + " is not on the classpath");
            }
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
    }
}
