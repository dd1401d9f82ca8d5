package ai.lorakit.gpu.dist;

import java.util.Map;
import java.util.Optional;

/**
 * How this process was started, read from the environment the launcher sets: Open MPI's mpirun
 * ({@code OMPI_COMM_WORLD_SIZE}), SLURM's srun ({@code SLURM_STEP_NUM_TASKS}, set for job steps only, not in the
 * batch script itself), or a PMI/PMIx launcher such as MPICH's Hydra ({@code PMI_SIZE}, {@code PMIX_RANK}).
 *
 * @param launcher "mpirun", "srun" or "PMI"
 * @param variable the variable that told, with its value (for messages)
 * @param size     the world size the launcher announced, or -1 when it does not say (PMIx)
 */
public record Launch(String launcher, String variable, int size) {

    /** The launch described by {@code env}, or empty when nothing launched this process (a plain run). */
    public static Optional<Launch> detect(Map<String, String> env) {
        String[][] vars = {{"OMPI_COMM_WORLD_SIZE", "mpirun"}, {"SLURM_STEP_NUM_TASKS", "srun"},
            {"PMI_SIZE", "PMI"}, {"PMIX_RANK", "PMI"}};
        for (String[] v : vars) {
            String value = env.get(v[0]);
            if (value != null && !value.isBlank()) {
                int size = -1;
                if (!v[0].equals("PMIX_RANK")) {
                    try {
                        size = Integer.parseInt(value.trim());
                    } catch (NumberFormatException e) {
                        throw new DistributedException(v[0] + "=" + value + " is not a number of processes; unset it"
                                + " or start lorakit with mpirun/srun");
                    }
                }
                return Optional.of(new Launch(v[1], v[0] + "=" + value.trim(), size));
            }
        }
        return Optional.empty();
    }

    /**
     * The node-local rank the launcher announced (Open MPI's OMPI_COMM_WORLD_LOCAL_RANK, SLURM's SLURM_LOCALID,
     * MPICH's MPI_LOCALRANKID), or -1: the CUDA device a rank takes on a multi-GPU node.
     */
    public static int localRank(Map<String, String> env) {
        for (String v : new String[] {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"}) {
            String value = env.get(v);
            if (value != null && value.trim().matches("\\d+")) {
                return Integer.parseInt(value.trim());
            }
        }
        return -1;
    }

    /** This process's launch. */
    public static Optional<Launch> current() {
        return detect(System.getenv());
    }
}
