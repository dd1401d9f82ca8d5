package ai.lorakit.gpu.contract;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.fail;

/**
 * One committed PyTorch reference of ci/reference/llama_ops (made by ci/reference/llama_ops_reference.py): the
 * F32 tensors and string metadata of a safetensors file as that script writes it (compact JSON header, F32 only).
 * java-bindings cannot use the adapters module's reader (adapters depends on this module), so this test-only
 * reader parses just that subset and fails on anything else. A missing file FAILS the test.
 */
public final class RefDump {
    private static final Pattern TENSOR = Pattern.compile(
            "\"([^\"]+)\":\\{\"dtype\":\"([A-Z0-9]+)\",\"shape\":\\[([0-9,]*)\\],\"data_offsets\":\\[(\\d+),(\\d+)\\]\\}");
    private static final Pattern META_ENTRY = Pattern.compile("\"([^\"]+)\":\"([^\"]*)\"");

    private final Path path;
    private final Map<String, float[]> tensors = new HashMap<>();
    private final Map<String, int[]> shapes = new HashMap<>();
    private final Map<String, String> meta = new HashMap<>();

    private RefDump(Path path) throws IOException {
        this.path = path;
        byte[] raw = Files.readAllBytes(path);
        ByteBuffer bb = ByteBuffer.wrap(raw).order(ByteOrder.LITTLE_ENDIAN);
        int n = (int) bb.getLong(0);
        String header = new String(raw, 8, n, StandardCharsets.UTF_8);
        int metaStart = header.indexOf("\"__metadata__\":{");
        if (metaStart >= 0) {
            String m = header.substring(metaStart + 16, header.indexOf('}', metaStart));
            Matcher mm = META_ENTRY.matcher(m);
            while (mm.find()) {
                meta.put(mm.group(1), mm.group(2));
            }
        }
        Matcher t = TENSOR.matcher(header);
        while (t.find()) {
            if (!t.group(2).equals("F32")) {
                fail(path + ": tensor " + t.group(1) + " is " + t.group(2) + "; this reader takes F32 only");
            }
            String[] dims = t.group(3).isEmpty() ? new String[0] : t.group(3).split(",");
            int[] shape = new int[dims.length];
            for (int i = 0; i < dims.length; i++) {
                shape[i] = Integer.parseInt(dims[i]);
            }
            long b = Long.parseLong(t.group(4)), e = Long.parseLong(t.group(5));
            float[] v = new float[(int) ((e - b) / 4)];
            for (int i = 0; i < v.length; i++) {
                v[i] = bb.getFloat((int) (8 + n + b + 4L * i));
            }
            tensors.put(t.group(1), v);
            shapes.put(t.group(1), shape);
        }
    }

    /** ci/reference/llama_ops/{@code name}.safetensors of this checkout (tests run in the module dir). */
    public static RefDump open(String name) {
        List<Path> tried = new ArrayList<>();
        for (String root : new String[] {"../ci/reference/llama_ops", "ci/reference/llama_ops"}) {
            Path p = Path.of(root, name + ".safetensors").toAbsolutePath().normalize();
            tried.add(p);
            if (Files.isRegularFile(p)) {
                try {
                    return new RefDump(p);
                } catch (IOException e) {
                    throw new UncheckedIOException("cannot read PyTorch reference " + p, e);
                }
            }
        }
        return fail("missing PyTorch reference (tried " + tried + "); regenerate with:"
                + " /usr/bin/python3 ci/reference/llama_ops_reference.py");
    }

    public float[] get(String name) {
        float[] v = tensors.get(name);
        if (v == null) {
            fail(path + ": no tensor " + name + " (has " + tensors.keySet() + ")");
        }
        return v;
    }

    public int[] shape(String name) {
        get(name);
        return shapes.get(name).clone();
    }

    public String meta(String key) {
        String v = meta.get(key);
        if (v == null) {
            fail(path + ": metadata key " + key + " missing");
        }
        return v;
    }

    public int metaInt(String key) {
        return Integer.parseInt(meta(key));
    }

    public double metaDouble(String key) {
        return Double.parseDouble(meta(key));
    }
}
