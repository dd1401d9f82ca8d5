package ai.lorakit.cli;

import ai.lorakit.models.train.Checkpoint;

import java.io.IOException;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.ValueLayout;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Test launcher for {@link MpiTrainTest}: each mpirun rank runs {@code lorakit train} (Main) with a fault on rank 1.
 * Usage: {@code MpiRankMain <mode> <train args...>}, mode:
 * <ul>
 *   <li>{@code none}: no fault;</li>
 *   <li>{@code kill-after-checkpoint=<step>}: rank 1 sends itself SIGKILL once the run folder's checkpoint is at
 *       {@code step} or later (a crashed process: no exception, no MPI_Finalize);</li>
 *   <li>{@code bad-data}: rank 1 gets {@code --data /nonexistent} (it fails with an exception; MPI_Abort).</li>
 * </ul>
 */
public final class MpiRankMain {

    private MpiRankMain() {
    }

    public static void main(String[] args) throws Exception {
        String mode = args[0];
        List<String> train = new ArrayList<>(Arrays.asList(args).subList(1, args.length));
        boolean rank1 = "1".equals(System.getenv("OMPI_COMM_WORLD_RANK"));
        if (rank1 && mode.startsWith("kill-after-checkpoint=")) {
            int step = Integer.parseInt(mode.substring(mode.indexOf('=') + 1));
            Path out = Path.of(train.get(train.indexOf("--out") + 1));
            // SIGKILL through libc's kill(2): no fork/exec delay between seeing the checkpoint and dying
            Linker linker = Linker.nativeLinker();
            MethodHandle kill = linker.downcallHandle(linker.defaultLookup().find("kill").orElseThrow(),
                    FunctionDescriptor.of(ValueLayout.JAVA_INT, ValueLayout.JAVA_INT, ValueLayout.JAVA_INT));
            int pid = (int) ProcessHandle.current().pid();
            Thread t = new Thread(() -> {
                try {
                    killAfter(out, step, kill, pid);
                } catch (Throwable e) {
                    throw new IllegalStateException(e);
                }
            });
            t.setPriority(Thread.MAX_PRIORITY);
            t.setDaemon(true);
            t.start();
        }
        if (rank1 && mode.equals("bad-data")) {
            train.set(train.indexOf("--data") + 1, "/nonexistent/data.jsonl");
        }
        Main.main(train.toArray(String[]::new));
    }

    /** Polls (1 ms) {@code out}'s checkpoint; once it is at {@code step} or later, SIGKILLs this process. */
    private static void killAfter(Path out, int step, MethodHandle kill, int pid) throws Throwable {
        while (true) {
            int at = -1;
            try {
                Path dir = Checkpoint.locate(out);
                at = dir == null ? -1 : Checkpoint.readState(dir).step();
            } catch (IOException | RuntimeException e) {
                // rank 0 is renaming the checkpoint folders: look again
            }
            if (at >= step) {
                int rc = (int) kill.invokeExact(pid, 9);
                throw new IllegalStateException("kill(" + pid + ", SIGKILL) returned " + rc);
            }
            Thread.sleep(1);
        }
    }
}
