package ai.lorakit.gpu.dist;

import java.util.Optional;
import java.util.function.Function;

/**
 * Chooses the process group: MPI when a launcher (mpirun, srun, PMI) started this process ({@link Launch}), else
 * {@link SingleProcess}, which loads no MPI library. Launched but unable to load MPI is an error that names the
 * launcher and the missing piece, never a silent fall-back (N copies of one run would each write the same files).
 */
public final class ProcessGroups {

    private ProcessGroups() {
    }

    /** The group of this process (see the class comment). */
    public static ProcessGroup fromEnvironment() {
        return of(Launch.current(), MpiProcessGroup::open);
    }

    /** {@code openMpi} opens the MPI group (tests pass one that fails as a missing libmpi does). */
    static ProcessGroup of(Optional<Launch> launch, Function<Launch, ProcessGroup> openMpi) {
        if (launch.isEmpty()) {
            return SingleProcess.INSTANCE;
        }
        Launch l = launch.get();
        try {
            return openMpi.apply(l);
        } catch (DistributedException e) {
            throw new DistributedException("this process was launched by " + l.launcher() + " (" + l.variable()
                    + ") but MPI is not usable: " + e.getMessage(), e);
        }
    }

    /** One line for {@code lorakit info}: MPI available with its version, or why not. */
    public static String mpiStatus() {
        try {
            return "available: " + MpiProcessGroup.probe() + Launch.current().map(l -> "; launched by "
                    + l.launcher() + " (" + l.variable() + ")").orElse("; not launched by mpirun/srun: single process");
        } catch (DistributedException e) {
            return "unavailable: " + e.getMessage();
        }
    }
}
