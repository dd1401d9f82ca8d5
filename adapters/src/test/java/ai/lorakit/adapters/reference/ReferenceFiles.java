package ai.lorakit.adapters.reference;

import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Finds and reads the committed PyTorch references of ci/reference/ (made by ci/reference/make_reference.py,
 * described in ci/reference/README.md). A missing file FAILS the test: the references are part of the tree.
 */
final class ReferenceFiles {

    private ReferenceFiles() {
    }

    /** ci/reference of the checkout: Maven runs tests in the module dir (../ci/reference); an IDE may use the root. */
    static Path root() {
        List<Path> tried = new ArrayList<>();
        for (String candidate : new String[] {"../ci/reference", "ci/reference"}) {
            Path p = Path.of(candidate).toAbsolutePath().normalize();
            tried.add(p);
            if (Files.isDirectory(p.resolve("dumps"))) {
                return p;
            }
        }
        return fail("PyTorch reference files not found (tried " + tried + "). They are committed under"
                + " ci/reference/; regenerate with: /usr/bin/python3 ci/reference/make_reference.py");
    }

    /** Opens ci/reference/{@code relative}; fails the test (not skips) if the file is missing or unreadable. */
    static SafetensorsFile open(String relative) {
        Path file = root().resolve(relative);
        if (!Files.isRegularFile(file)) {
            fail("missing PyTorch reference " + file + "; regenerate with: /usr/bin/python3 ci/reference/make_reference.py");
        }
        try {
            return SafetensorsFile.open(file);
        } catch (IOException e) {
            throw new UncheckedIOException("cannot read PyTorch reference " + file, e);
        }
    }

    /** The dump's tensor {@code name} as a new F32 tensor on {@code backend}, with the dump's shape. */
    static Tensor upload(Backend backend, SafetensorsFile f, String name) {
        return backend.upload(f.floats(name), f.info(name).intShape()).named(name);
    }

    /** Copies the dump's tensor {@code name} into {@code dst} (same shape required). */
    static void copyInto(Backend backend, SafetensorsFile f, String name, Tensor dst) {
        assertArrayEquals(f.info(name).intShape(), dst.shape(), "shape of " + name + " in lorakit vs the dump");
        try (Tensor src = upload(backend, f, name)) {
            backend.copy(src, dst);
        }
    }

    /** A metadata value; fails if absent. */
    static String meta(SafetensorsFile f, String key) {
        String v = f.metadata().get(key);
        if (v == null) {
            fail(f.path() + ": metadata key " + key + " missing");
        }
        return v;
    }

    static int metaInt(SafetensorsFile f, String key) {
        return Integer.parseInt(meta(f, key));
    }

    static float metaFloat(SafetensorsFile f, String key) {
        return Float.parseFloat(meta(f, key));
    }

    /** Asserts {@code actual} equals the dump's {@code refName} within Tolerance.F32 (and has its shape). */
    static void assertClose(String what, SafetensorsFile f, String refName, Tensor actual) {
        assertArrayEquals(f.info(refName).intShape(), actual.shape(), what + ": shape vs the dump's " + refName);
        assertClose(what, f.floats(refName), actual.backend().download(actual));
    }

    static void assertClose(String what, float[] ref, float[] actual) {
        Tolerance.Result r = Tolerance.F32.compare(what, actual, ref);
        assertTrue(r.ok(), r.describe());
    }
}
