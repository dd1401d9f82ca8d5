package ai.lorakit.bench.dist;

import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.ProcessGroups;

import java.util.Arrays;
import java.util.Locale;

/**
 * The all-reduce alone, as the Trainer calls it (one fp32 buffer, host arrays through liblorakit_mpi.so), without a
 * training step around it: {@code mpirun -np 2 java -cp <classpath> ai.lorakit.bench.dist.AllReduceBench [floats]
 * [iterations]}. A barrier before each call keeps the ranks' waiting for each other out of the time. Rank 0 prints
 * the median and the 90th percentile in ms, and checks the sum.
 */
public final class AllReduceBench {

    private AllReduceBench() {
    }

    public static void main(String[] args) {
        int n = args.length > 0 ? Integer.parseInt(args[0]) : 98_305;   // LoRA r 8 on the default model + the loss
        int iters = args.length > 1 ? Integer.parseInt(args[1]) : 300;
        try (ProcessGroup g = ProcessGroups.fromEnvironment()) {
            float[] v = new float[n];
            double[] ms = new double[iters];
            for (int i = 0; i < iters + 20; i++) {
                Arrays.fill(v, g.rank() + 1f);
                g.barrier();
                long t0 = System.nanoTime();
                g.allReduceSum(v, 0, n);
                long dt = System.nanoTime() - t0;
                float want = g.size() * (g.size() + 1) / 2f;
                if (v[0] != want || v[n - 1] != want) {
                    throw new IllegalStateException("all-reduce gave " + v[0] + ", expected " + want);
                }
                if (i >= 20) {
                    ms[i - 20] = dt / 1e6;
                }
            }
            Arrays.sort(ms);
            if (g.rank() == 0) {
                System.out.println(String.format(Locale.ROOT, "all-reduce of %,d floats (%.0f KiB) over %d ranks (%s):"
                        + " median %.3f ms, p90 %.3f ms, %d calls", n, n * 4 / 1024.0, g.size(), g.describe(),
                        ms[iters / 2], ms[iters * 9 / 10], iters));
            }
        }
    }
}
