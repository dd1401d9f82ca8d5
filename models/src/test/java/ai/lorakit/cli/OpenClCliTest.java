package ai.lorakit.cli;

import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TinyGpt2;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The CLI on OpenCL, in-process: {@code lorakit info} lists the OpenCL platforms and devices (name, type,
 * compute units, OpenCL version, the P.D selector); train and eval --help show {@code --device}; a bad
 * {@code --device} (with a non-OpenCL backend, empty, or naming no device) exits 2 with one line and leaves no
 * system property behind; and {@code lorakit train --backend opencl --device 0} followed by {@code eval} works
 * end to end on the tiny model, logging the same losses as the same run on cpu (Tolerance.F32; gradient norms
 * 1e-3 relative).
 */
class OpenClCliTest {

    @TempDir
    static Path tmp;
    static Path model;
    static String data;
    static String unavailable;

    @BeforeAll
    static void fixtures() throws IOException {
        unavailable = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean("lorakit.test.requireOpenCl")) {
            assertEquals(null, unavailable, "OpenCL required but unavailable");
        }
        try (CpuBackend be = new CpuBackend()) {
            model = TinyGpt2.save(be, tmp.resolve("model"), 1);
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    @Test
    void infoListsOpenClPlatformsAndDevices() {
        CliRun r = CliRun.of("info");
        assertEquals(0, r.code(), r.toString());
        assertTrue(r.out().contains("OpenCL platforms and devices"), r.out());
        if (unavailable != null) {
            assertTrue(r.out().contains("  none: ") || r.out().contains("unusable"), r.out());
            return;
        }
        assertTrue(r.out().lines().anyMatch(l -> l.startsWith("  platform 0: ")), r.out());
        String dev = r.out().lines().filter(l -> l.startsWith("    [0] 0.0 ")).findFirst().orElse("");
        assertTrue(dev.matches(".*\\b(CPU|GPU|ACCELERATOR|OTHER)\\b.*: \\d+ compute units, OpenCL \\d+\\.\\d+.*"
                + "OpenCL C \\d+\\.\\d+.*"), "device line: '" + dev + "' in\n" + r.out());
    }

    @Test
    void trainAndEvalHelpShowTheDeviceOption() {
        for (String cmd : new String[] {"train", "eval"}) {
            CliRun h = CliRun.of(cmd, "--help");
            assertEquals(0, h.code(), h.toString());
            assertTrue(h.out().contains("--device=<d>") && h.out().contains("P.D"), cmd + " --help:\n" + h.out());
        }
    }

    @Test
    void badDeviceOptionsExit2WithOneLine() {
        String[][] cases = {
                {"cpu", "0", "--device selects an OpenCL device; it applies to --backend opencl or auto, not cpu"},
                {"opencl", " ", "--device must not be empty"},
                {"opencl", "no-such-device-xyz", "no usable device matches 'no-such-device-xyz'"},
                {"auto", "no-such-device-xyz", "--device no-such-device-xyz: "}};
        for (String[] c : cases) {
            if (unavailable != null && !c[0].equals("cpu") && !c[1].isBlank()) {
                continue;   // without OpenCL the message is the runtime's reason instead
            }
            CliRun r = CliRun.of("train", "--model", model.toString(), "--data", data, "--steps", "1", "--batch", "1",
                    "--seq-len", "8", "--backend", c[0], "--device", c[1], "--out", tmp.resolve("bad").toString());
            assertEquals(2, r.code(), r.toString());
            assertEquals(1, r.err().lines().count(), r.err());
            assertTrue(r.err().contains(c[2]), c[2] + " missing in " + r.err());
            assertEquals(null, System.getProperty(OpenClBackend.DEVICE_PROPERTY), "--device leaked its property");
        }
    }

    @Test
    void trainAndEvalOnOpenClLikeOnCpu() throws IOException {
        assumeTrue(unavailable == null, () -> "no OpenCL device: " + unavailable);
        Path onCpu = tmp.resolve("run-cpu");
        Path onCl = tmp.resolve("run-opencl");
        CliRun c = train(onCpu, "--backend", "cpu");
        CliRun o = train(onCl, "--backend", "opencl", "--device", "0");
        assertTrue(o.out().contains("backend opencl"), o.out());
        assertTrue(c.out().contains("backend cpu"), c.out());
        List<JsonNode> mc = MetricsLog.read(onCpu), mo = MetricsLog.read(onCl);
        assertEquals(mc.size(), mo.size(), mo.toString());
        for (String key : new String[] {"loss", "grad_norm", "val_loss"}) {
            float[] rc = series(mc, key), ro = series(mo, key);
            assertFalse(rc.length == 0, key + " logged");
            Tolerance tol = key.equals("grad_norm") ? new Tolerance(1e-5, 1e-3) : Tolerance.F32;
            Tolerance.Result res = tol.compare("train --backend opencl " + key, ro, rc);
            assertTrue(res.ok(), res.describe());
        }
        CliRun e = CliRun.of("eval", "--model", model.toString(), "--adapter", onCl.resolve("adapter").toString(),
                "--data", data, "--seq-len", "16", "--batch", "2", "--eval-batches", "2", "--backend", "opencl",
                "--device", "0");
        assertEquals(0, e.code(), e.toString());
        assertTrue(e.out().contains("validation loss"), e.out());
    }

    private static CliRun train(Path out, String... backend) {
        List<String> a = new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data, "--method", "lora",
                "--steps", "3", "--batch", "2", "--seq-len", "16", "--eval-batches", "2", "--log-every", "1",
                "--lr", "1e-2", "--out", out.toString()));
        a.addAll(List.of(backend));
        CliRun r = CliRun.of(a.toArray(String[]::new));
        assertEquals(0, r.code(), r.toString());
        return r;
    }

    private static float[] series(List<JsonNode> lines, String key) {
        List<Float> v = new ArrayList<>();
        for (JsonNode l : lines) {
            if (l.has(key) && !l.get(key).isNull()) {
                v.add((float) l.get(key).asDouble());
            }
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }
}
