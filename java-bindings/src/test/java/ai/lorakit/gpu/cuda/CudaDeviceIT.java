package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelSources;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.lang.management.ManagementFactory;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPU: proves each CUDA binding (FFM, JCuda) drives a real device: memory round trips, fills and copies are exact;
 * a fatbin kernel launched thousands of times with changing arguments computes the right values from ONE parameter
 * block, allocating (almost) nothing on the Java heap per launch; streams and events order and time work; and a
 * failing driver call throws a DeviceException naming the call and the CUDA error. Skipped without a GPU.
 */
class CudaDeviceIT {

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")
    void memoryRoundTripsFillsAndCopies(Supplier<CudaDevice> open) {
        try (CudaDevice d = open.get()) {
            assertTrue(d.description().contains("sm_"), d.description());
            DeviceBuffer a = d.alloc(4096);
            DeviceBuffer b = d.alloc(4096);
            float[] x = new float[1024];
            for (int i = 0; i < x.length; i++) {
                x[i] = i * 0.25f - 7f;
            }
            d.write(a, 0, x);
            d.copy(a, 0, b, 0, 4096);
            d.fill(b, 0, 16, Float.floatToRawIntBits(3f), 4);
            d.fill(b, 16, 8, 0x3f80, 2);   // bf16 1.0 pattern in 16-bit halves
            float[] y = new float[1024];
            d.read(b, 0, y);
            assertEquals(3f, y[0]);
            assertEquals(3f, y[3]);
            assertEquals(Float.intBitsToFloat(0x3f803f80), y[4]);
            assertArrayEquals(java.util.Arrays.copyOfRange(x, 6, 1024), java.util.Arrays.copyOfRange(y, 6, 1024));
            assertEquals(2, d.liveBuffers());
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")
    void oneParameterBlockServesThousandsOfLaunches(Supplier<CudaDevice> open) {
        try (CudaDevice d = open.get()) {
            Kernel k = d.load(KernelSources.portable()).kernel("scale_fwd_kernel1");
            int n = 256;
            DeviceBuffer x = d.alloc(4L * n);
            DeviceBuffer y = d.alloc(4L * n);
            float[] ones = new float[n];
            java.util.Arrays.fill(ones, 1f);
            d.write(x, 0, ones);
            Object[] args = {x, 0, 0f, y, 0, (long) n};
            Dim3 grid = Dim3.of(1);
            Dim3 block = Dim3.of(256);
            d.launch(k, grid, block, args);   // builds the block
            ParamBlock p = ((CudaKernel) k).paramBlock();
            Float[] alphas = new Float[16];
            for (int i = 0; i < alphas.length; i++) {
                alphas[i] = (float) i;
            }
            var mx = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
            long tid = Thread.currentThread().threadId();
            int launches = 20_000;
            for (int i = 0; i < 2000; i++) {   // warm-up (JIT)
                args[2] = alphas[i & 15];
                d.launch(k, grid, block, args);
            }
            long before = mx.getThreadAllocatedBytes(tid);
            for (int i = 0; i < launches; i++) {
                args[2] = alphas[i & 15];
                d.launch(k, grid, block, args);
            }
            long perLaunch = (mx.getThreadAllocatedBytes(tid) - before) / launches;
            assertSame(p, ((CudaKernel) k).paramBlock());
            assertTrue(perLaunch < 48, "Java heap bytes allocated per launch: " + perLaunch + " (a Pointer.to per"
                    + " argument would be hundreds)");
            float[] out = new float[n];
            d.read(y, 0, out);
            float last = alphas[(launches - 1) & 15];
            for (float v : out) {
                assertEquals(last, v, "y = alpha * x from the last launch's parameters");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")
    void streamsAndEventsOrderAndTimeWork(Supplier<CudaDevice> open) {
        try (CudaDevice d = open.get()) {
            Kernel k = d.load(KernelSources.portable()).kernel("scale_fwd_kernel1");
            int n = 1 << 22;
            DeviceBuffer x = d.alloc(4L * n);
            DeviceBuffer y = d.alloc(4L * n);
            d.fill(x, 0, 4L * n, Float.floatToRawIntBits(2f), 4);
            DeviceQueue q = d.createQueue();
            DeviceEvent ready = d.record(d.defaultQueue());
            q.waitFor(ready);
            DeviceEvent t0 = d.record(q);
            d.launch(q, k, Dim3.of(1024), Dim3.of(256), x, 0, 3f, y, 0, (long) n);
            DeviceEvent t1 = d.record(q);
            double ms = t1.millisSince(t0);
            assertTrue(ms > 0 && ms < 1000, "kernel time " + ms + " ms");
            q.synchronize();
            float[] probe = new float[4];
            d.read(y, 4L * (n - 4), probe);
            assertArrayEquals(new float[] {6f, 6f, 6f, 6f}, probe);
            q.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")
    void failingCallsNameTheCallAndTheError(Supplier<CudaDevice> open) {
        try (CudaDevice d = open.get()) {
            DeviceException e = assertThrows(DeviceException.class, () -> d.alloc(1L << 50));
            assertTrue(e.getMessage().startsWith("cuMemAlloc(1125899906842624 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2)"),
                    e.getMessage());
            assertEquals(2, e.status());
            Kernel k = d.load(KernelSources.portable()).kernel("scale_fwd_kernel1");
            GpuException g = assertThrows(GpuException.class,
                    () -> d.launch(k, Dim3.of(1), Dim3.of(d.maxBlockThreads() * 2), 1));
            assertTrue(g.getMessage().contains("threads;"), g.getMessage());
            g = assertThrows(GpuException.class, () -> d.load(null).kernel("no_such_fwd_kernel1"));
            assertTrue(g.getMessage().contains("the fatbin has no kernel of that name"), g.getMessage());
        }
    }
}
