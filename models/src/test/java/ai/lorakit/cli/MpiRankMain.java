package ai.lorakit.cli;

import ai.lorakit.models.train.Checkpoint;

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
            Thread t = new Thread(() -> {
                try {
                    while (true) {
                        Path dir = Checkpoint.locate(out);
                        if (dir != null && Checkpoint.readState(dir).step() >= step) {
                            new ProcessBuilder("kill", "-9", Long.toString(ProcessHandle.current().pid())).start()
                                    .waitFor();
                        }
                        Thread.sleep(2);
                    }
                } catch (Exception e) {
                    throw new IllegalStateException(e);
                }
            });
            t.setDaemon(true);
            t.start();
        }
        if (rank1 && mode.equals("bad-data")) {
            train.set(train.indexOf("--data") + 1, "/nonexistent/data.jsonl");
        }
        Main.main(train.toArray(String[]::new));
    }
}
