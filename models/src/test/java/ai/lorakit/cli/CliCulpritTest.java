package ai.lorakit.cli;

import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.Safetensors;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.adapters.io.TensorData;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.train.TinyGpt2;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.TimeUnit;
import java.util.function.BiFunction;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, through the CLI entry point, that the exit code and the one stderr line name the culprit: NaN/Inf in a
 * base checkpoint is exit 2 at load naming file and tensor (for every command that loads a model); an adapter whose
 * merge overflows is exit 2 naming the adapter, not "internal error"; the Java heap running out is exit 1 with the
 * remedy; {@code --version} prints the version, the commit this build was made from and the available backends.
 */
class CliCulpritTest {

    @TempDir
    static Path tmp;
    static Path model;
    static String data;

    @BeforeAll
    static void fixtures() throws IOException {
        try (CpuBackend be = new CpuBackend()) {
            model = TinyGpt2.save(be, tmp.resolve("model"), 1);
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    /** Rewrites the F32 tensors of a safetensors file through {@code edit(name, values)}, metadata kept. */
    static void rewrite(Path file, BiFunction<String, float[], float[]> edit) throws IOException {
        Map<String, TensorData> out = new TreeMap<>();
        Map<String, String> meta;
        try (SafetensorsFile sf = SafetensorsFile.open(file)) {
            meta = sf.metadata();
            for (String n : sf.names()) {
                out.put(n, TensorData.f32(edit.apply(n, sf.floats(n)), sf.info(n).shape()));
            }
        }
        Safetensors.write(file, out, meta);
    }

    private static Path copyOfModel(String name) throws IOException {
        Path dir = tmp.resolve(name);
        Files.createDirectories(dir);
        try (var files = Files.list(model)) {
            for (Path f : files.toList()) {
                Files.copy(f, dir.resolve(f.getFileName()));
            }
        }
        return dir;
    }

    private static void oneLine(CliRun r, int code, String... fragments) {
        assertEquals(code, r.code(), r.toString());
        assertEquals(1, r.err().lines().count(), "exactly one stderr line:\n" + r);
        assertFalse(r.err().contains("internal error") || r.err().contains("\tat "), r.toString());
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing in:\n" + r);
        }
    }

    @Test
    void nonFiniteBaseWeightsAreExit2AtLoadNamingFileAndTensor() throws IOException {
        Path bad = copyOfModel("nan-model");
        String tensor = "transformer.h.0.attn.c_attn.weight";
        rewrite(bad.resolve("model.safetensors"), (n, v) -> {
            if (n.equals(tensor)) {
                v[5] = Float.NaN;
                v[9] = Float.NEGATIVE_INFINITY;
            }
            return v;
        });
        String file = bad.resolve("model.safetensors").toString();
        String b = bad.toString();
        oneLine(CliRun.of("eval", "--model", b, "--data", data, "--backend", "cpu", "--seq-len", "8", "--batch", "1"),
                2, file, tensor, "2 non-finite values", "element 5 = NaN");
        oneLine(CliRun.of("train", "--model", b, "--data", data, "--backend", "cpu", "--steps", "1", "--batch", "1",
                "--seq-len", "8", "--out", tmp.resolve("nan-run").toString()), 2, file, tensor);
        oneLine(CliRun.of("generate", "--model", b, "--backend", "cpu", "--prompt", "a", "--max-tokens", "2"),
                2, file, tensor);
        assertFalse(Files.exists(tmp.resolve("nan-run").resolve("adapter")), "nothing written for a refused base");
    }

    @Test
    void anAdapterWhoseMergeOverflowsIsExit2NamingTheAdapter() throws IOException {
        Path run = tmp.resolve("lora");
        CliRun t = CliRun.of("train", "--model", model.toString(), "--data", data, "--backend", "cpu", "--steps", "1",
                "--batch", "1", "--seq-len", "8", "--out", run.toString());
        assertEquals(0, t.code(), t.toString());
        Path adapter = run.resolve("adapter");
        // finite A and B (the loader accepts them) whose product overflows fp32: W + s*B*A = Inf
        rewrite(adapter.resolve(PeftAdapterIO.WEIGHTS_FILE), (n, v) -> {
            java.util.Arrays.fill(v, 3e38f);
            return v;
        });
        Path out = tmp.resolve("merged");
        CliRun m = CliRun.of("merge", "--model", model.toString(), "--adapter", adapter.toString(), "--out",
                out.toString(), "--backend", "cpu");
        oneLine(m, 2, "NaNs detected in the merged weights", "seems to be broken");
        assertFalse(Files.exists(out.resolve("model.safetensors")), "a refused merge writes no checkpoint");
    }

    @Test
    void versionPrintsVersionCommitAndBackends() throws IOException, InterruptedException {
        CliRun r = CliRun.of("--version");
        assertEquals(0, r.code(), r.toString());
        BuildInfo.Info info = BuildInfo.read();
        assertFalse(info.version().equals("unknown"), "build.properties missing from the build: " + info);
        assertTrue(r.out().startsWith("lorakit " + info.version() + "\n"), r.toString());
        String head = git("rev-parse", "--short=12", "HEAD");
        if (head != null) {   // built from a checkout: the embedded commit is this checkout's HEAD
            assertTrue(info.commit().startsWith(head), "embedded " + info.commit() + " vs HEAD " + head);
            assertTrue(r.out().contains("commit: " + info.commit()), r.toString());
        }
        for (BackendRegistry.Status s : BackendRegistry.list()) {
            String line = r.out().lines().filter(l -> l.startsWith("backends: ")).findFirst().orElseThrow();
            String avail = line.contains(" (") ? line.substring(0, line.indexOf(" (")) : line;
            assertEquals(s.available(), avail.contains(s.name()), s + " in: " + line);
        }
    }

    private static String git(String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("git"));
        cmd.addAll(List.of(args));
        try {
            Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
            String s = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8).strip();
            return p.waitFor(10, TimeUnit.SECONDS) && p.exitValue() == 0 ? s : null;
        } catch (IOException e) {
            return null;   // no git on this machine
        }
    }

    @Test
    void runningOutOfJavaHeapIsExit1WithTheRemedy() throws IOException, InterruptedException {
        // a 12-layer x 768 random model cannot fit a 48 MiB heap: the real CLI in a fresh JVM
        Process p = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "-Xmx48m", "--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED",
                "-cp", System.getProperty("java.class.path"), Main.class.getName(),
                "train", "--method", "full", "--init", "random", "--n-layer", "12", "--n-embd", "768",
                "--n-head", "12", "--data", data, "--backend", "cpu", "--steps", "1", "--batch", "1",
                "--seq-len", "8", "--out", tmp.resolve("oom").toString()).start();
        p.getOutputStream().close();
        byte[] out = p.getInputStream().readAllBytes();
        String err = new String(p.getErrorStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "the CLI did not exit");
        assertEquals(1, p.exitValue(), err + new String(out, StandardCharsets.UTF_8));
        assertTrue(err.contains("out of Java heap memory") && err.contains("--batch")
                && err.contains("LORAKIT_HEAP"), err);
        assertFalse(err.contains("\tat ") || err.contains("Exception in thread"), err);
    }
}
