package ai.lorakit.cli;

import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.adapters.io.SafetensorsFile;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.train.Checkpoint;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TinyGpt2;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.File;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves {@code mpirun -np 2 lorakit train} on Open MPI (shared memory and loopback), each rank a JVM with one CPU
 * thread, on the tiny GPT-2:
 * <ul>
 *   <li>2 ranks x batch 2 for 20 steps give the adapter of one process x batch 4 to 1e-6 and of one process x batch 2
 *       x accumulation 2 bit for bit; only rank 0 prints and writes;</li>
 *   <li>a rank killed (SIGKILL) after a checkpoint ends the job with mpirun's message naming rank 1, the checkpoint
 *       stays intact, and {@code --resume} under mpirun finishes the run to the uninterrupted adapter, bit for bit;</li>
 *   <li>a rank that fails with an error prints "rank 1 of 2 failed: <why>" and MPI_Abort stops the other; the job
 *       exits with the error's code.</li>
 * </ul>
 * Skipped where mpirun is absent, unless -Dlorakit.test.requireMpi=true (ci/test.sh installs Open MPI and sets it).
 */
class MpiTrainTest {

    @TempDir
    static Path tmp;
    static Path model;
    static String data;

    @BeforeAll
    static void fixtures() throws IOException {
        boolean mpirun = onPath("mpirun");
        if (Boolean.getBoolean("lorakit.test.requireMpi")) {
            assertTrue(mpirun, "-Dlorakit.test.requireMpi=true but mpirun is not on the PATH (apt-get install openmpi-bin)");
        }
        assumeTrue(mpirun, "mpirun not installed");
        try (CpuBackend be = new CpuBackend()) {
            model = TinyGpt2.save(be, tmp.resolve("model"), 1);
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    private static boolean onPath(String exe) {
        for (String d : System.getenv().getOrDefault("PATH", "").split(File.pathSeparator)) {
            if (Files.isExecutable(Path.of(d, exe))) {
                return true;
            }
        }
        return false;
    }

    /** 20 steps of global batch {@code batch}, LoRA r 4, constant LR, checkpoints every 5 steps. */
    private static List<String> trainArgs(Path out, int batch, int accum) {
        return new ArrayList<>(List.of("train", "--model", model.toString(), "--data", data, "--backend", "cpu",
                "--method", "lora", "--r", "4", "--target", "c_attn,c_fc", "--steps", "20", "--batch",
                Integer.toString(batch), "--grad-accum", Integer.toString(accum), "--seq-len", "32", "--lr", "5e-3",
                "--schedule", "constant", "--warmup", "2", "--eval-every", "0", "--eval-batches", "2",
                "--log-every", "5", "--checkpoint-every", "5", "--out", out.toString()));
    }

    private record Run(int code, String output) {
    }

    /** mpirun -np 2 of MpiRankMain (mode, then the train arguments); stdout and stderr together. */
    private static Run mpirun(String mode, List<String> args) throws Exception {
        List<String> cmd = new ArrayList<>(List.of("mpirun", "--allow-run-as-root", "--oversubscribe", "-np", "2",
                Path.of(System.getProperty("java.home"), "bin", "java").toString(), "-XX:ActiveProcessorCount=1",
                "-XX:TieredStopAtLevel=1", "-XX:+UseSerialGC", "--enable-native-access=ALL-UNNAMED", "--add-modules",
                "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), MpiRankMain.class.getName(), mode));
        cmd.addAll(args);
        Process p = new ProcessBuilder(cmd).redirectErrorStream(true).start();
        byte[] out = p.getInputStream().readAllBytes();
        if (!p.waitFor(180, TimeUnit.SECONDS)) {
            p.destroyForcibly();
            fail("mpirun did not finish in 180 s:\n" + new String(out, StandardCharsets.UTF_8));
        }
        return new Run(p.exitValue(), new String(out, StandardCharsets.UTF_8));
    }

    private static SafetensorsFile adapter(Path run) throws IOException {
        return SafetensorsFile.open(run.resolve("adapter").resolve(PeftAdapterIO.WEIGHTS_FILE));
    }

    @Test
    void twoRanksEqualOneProcessAndAKilledRankResumes() throws Exception {
        Path dp = tmp.resolve("dp");
        Run r = mpirun("none", trainArgs(dp, 4, 1));
        assertEquals(0, r.code(), r.output());
        assertEquals(1, r.output().split("data parallel: 2 ranks x 2 windows", -1).length - 1,
                "rank 0 alone prints:\n" + r.output());
        assertTrue(Files.isRegularFile(dp.resolve(MetricsLog.FILE)));

        Path big = tmp.resolve("b4");
        Path accum = tmp.resolve("b2a2");
        CliRun one = CliRun.of(trainArgs(big, 4, 1).toArray(String[]::new));
        assertEquals(0, one.code(), one.toString());
        CliRun acc = CliRun.of(trainArgs(accum, 2, 2).toArray(String[]::new));
        assertEquals(0, acc.code(), acc.toString());
        try (SafetensorsFile a = adapter(dp); SafetensorsFile b = adapter(big); SafetensorsFile c = adapter(accum)) {
            assertFalse(a.names().isEmpty());
            double maxDiff = 0;
            for (String name : a.names()) {
                float[] x = a.floats(name);
                float[] y = b.floats(name);
                for (int i = 0; i < x.length; i++) {
                    maxDiff = Math.max(maxDiff, Math.abs(x[i] - y[i]));
                }
                assertArrayEquals(c.floats(name), x, "2 ranks x 2 vs 1 x 2 x accumulation 2, bit for bit: " + name);
            }
            assertTrue(maxDiff <= 1e-6, "2 ranks x 2 vs 1 x 4: max |diff| " + maxDiff);
        }

        // a rank killed once the step-5 checkpoint exists: the job ends, naming rank 1; the checkpoint survives
        Path killed = tmp.resolve("killed");
        Run k = mpirun("kill-after-checkpoint=5", trainArgs(killed, 4, 1));
        assertNotEquals(0, k.code(), k.output());
        assertTrue(k.output().contains("rank 1") && k.output().contains("signal 9"), k.output());
        Path ckpt = Checkpoint.locate(killed);
        assertNotNull(ckpt, "the last checkpoint must survive:\n" + k.output());
        int at = Checkpoint.readState(ckpt).step();
        assertTrue(at >= 5 && at < 20, "checkpoint at step " + at + " (rank 1 was to die after step 5):\n" + k.output());
        assertFalse(Files.exists(killed.resolve("adapter")), "the run did not finish");

        List<String> resume = trainArgs(killed, 4, 1);
        resume.add("--resume");
        Run again = mpirun("none", resume);
        assertEquals(0, again.code(), again.output());
        assertTrue(again.output().contains("resumed from " + ckpt + " at step " + at), again.output());
        try (SafetensorsFile a = adapter(dp); SafetensorsFile b = adapter(killed)) {
            for (String name : a.names()) {
                assertArrayEquals(a.floats(name), b.floats(name), "resumed under mpirun vs uninterrupted: " + name);
            }
        }
    }

    @Test
    void aRankThatFailsStopsTheJobNamingItself() throws Exception {
        Run r = mpirun("bad-data", trainArgs(tmp.resolve("bad"), 4, 1));
        // mpirun exits with the MPI_Abort code (2: a usage error). Its own "MPI_ABORT was invoked on rank 1" notice is
        // not asserted: Open MPI 4.1.4 sometimes loses it (ORTE_ERROR_LOG ... show_help.c) when the rank exits at once
        assertEquals(2, r.code(), r.output());
        assertTrue(r.output().contains("lorakit train: rank 1 of 2 failed: --data: no such file or folder:"
                + " /nonexistent/data.jsonl"), r.output());
    }
}
