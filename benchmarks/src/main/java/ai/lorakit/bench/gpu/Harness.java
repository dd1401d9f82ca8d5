package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.blas.Blas;
import ai.lorakit.gpu.blas.RowMajorGemm;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.cuda.CudaDevice;
import ai.lorakit.gpu.cuda.CudaProbe;
import ai.lorakit.gpu.ffm.FfmCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaDevice;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

/**
 * What every GPU check and benchmark shares: a {@link CudaBackend} on device 0 through one binding ({@code jcuda}
 * or {@code ffm}), tensors, raw device addresses for the fast-tier kernels (a pointer argument is passed as a
 * {@code Long} address, so a kernel can be pointed into a tensor's margin columns), named launches, cuBLAS GEMMs
 * in lorakit's row-major convention, NaN poisoning, and event timing (median after warm-up, PERFORMANCE.md
 * "Method"). Tensors made here are closed with the harness.
 */
final class Harness implements AutoCloseable {
    final String binding;
    final CudaBackend be;
    final CudaDevice dev;
    private final List<Tensor> owned = new ArrayList<>();

    private Harness(String binding, CudaBackend be) {
        this.binding = binding;
        this.be = be;
        this.dev = be.cudaDevice();
    }

    /** Backend name of a binding: jcuda -> cuda-jcuda, ffm -> cuda-ffm. */
    static String backendName(String binding) {
        return switch (binding) {
            case "jcuda" -> "cuda-jcuda";
            case "ffm" -> "cuda-ffm";
            default -> throw new IllegalArgumentException("binding must be jcuda or ffm, got '" + binding + "'");
        };
    }

    /** Null when {@code binding} can open device 0 here, else why not (never throws). */
    static String unavailableReason(String binding) {
        try {
            return switch (binding) {
                case "jcuda" -> JCudaDevice.unavailableReason();
                case "ffm" -> FfmCudaDevice.unavailableReason();
                default -> "unknown binding '" + binding + "' (jcuda or ffm)";
            };
        } catch (RuntimeException | LinkageError e) {
            return binding + ": probing failed: " + e;
        }
    }

    /** The driver probe in one line (libcuda found, cuInit status, driver version, device count). */
    static String probeSummary() {
        try {
            return CudaProbe.get().summary();
        } catch (RuntimeException | LinkageError e) {
            return "probe failed: " + e;
        }
    }

    /** Opens device 0 through {@code binding}; GpuException with the reason when it cannot. */
    static Harness open(String binding) {
        String name = backendName(binding);
        CudaDevice d = binding.equals("jcuda") ? JCudaDevice.open(0) : FfmCudaDevice.open(0);
        return new Harness(binding, CudaBackend.open(d, name));
    }

    String description() {
        return be.description();
    }

    Blas blas() {
        Blas b = be.blas();
        if (b == null) {
            throw new GpuException("no cuBLAS on " + be + ": " + be.description());
        }
        return b;
    }

    // ---------------------------------------------------------------- tensors

    Tensor zeros(DType dt, int... shape) {
        return own(be.zeros(dt, shape));
    }

    Tensor upload(float[] data, DType dt, int... shape) {
        return own(be.upload(data, dt, shape));
    }

    Tensor ints(int[] data) {
        return own(be.uploadInts(data, data.length));
    }

    /** An I32 tensor holding 64-bit little-endian values (device tables of addresses and offsets). */
    Tensor longs(long[] values) {
        int[] w = new int[values.length * 2];
        for (int i = 0; i < values.length; i++) {
            w[2 * i] = (int) values[i];
            w[2 * i + 1] = (int) (values[i] >>> 32);
        }
        return ints(w);
    }

    private Tensor own(Tensor t) {
        owned.add(t);
        return t;
    }

    long addr(Tensor t) {
        return be.address("bench", t);
    }

    /** Byte address of element (row, col) of a row-major tensor with row pitch ld. */
    long addr(Tensor t, long row, long col, int ld) {
        return addr(t) + (row * ld + col) * t.dtype().bytes();
    }

    float[] download(Tensor t) {
        return be.download(t);
    }

    /** Every element NaN, so that an element the kernel should write but does not is caught. */
    void poison(Tensor t) {
        be.fill(t, Float.NaN);
    }

    void launch(String kernel, Dim3 grid, Dim3 block, Object... args) {
        be.launchKernel(kernel, grid, block, args);
    }

    void sync() {
        be.synchronize();
    }

    /**
     * Row-major C[m,n] = alpha op(A) op(B) + beta C on cuBLAS with fp32 accumulation; a, b, c are byte addresses
     * (so they may point into margins), lda/ldb/ldc row pitches in elements.
     */
    void gemm(boolean transA, boolean transB, int m, int n, int k, float alpha, long a, DType ta, int lda,
              long b, DType tb, int ldb, float beta, long c, DType tc, int ldc) {
        RowMajorGemm.run(blas(), 1, transA, transB, m, n, k, alpha, a, ta, 0, lda, 0, b, tb, 0, ldb, 0,
                beta, c, tc, 0, ldc, 0);
    }

    // ---------------------------------------------------------------- timing

    /** Median device milliseconds of {@code work} over {@code reps} runs after {@code warmup} runs. */
    double timeMs(Runnable work, int warmup, int reps) {
        for (int i = 0; i < warmup; i++) {
            work.run();
        }
        sync();
        double[] ms = new double[reps];
        for (int i = 0; i < reps; i++) {
            DeviceEvent start = dev.record(dev.defaultQueue());
            work.run();
            DeviceEvent end = dev.record(dev.defaultQueue());
            end.synchronize();
            ms[i] = end.millisSince(start);
            start.close();
            end.close();
        }
        Arrays.sort(ms);
        return ms[reps / 2];
    }

    static Dim3 grid1d(long work, int block) {
        return Dim3.of((int) Math.max(1, Math.min((work + block - 1) / block, 65535L * 16)));
    }

    static int ceilDiv(long a, int b) {
        return (int) ((a + b - 1) / b);
    }

    // ---------------------------------------------------------------- host data

    /** Uniform values in [-scale, scale), seeded. */
    static float[] random(long seed, int n, float scale) {
        SplittableRandom r = new SplittableRandom(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) ((r.nextDouble() * 2 - 1) * scale);
        }
        return v;
    }

    /** Structured values: (i mod 7 - 3) * scale, exactly representable in bf16 for small scales of 2. */
    static float[] structured(int n, float scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (i % 7 - 3) * scale;
        }
        return v;
    }

    /** Round to bf16 (nearest even) and back, as the device stores it. */
    static float bf16(float f) {
        int u = Float.floatToRawIntBits(f);
        if ((u & 0x7fffffff) > 0x7f800000) {
            return Float.intBitsToFloat((u | 0x00400000) & 0xffff0000);
        }
        u += 0x7fff + ((u >>> 16) & 1);
        return Float.intBitsToFloat(u & 0xffff0000);
    }

    static float[] bf16(float[] v) {
        float[] o = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            o[i] = bf16(v[i]);
        }
        return o;
    }

    /** Columns [c0, c0+w) of a row-major [rows, ld] matrix as a dense [rows, w] one. */
    static float[] cols(float[] m, int rows, int ld, int c0, int w) {
        float[] o = new float[rows * w];
        for (int i = 0; i < rows; i++) {
            System.arraycopy(m, i * ld + c0, o, i * w, w);
        }
        return o;
    }

    /** A dense [rows, w] block written into columns [c0, c0+w) of a [rows, ld] matrix. */
    static void putCols(float[] m, int ld, int c0, float[] block, int rows, int w) {
        for (int i = 0; i < rows; i++) {
            System.arraycopy(block, i * w, m, i * ld + c0, w);
        }
    }

    @Override
    public void close() {
        for (Tensor t : owned) {
            if (!t.isClosed()) {
                t.close();
            }
        }
        owned.clear();
        be.close();
    }
}
