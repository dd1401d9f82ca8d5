package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaGraph;

import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * Per-launch host overhead of one binding (PERFORMANCE.md: FFM and JCuda <= 1.2 x a native cuLaunchKernel),
 * measured exactly as cuda-kernels/cuda/bench/launch_overhead.c measures the C baseline: bursts of
 * {@code burst} launches of noop_fwd_kernel1(p, 0, 1.0f) (block 32, grid 1) through {@code Device.launch}, host
 * nanoseconds per call (submission only) and per launch including the final synchronisation; 2 warm-up bursts,
 * medians over the bursts. Also one burst captured into a CUDA graph and replayed (technique 3), per launch.
 */
final class LaunchOverhead {

    private LaunchOverhead() {
    }

    static Map<String, Object> run(Harness h, int burst, int bursts) {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("binding", h.binding);
        out.put("burst", burst);
        out.put("bursts", bursts);
        Tensor p = h.zeros(DType.F32, 32);
        Kernel k = h.be.kernel("noop_fwd_kernel1");
        long addr = h.addr(p);
        Dim3 grid = Dim3.of(1);
        Dim3 block = Dim3.of(32);
        double[] submit = new double[bursts];
        double[] total = new double[bursts];
        for (int b = -2; b < bursts; b++) {
            long t0 = System.nanoTime();
            for (int i = 0; i < burst; i++) {
                h.dev.launch(k, grid, block, addr, 0, 1f);
            }
            long t1 = System.nanoTime();
            h.dev.synchronize();
            long t2 = System.nanoTime();
            if (b >= 0) {
                submit[b] = (t1 - t0) / 1e3 / burst;
                total[b] = (t2 - t0) / 1e3 / burst;
            }
        }
        Arrays.sort(submit);
        Arrays.sort(total);
        out.put("launch_us_median", submit[bursts / 2]);
        out.put("launch_us_min", submit[0]);
        out.put("with_sync_us_median", total[bursts / 2]);
        try (CudaGraph graph = h.be.capture(() -> {
            for (int i = 0; i < burst; i++) {
                h.dev.launch(k, grid, block, addr, 0, 1f);
            }
        })) {
            double[] replay = new double[bursts];
            for (int b = -2; b < bursts; b++) {
                long t0 = System.nanoTime();
                graph.replay();
                h.dev.synchronize();
                long t1 = System.nanoTime();
                if (b >= 0) {
                    replay[b] = (t1 - t0) / 1e3 / burst;
                }
            }
            Arrays.sort(replay);
            out.put("graph_replay_us_per_launch_median", replay[bursts / 2]);
        } catch (RuntimeException e) {
            out.put("graph_error", e.toString());
        }
        return out;
    }
}
