package ai.lorakit.soak;

import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.kernel.KernelBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
import ai.lorakit.gpu.opencl.OpenClDevice;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.train.TinyGpt2;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves that nothing leaks when backends, tensors, models with adapters and checkpoints are created and closed
 * over and over, on cpu and on opencl (PoCL; required when lorakit.test.requireOpenCl is set): after a warm-up, the
 * heap after a full GC and the process's resident memory (VmRSS) stay within fixed bounds, and on OpenCL the
 * device's live buffer count is the same after every round as after the first (a backend may keep a few scratch
 * buffers it reuses; it may not gain one per round). Each round leaks, if it leaks at all, at
 * least 64 KiB per tensor, so thousands of rounds would overshoot the bounds many times over.
 */
class LeakSoakTest {

    static final int BACKENDS = 8;             // backends opened and closed (2 of them warm-up)
    static final int TENSOR_ROUNDS = 250;      // per backend, 4 tensors each: 8 x 250 x 4 = 8,000 tensors
    static final int MODELS = 4;               // per backend: models with LoRA, adapter saved and loaded, HF checkpoint
    static final long HEAP_BOUND = 16L << 20;  // growth allowed after warm-up
    /**
     * VmRSS growth allowed after warm-up. Without a leak it grew 60-114 MiB here (the collector growing the heap,
     * malloc arenas; more on a loaded machine); leaking the tensors of the 6 measured backends alone would add
     * 6 x 250 x 4 x 64 KiB = 375 MiB.
     */
    static final long RSS_BOUND = 192L << 20;

    @TempDir
    Path tmp;

    @ParameterizedTest
    @ValueSource(strings = {"cpu", "opencl"})
    void createAndCloseThousandsOfTimes(String backend) throws IOException {
        Supplier<Backend> open = switch (backend) {
            case "cpu" -> CpuBackend::new;
            default -> {
                String reason = OpenClBackend.unavailableReason();
                if (reason != null && Boolean.getBoolean("lorakit.test.requireOpenCl")) {
                    throw new AssertionError("lorakit.test.requireOpenCl is set but OpenCL is unavailable: " + reason);
                }
                assumeTrue(reason == null, "OpenCL unavailable: " + reason);
                yield OpenClBackend::open;
            }
        };
        long[] start = null;
        for (int b = 0; b < BACKENDS; b++) {
            if (b == 2) {
                start = measure();   // after warm-up: JIT, class loading, PoCL's kernel cache
            }
            try (Backend be = open.get()) {
                OpenClDevice cl = be instanceof KernelBackend kb && kb.device() instanceof OpenClDevice d ? d : null;
                int baseline = -1;   // taken after the first round: a backend may keep a scratch buffer it reuses
                Random rnd = new Random(b);
                for (int i = 0; i < TENSOR_ROUNDS; i++) {
                    float[] v = new float[128 * 128];   // 64 KiB
                    for (int k = 0; k < v.length; k += 97) {
                        v[k] = rnd.nextFloat();
                    }
                    try (Tensor x = be.upload(v, DType.F32, 128, 128); Tensor y = be.zeros(DType.F32, 128, 128);
                         Tensor z = be.zeros(DType.F32, 128, 128); Tensor w = be.upload(v, DType.F32, 128, 128)) {
                        be.matmul(x, false, w, true, y, 1f, 0f);
                        be.copy(y, z);
                        if (i % 50 == 0) {
                            assertEquals(v.length, be.download(z).length);
                        }
                    }
                    if (cl != null) {
                        baseline = baseline < 0 ? cl.liveBuffers() : baseline;
                        assertEquals(baseline, cl.liveBuffers(), "OpenCL buffers after tensor round " + i);
                    }
                }
                int modelBaseline = -1;
                for (int m = 0; m < MODELS; m++) {
                    models(be, b * MODELS + m);
                    if (cl != null) {
                        modelBaseline = modelBaseline < 0 ? cl.liveBuffers() : modelBaseline;
                        assertEquals(modelBaseline, cl.liveBuffers(), "OpenCL buffers after model round " + m);
                        assertTrue(modelBaseline <= baseline + 4, "OpenCL buffers: " + modelBaseline
                                + " live after the first model round, " + baseline + " before");
                    }
                }
            }
        }
        long[] end = measure();
        assertTrue(end[0] - start[0] < HEAP_BOUND, backend + ": heap after GC grew " + mib(end[0] - start[0])
                + " MiB (from " + mib(start[0]) + ")");
        assertTrue(end[1] - start[1] < RSS_BOUND, backend + ": VmRSS grew " + mib(end[1] - start[1])
                + " MiB (from " + mib(start[1]) + ")");
    }

    /** A model with LoRA: a step, its adapter saved and loaded into a second model, its base saved and reloaded. */
    private void models(Backend be, int seed) throws IOException {
        Path dir = Files.createDirectories(tmp.resolve("m" + (seed % 2)));
        LoraConfig lora = LoraConfig.of(4, 8, "c_attn", "c_proj");
        int[][] windows = {{1, 2, 3, 4, 5, 6, 7, 8, 9}, {9, 8, 7, 6, 5, 4, 3, 2, 1}};
        try (DecoderModel m = TinyGpt2.random(be, seed)) {
            m.attachAdapters(lora, seed);
            m.setTraining(true);
            m.trainStep(windows, 1f);
            m.adapters().savePeft(dir.resolve("adapter"), "tiny");
            m.saveHf(dir.resolve("base"), DType.F32);
        }
        try (DecoderModel m = DecoderModel.load(dir.resolve("base"), be)) {
            m.attachAdapters(lora, 0);
            m.adapters().loadPeft(dir.resolve("adapter"));
            m.setTraining(false);
            m.adapters().merge();
            assertTrue(Double.isFinite(m.evalLoss(windows)));
        }
    }

    /** {heap used after a full GC, VmRSS}, in bytes. */
    static long[] measure() throws IOException {
        for (int i = 0; i < 3; i++) {
            System.gc();
        }
        long heap = ManagementFactory.getMemoryMXBean().getHeapMemoryUsage().getUsed();
        long rss = 0;
        for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
            if (line.startsWith("VmRSS:")) {
                rss = Long.parseLong(line.replaceAll("\\D", "")) * 1024;
            }
        }
        return new long[] {heap, rss};
    }

    private static long mib(long bytes) {
        return bytes >> 20;
    }
}
