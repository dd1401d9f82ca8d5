package ai.lorakit.bench.opencl;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
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
 * The main Backend ops on {@code cpu} (CpuBackend: Vector API, all cores) and {@code opencl} (KernelBackend
 * on the OpenCL device the property lorakit.opencl.device picks; PoCL's CPU device on a machine without a
 * GPU), each call followed by {@link Backend#synchronize()} so an asynchronous device is timed to completion.
 * Sample-time mode: median (p50) and best (p0) call. Results: benchmarks/results/opencl-vs-cpu.md.
 *
 * <ul>
 *   <li>gemm512: C[512,512] = A[512,512] B[512,512] (Backend#matmul).</li>
 *   <li>loraShrink: u[4096,16] = x[4096,768] A[16,768]^T, the LoRA down-projection at r 16 (GPT-2 small width,
 *       B·T = 4096 tokens).</li>
 *   <li>layerNorm: layerNormForward on x[4096,768].</li>
 *   <li>attention: attentionForward, qkv [4,128,2304], 12 heads (GPT-2 small, B 4, T 128).</li>
 *   <li>adamw: one AdamW step on a [768,2304] weight (c_attn of GPT-2 small), F32 moments.</li>
 * </ul>
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.SampleTime)
@OutputTimeUnit(TimeUnit.MILLISECONDS)
@Warmup(iterations = 2, time = 1)
@Measurement(iterations = 3, time = 1)
@Fork(value = 1, jvmArgsAppend = {"--add-modules", "jdk.incubator.vector", "--enable-native-access=ALL-UNNAMED"})
public class OpsBenchmark {

    static final int N = 4096;
    static final int C = 768;
    static final int R = 16;
    static final int B = 4;
    static final int T = 128;
    static final int H = 12;

    @Param({"cpu", "opencl"})
    public String backend;

    private Backend be;
    private Tensor ga, gb, gc;          // gemm 512^3
    private Tensor x, a, u;             // LoRA shrink
    private Tensor gamma, beta, ln, mean, rstd;
    private Tensor qkv, att, attOut;
    private Tensor p, g, m, v;
    private AdamW hp;

    @Setup(Level.Trial)
    public void setUp() {
        be = backend.equals("opencl") ? OpenClBackend.open() : new CpuBackend();
        ga = rand(1, 512, 512);
        gb = rand(2, 512, 512);
        gc = be.zeros(DType.F32, 512, 512);
        x = rand(3, N, C);
        a = rand(4, R, C);
        u = be.zeros(DType.F32, N, R);
        gamma = rand(5, C);
        beta = rand(6, C);
        ln = be.zeros(DType.F32, N, C);
        mean = be.zeros(DType.F32, N);
        rstd = be.zeros(DType.F32, N);
        qkv = rand(7, B, T, 3 * C);
        attOut = be.zeros(DType.F32, B, T, C);
        att = be.zeros(DType.F32, B, H, T, T);
        p = rand(8, C, 3 * C);
        g = rand(9, C, 3 * C);
        m = be.zeros(DType.F32, C, 3 * C);
        v = be.zeros(DType.F32, C, 3 * C);
        hp = new AdamW(1e-4f, 0.9f, 0.999f, 1e-8f, 0.01f, 10);
        be.synchronize();
    }

    private Tensor rand(long seed, int... shape) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] d = new float[(int) Tensor.numel(shape)];
        for (int i = 0; i < d.length; i++) {
            d[i] = (float) (r.nextDouble() - 0.5);
        }
        return be.upload(d, shape);
    }

    @Benchmark
    public Tensor gemm512() {
        be.matmul(ga, false, gb, false, gc, 1f, 0f);
        be.synchronize();
        return gc;
    }

    @Benchmark
    public Tensor loraShrink() {
        be.loraShrink(x, a, u);
        be.synchronize();
        return u;
    }

    @Benchmark
    public Tensor layerNorm() {
        be.layerNormForward(x, gamma, beta, 1e-5f, ln, mean, rstd);
        be.synchronize();
        return ln;
    }

    @Benchmark
    public Tensor attention() {
        be.attentionForward(qkv, H, attOut, att);
        be.synchronize();
        return attOut;
    }

    @Benchmark
    public Tensor adamw() {
        be.adamw(p, g, m, v, hp);
        be.synchronize();
        return p;
    }

    @TearDown(Level.Trial)
    public void tearDown() {
        be.close();
    }
}
