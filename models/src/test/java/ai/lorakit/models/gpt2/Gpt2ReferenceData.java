package ai.lorakit.models.gpt2;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;

import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Reads the PyTorch GPT-2 reference written by {@code ci/reference/gpt2_reference.py} (see ci/reference/README.md,
 * section "GPT-2"): the tiny HF checkpoint and the expected_*.safetensors dumps (tokens I64 [B,T+1], logits
 * [B,T,V], loss [], adapter tensors, grad.&lt;name&gt;). The Llama family's reference (llama_reference.py) uses the
 * same file layout and these helpers.
 */
public final class Gpt2ReferenceData {

    private Gpt2ReferenceData() {
    }

    /** ci/reference/gpt2 seen from the module directory (Maven's working directory for tests), or a failure. */
    static Path dir() {
        for (Path p : List.of(Path.of("..", "ci", "reference", "gpt2"), Path.of("ci", "reference", "gpt2"))) {
            if (Files.isRegularFile(p.resolve("tiny").resolve("model.safetensors"))) {
                return p;
            }
        }
        return fail("GPT-2 reference not found: expected ../ci/reference/gpt2/tiny/model.safetensors relative to "
                + Path.of("").toAbsolutePath() + ". Regenerate it from the repository root with "
                + "/usr/bin/python3 ci/reference/gpt2_reference.py");
    }

    public static SafetensorsFile open(String file) {
        return open(dir().resolve(file));
    }

    /** A reference file; a failure naming the regeneration command when it is missing. */
    public static SafetensorsFile open(Path p) {
        if (!Files.isRegularFile(p)) {
            fail("missing reference file " + p.toAbsolutePath()
                    + "; regenerate with /usr/bin/python3 ci/reference/"
                    + (p.toString().contains("llama") ? "llama_reference.py" : "gpt2_reference.py"));
        }
        try {
            return SafetensorsFile.open(p);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** tokens [B, T+1] as windows. */
    public static int[][] windows(SafetensorsFile f) {
        long[] shape = f.info("tokens").shape();
        int b = (int) shape[0];
        int t1 = (int) shape[1];
        int[] flat = f.ints("tokens");
        int[][] w = new int[b][];
        for (int i = 0; i < b; i++) {
            w[i] = Arrays.copyOfRange(flat, i * t1, (i + 1) * t1);
        }
        return w;
    }

    public static double loss(SafetensorsFile f) {
        return f.floats("loss")[0];
    }

    /** Asserts |actual - ref| within tol (a scalar); returns the absolute error. */
    public static double assertScalar(String what, double actual, double ref, Tolerance tol) {
        Tolerance.Result r = tol.compare(what, new float[]{(float) actual}, new double[]{ref});
        assertTrue(r.ok(), r.describe());
        return r.maxAbsDiff();
    }

    /** Compares the tensor with the reference tensor {@code name}; asserts the shape, returns the value check. */
    public static Tolerance.Result compareTensor(String what, Tensor actual, SafetensorsFile f, String name, Tolerance tol) {
        assertTrue(f.contains(name), what + ": reference has no tensor '" + name + "'");
        assertArrayEquals(f.info(name).intShape(), actual.shape(),
                what + ": shape " + Arrays.toString(actual.shape()) + " vs reference "
                        + Arrays.toString(f.info(name).shape()));
        return tol.compare(what, actual.backend().download(actual), f.floats(name));
    }

    /**
     * Copies the reference's adapter tensors into the model's adapter parameters of the same name (PEFT names
     * without base_model.model., e.g. transformer.h.0.attn.c_attn.lora_A) and returns the names copied.
     */
    public static List<String> loadAdapters(Backend backend, List<Parameter> params, SafetensorsFile f) {
        List<String> copied = new ArrayList<>();
        for (Parameter p : params) {
            if (p.role() != Parameter.Role.LORA_A && p.role() != Parameter.Role.LORA_B
                    && p.role() != Parameter.Role.MAGNITUDE) {
                continue;
            }
            assertTrue(f.contains(p.name()), "reference has no adapter tensor for parameter " + p.name());
            assertArrayEquals(f.info(p.name()).intShape(), p.value().shape(), p.name() + ": shape");
            try (Tensor t = backend.upload(f.floats(p.name()), p.value().shape())) {
                backend.copy(t, p.value());
            }
            copied.add(p.name());
        }
        return copied;
    }
}
