package ai.lorakit.cli;

import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@code lorakit info} lists the backends with reasons and MPI's and NCCL's availability (available with a
 * version, or unavailable with the reason), help lists every command and --lr's per-method defaults with their
 * source, and bad commands exit 2 with one line.
 */
class MainTest {

    @Test
    void infoListsEveryBackend() {
        CliRun r = CliRun.of("info");
        assertEquals(0, r.code());
        for (String b : new String[]{"cuda-ffm", "cuda-jcuda", "opencl", "cpu"}) {
            assertTrue(r.out().contains(b), r.out());
        }
        assertTrue(r.out().lines().anyMatch(l -> l.contains("cpu") && l.contains("available") && !l.contains("unavailable")), r.out());
        String mpi = r.out().lines().filter(l -> l.startsWith("  MPI   ")).findFirst().orElseThrow(() -> new AssertionError(r.out()));
        assertTrue(mpi.matches(" {2}MPI {3}(available: .*MPI.*; not launched by mpirun/srun: single process"
                + "|unavailable: .*(mpicc|libmpi).*)"), mpi);
        // NCCL has one line, in the data-parallel section after MPI
        assertEquals(1, r.out().lines().filter(l -> l.contains("NCCL")).count(), r.out());
        String nccl = r.out().lines().filter(l -> l.startsWith("  NCCL  ")).findFirst().orElseThrow(() -> new AssertionError(r.out()));
        assertTrue(nccl.matches(" {2}NCCL {2}(available: NCCL \\d+\\.\\d+\\.\\d+ .* on the device"
                + "|unavailable: no libnccl.so.2 loads \\(tried .* on the host over MPI)"), nccl);
        assertTrue(r.out().indexOf("data-parallel training") < r.out().indexOf("  MPI   "), r.out());
    }

    @Test
    void helpListsEveryCommand() {
        CliRun r = CliRun.of("--help");
        assertEquals(0, r.code(), r.toString());
        for (String c : new String[]{"train", "eval", "generate", "merge", "export-peft", "import-peft", "info"}) {
            assertTrue(r.out().contains(c), c + " missing in\n" + r.out());
        }
        CliRun none = CliRun.of();
        assertEquals(2, none.code());
        assertTrue(none.out().contains("Usage: lorakit"), none.toString());
        CliRun train = CliRun.of("train", "--help");
        assertEquals(0, train.code());
        for (String o : new String[]{"--method", "--target", "--resume", "--grad-accum", "--lora-plus-ratio", "--init"}) {
            assertTrue(train.out().contains(o), o + " missing in train --help");
        }
        String flat = train.out().replaceAll("\\s+", " ");         // picocli wraps the descriptions
        assertTrue(flat.contains("benchmarks/results/variants-brown.md"), "--lr's help must say where its defaults"
                + " come from:\n" + train.out());
        for (Method m : Method.values()) {                          // the help states the defaults the CLI uses
            String lr = String.format(java.util.Locale.ROOT, "%.0e", m.defaultLr()).replace("e-0", "e-");
            assertTrue(java.util.regex.Pattern.compile("(?<![\\w-])" + m.cliName() + " " + lr + "(?![\\w-])")
                    .matcher(flat).find(), m.cliName() + " " + lr + " missing in --lr's help:\n" + train.out());
        }
    }

    @Test
    void unknownCommandsAndOptionsExit2WithOneLine() {
        CliRun r = CliRun.of("frobnicate");
        assertEquals(2, r.code());
        assertEquals(1, r.err().lines().count(), r.err());
        assertTrue(r.err().contains("unknown command 'frobnicate'"));
        CliRun o = CliRun.of("info", "--bogus");
        assertEquals(2, o.code());
        assertEquals(1, o.err().lines().count(), o.err());
        assertTrue(o.err().contains("--bogus"));
        CliRun t = CliRun.of("train", "--method", "qlora");
        assertEquals(2, t.code());
        assertEquals(1, t.err().lines().count(), t.err());
        assertTrue(t.err().contains("unknown method 'qlora'"), t.err());
    }
}
