package ai.lorakit.bench.cpu;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;

import java.util.SplittableRandom;
import java.util.concurrent.TimeUnit;

/**
 * fp32 GEMM of the pure-Java {@link CpuBackend} (Vector API, all cores) through {@link Backend#matmul}, the
 * path the models use; compare with benchmarks/peers/gemm_peer.py (OpenBLAS through numpy/torch) on the
 * same shapes. Sample-time mode, so the median (p50) and best (p0) call are both reported, which matters on a
 * shared 2-core machine; GFLOP/s = 2 m n k / time. Results: benchmarks/results/cpu-gemm.md.
 *
 * <p>Shapes "MxNxK" compute C[M,N] = A[M,K] B[K,N]; a "_nt" suffix stores B as [N,K] (y = x W^T, the linear
 * layer and LoRA's shrink u = x A^T).
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 3, time = 1)
@Measurement(iterations = 5, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class GemmBenchmark {

    @Param({"512x512x512", "1024x1024x1024", "4096x768x768", "4096x768x768_nt", "4096x16x768_nt"})
    public String shape;

    /** true: the reference triple loop instead of the fast path (only sensible for small shapes). */
    @Param({"false"})
    public boolean naive;

    private Backend be;
    private Tensor a;
    private Tensor b;
    private Tensor c;
    private boolean transB;

    @Setup(Level.Trial)
    public void setUp() {
        transB = shape.endsWith("_nt");
        String[] d = shape.replace("_nt", "").split("x");
        int m = Integer.parseInt(d[0]), n = Integer.parseInt(d[1]), k = Integer.parseInt(d[2]);
        be = new CpuBackend(naive);
        a = be.upload(random(1, m * k), m, k);
        b = transB ? be.upload(random(2, n * k), n, k) : be.upload(random(2, k * n), k, n);
        c = be.zeros(ai.lorakit.gpu.DType.F32, m, n);
    }

    private static float[] random(long seed, int n) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) r.nextDouble();
        }
        return x;
    }

    @Benchmark
    public Tensor matmul() {
        be.matmul(a, false, b, transB, c, 1f, 0f);
        return c;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        be.close();
    }
}
