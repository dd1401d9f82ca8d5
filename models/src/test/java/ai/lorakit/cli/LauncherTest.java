package ai.lorakit.cli;

import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the {@code ./lorakit} launcher (run on this build's class path through LORAKIT_CLASSPATH): no
 * incubator-module warning on stderr while lorakit's own stderr lines and exit codes pass through unchanged, and a
 * heap cap that grows with the model, the batch and full fine-tuning, overridable with LORAKIT_HEAP.
 */
class LauncherTest {

    static final Path LAUNCHER = Path.of("..", "lorakit").toAbsolutePath().normalize();

    record Run(int code, String out, String err) {
    }

    static Run launch(Map<String, String> env, String... args) throws IOException, InterruptedException {
        List<String> cmd = new ArrayList<>(List.of("bash", LAUNCHER.toString()));
        cmd.addAll(List.of(args));
        ProcessBuilder pb = new ProcessBuilder(cmd);
        pb.environment().put("LORAKIT_CLASSPATH", System.getProperty("java.class.path"));
        pb.environment().putAll(env);
        Path err = Files.createTempFile("lorakit-launcher", ".err");
        pb.redirectError(err.toFile());
        Process p = pb.start();
        p.getOutputStream().close();
        String out = new String(p.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        assertTrue(p.waitFor(120, TimeUnit.SECONDS), "launcher did not exit");
        Thread.sleep(50);   // the stderr filter may write its last bytes just after java exits
        String e = Files.readString(err);
        Files.delete(err);
        return new Run(p.exitValue(), out, e);
    }

    @Test
    void noIncubatorWarningAndExitCodesAndStderrPassThrough() throws IOException, InterruptedException {
        Run v = launch(Map.of(), "--version");
        assertEquals(0, v.code(), v.toString());
        assertTrue(v.out().startsWith("lorakit "), v.toString());
        assertEquals("", v.err(), "stderr must be empty (no incubator warning): " + v);

        Run bad = launch(Map.of(), "bogus");
        assertEquals(2, bad.code(), bad.toString());
        assertEquals("lorakit: unknown command 'bogus'; try 'lorakit --help'\n", bad.err(), bad.toString());

        // the JVM does print the warning without the launcher's filter: the filter is what removes it
        Process raw = new ProcessBuilder(Path.of(System.getProperty("java.home"), "bin", "java").toString(),
                "--add-modules", "jdk.incubator.vector", "-version").redirectErrorStream(true).start();
        String rawOut = new String(raw.getInputStream().readAllBytes(), StandardCharsets.UTF_8);
        raw.waitFor();
        assertTrue(rawOut.contains("WARNING: Using incubator modules: jdk.incubator.vector"), rawOut);
    }

    private static long heapMiB(String... args) throws IOException, InterruptedException {
        Run r = launch(Map.of("LORAKIT_DRY_RUN", "1"), args);
        assertEquals(0, r.code(), r.toString());
        Matcher m = Pattern.compile(" -Xmx(\\d+)m ").matcher(r.out());
        assertTrue(m.find(), r.out());
        return Long.parseLong(m.group(1));
    }

    @Test
    void heapCapGrowsWithModelBatchFullFineTuningAndBf16() throws IOException, InterruptedException {
        long small = heapMiB("train", "--init", "random", "--n-layer", "2", "--n-embd", "64", "--batch", "1");
        long wide = heapMiB("train", "--init", "random", "--n-layer", "12", "--n-embd", "768", "--batch", "1");
        long batch = heapMiB("train", "--init", "random", "--n-layer", "12", "--n-embd", "768", "--batch", "16");
        long full = heapMiB("train", "--init", "random", "--method", "full", "--n-layer", "12", "--n-embd", "768",
                "--batch", "1");
        assertEquals(256, small, "tiny jobs get the floor");
        assertTrue(wide > small && batch > wide && full > wide, small + " " + wide + " " + batch + " " + full);
        // 12 x 768 has ~85 M parameters: full fine-tuning keeps 16 bytes each (W, grad, 2 AdamW moments)
        assertTrue(full >= 85L * 16, "full fine-tuning heap " + full);
        // a Llama-family config (num_hidden_layers, hidden_size ...) is sized from its own keys, not GPT-2's defaults:
        // the 4 x 192 default-llama gets the cap of the 4 x 192 GPT-2 default, far below a 12 x 768 model's
        String res = Path.of("src/main/resources/ai/lorakit/models").toAbsolutePath() + "/";
        long gpt2 = heapMiB("train", "--model", res + "default");
        long llama = heapMiB("train", "--model", res + "default-llama");
        long llamaFull = heapMiB("train", "--method", "full", "--model", res + "default-llama");
        assertEquals(gpt2, llama, "default-llama vs default");
        assertTrue(llamaFull < full, "default-llama full fine-tuning " + llamaFull + " vs 12 x 768 " + full);
        // --precision bf16 keeps the staged adapters' buffers on the heap too (a bf16 copy of W, the input again with
        // r + 1 columns, DoRA's pre-rescale output): a DoRA run on the default model OOMed in 352 MiB without them
        long bf16 = heapMiB("train", "--method", "dora", "--precision", "bf16", "--model", res + "default");
        long vera = heapMiB("train", "--method", "vera", "--precision", "bf16", "--model", res + "default");
        assertTrue(bf16 >= gpt2 + 128 && vera > bf16, "bf16 " + bf16 + ", VeRA r 256 " + vera + " vs fp32 " + gpt2);
        Run override = launch(Map.of("LORAKIT_DRY_RUN", "1", "LORAKIT_HEAP", "3g"), "train");
        assertTrue(override.out().contains(" -Xmx3g "), override.out());
        assertFalse(override.out().contains("-Xmx256m"), override.out());
    }
}
