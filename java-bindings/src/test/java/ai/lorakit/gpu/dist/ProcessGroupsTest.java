package ai.lorakit.gpu.dist;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Optional;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves the choice of process group without launching anything: the launchers' variables (world size, node-local
 * rank) are recognised, and a plain run is a single process that loads no MPI library; the single process's
 * collectives are identities; a launched process whose MPI cannot load gets an error naming the launcher and the
 * missing library with the remedy; and the shim built by mpicc is in the jar where mpicc was installed.
 */
class ProcessGroupsTest {

    /** Set by ci/test.sh, which installs Open MPI: the shim must then be in the build. */
    static final String REQUIRE_MPI = "lorakit.test.requireMpi";

    @Test
    void launchersAreRecognisedFromTheirVariables() {
        assertEquals(Optional.empty(), Launch.detect(Map.of("PATH", "/usr/bin", "SLURM_JOB_ID", "7")));
        assertEquals(new Launch("mpirun", "OMPI_COMM_WORLD_SIZE=4", 4),
                Launch.detect(Map.of("OMPI_COMM_WORLD_SIZE", "4", "PMIX_RANK", "1")).orElseThrow());
        assertEquals(new Launch("srun", "SLURM_STEP_NUM_TASKS=16", 16),
                Launch.detect(Map.of("SLURM_STEP_NUM_TASKS", "16", "SLURM_NTASKS", "16")).orElseThrow());
        assertEquals(new Launch("PMI", "PMI_SIZE=2", 2), Launch.detect(Map.of("PMI_SIZE", "2")).orElseThrow());
        assertEquals(-1, Launch.detect(Map.of("PMIX_RANK", "0")).orElseThrow().size());
        assertEquals(3, Launch.localRank(Map.of("OMPI_COMM_WORLD_LOCAL_RANK", "3", "SLURM_LOCALID", "1")));
        assertEquals(1, Launch.localRank(Map.of("SLURM_LOCALID", "1")));
        assertEquals(-1, Launch.localRank(Map.of("OMPI_COMM_WORLD_RANK", "5")));
        DistributedException e = assertThrows(DistributedException.class,
                () -> Launch.detect(Map.of("OMPI_COMM_WORLD_SIZE", "two")));
        assertTrue(e.getMessage().contains("OMPI_COMM_WORLD_SIZE=two"), e.getMessage());
    }

    @Test
    void aPlainRunIsOneProcessWhoseCollectivesAreIdentities() {
        ProcessGroup g = ProcessGroups.of(Optional.empty(), l -> {
            throw new AssertionError("a plain run must not open MPI");
        });
        assertSame(SingleProcess.INSTANCE, g);
        assertEquals(0, g.rank());
        assertEquals(1, g.size());
        assertFalse(g.distributed());
        float[] v = {1.5f, -2f, 3f};
        g.allReduceSum(v, 1, 2);
        assertArrayEquals(new float[] {1.5f, -2f, 3f}, v);
        double[] d = {0.25};
        g.allReduceSum(d);
        assertEquals(0.25, d[0]);
        assertThrows(IndexOutOfBoundsException.class, () -> g.allReduceSum(v, 2, 2));
        assertThrows(IllegalArgumentException.class, () -> g.broadcast(new byte[1], 1));
    }

    @Test
    void launchedWithoutUsableMpiNamesTheLauncherAndTheCause() {
        Optional<Launch> l = Launch.detect(Map.of("OMPI_COMM_WORLD_SIZE", "2"));
        DistributedException e = assertThrows(DistributedException.class, () -> ProcessGroups.of(l, x -> {
            throw new DistributedException("liblorakit_mpi.so cannot load: libmpi.so.40: cannot open shared object");
        }));
        assertTrue(e.getMessage().startsWith("this process was launched by mpirun (OMPI_COMM_WORLD_SIZE=2) but MPI is"
                + " not usable: liblorakit_mpi.so cannot load: libmpi.so.40"), e.getMessage());
    }

    @Test
    void theShimReportsAMissingLibmpiWithTheRemedy(@TempDir Path dir) throws IOException {
        boolean present = MpiProcessGroup.shimPresent();
        if (Boolean.getBoolean(REQUIRE_MPI)) {
            assertTrue(present, "-D" + REQUIRE_MPI + "=true but the build has no " + MpiShim.RESOURCE
                    + " (was mpicc on the PATH when native/ was built?)");
        }
        assumeTrue(present, "this build has no liblorakit_mpi.so (no mpicc)");
        // a copy of the shim whose DT_NEEDED names a library that does not exist (same length, so the ELF stays valid)
        byte[] elf;
        try (var in = MpiShim.class.getResourceAsStream(MpiShim.RESOURCE)) {
            elf = in.readAllBytes();
        }
        byte[] from = "libmpi.so.40".getBytes(StandardCharsets.US_ASCII);
        byte[] to = "libmpZ.so.40".getBytes(StandardCharsets.US_ASCII);
        int at = indexOf(elf, from);
        assertTrue(at >= 0, "the shim does not name libmpi.so.40 (another MPI?)");
        System.arraycopy(to, 0, elf, at, to.length);
        Path broken = Files.write(dir.resolve("liblorakit_mpi.so"), elf);
        DistributedException e = assertThrows(DistributedException.class, () -> MpiShim.load(broken));
        assertTrue(e.getMessage().contains("libmpZ.so.40"), e.getMessage());
        assertTrue(e.getMessage().contains("apt-get install openmpi-bin libopenmpi-dev"), e.getMessage());
        if (Boolean.getBoolean(REQUIRE_MPI)) {   // with Open MPI installed the real one loads, naming its MPI
            assertTrue(MpiProcessGroup.probe().contains("MPI"), MpiProcessGroup.probe());
        }
    }

    private static int indexOf(byte[] hay, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= hay.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (hay[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return i;
        }
        return -1;
    }
}
