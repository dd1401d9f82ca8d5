package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelModule;
import ai.lorakit.gpu.KernelSources;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves CudaDevice's binding-independent rules (shared by the JCuda and FFM devices) on an in-memory driver, so they
 * are tested without a GPU: the primary context and an own non-blocking stream; byte-exact transfers, copies and fills
 * with range and pattern checks; parameter blocks built once per kernel and refilled per launch with the right slot
 * values; launch limits checked before the driver is called; CUDA-graph capture (allocations become graph memory
 * nodes, temporaries freed inside the step, pre-existing buffers freed after it, no transfer or synchronisation
 * inside, a failing step ends the capture); interop borrowing (no free, foreign contexts rejected); and close()
 * releasing everything.
 */
class CudaDeviceLogicTest {
    private FakeDriver driver;
    private FakeDriver.Device device;

    @BeforeEach
    void open() {
        driver = new FakeDriver();
        device = new FakeDriver.Device(driver, 0);
    }

    @AfterEach
    void close() {
        device.close();
    }

    @Test
    void opensThePrimaryContextAndAStreamOfItsOwn() {
        assertTrue(driver.calls.contains("cuDevicePrimaryCtxRetain"), driver.calls.toString());
        assertTrue(driver.calls.contains("cuStreamCreate(" + CudaDriver.STREAM_NON_BLOCKING + ")"), driver.calls.toString());
        assertFalse(driver.calls.stream().anyMatch(c -> c.startsWith("cuCtxCreate")));
        assertEquals(FakeDriver.CONTEXT, device.context());
        assertEquals("cuda-fake:0", device.name());
        assertEquals(90, device.computeCapability());
        assertTrue(device.description().contains("Fake GPU (sm_90, 132 SMs, 80 GiB, CUDA driver 13.0)"), device.description());
        device.close();
        assertTrue(driver.calls.contains("cuStreamDestroy"), "own stream destroyed");
        assertEquals("cuDevicePrimaryCtxRelease", driver.calls.get(driver.calls.size() - 1));
    }

    @Test
    void transfersAreExactAndOrderedWithTheStream() {
        DeviceBuffer b = device.alloc(64);
        float[] x = {1.5f, -2f, 3.25f, Float.NaN};
        driver.calls.clear();
        device.write(b, 16, x);
        // the stream's pending kernels first, then the copy, then the legacy stream (pageable upload in flight)
        assertEquals(List.of("cuStreamSynchronize", "cuMemcpyHtoD", "cuStreamSynchronize(legacy)"), driver.calls);
        float[] y = new float[4];
        device.read(b, 16, y);
        assertArrayEquals(x, y);
        short[] h = {1, -2, 300};
        device.write(b, 0, h);
        short[] h2 = new short[3];
        device.read(b, 0, h2);
        assertArrayEquals(h, h2);
        ByteBuffer direct = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN).putInt(7).putInt(9).flip();
        device.write(b, 40, direct);
        int[] ints = new int[2];
        device.read(b, 40, ints);
        assertArrayEquals(new int[] {7, 9}, ints);
        GpuException e = assertThrows(GpuException.class, () -> device.write(b, 60, new float[2]));
        assertTrue(e.getMessage().contains("cuMemcpyHtoD: byte range [60, 68) is outside"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> device.write(b, 0, ByteBuffer.allocate(4)));
    }

    @Test
    void copiesAndFillsQueueOnTheDefaultStream() {
        DeviceBuffer a = device.alloc(16);
        DeviceBuffer b = device.alloc(16);
        device.fill(a, 0, 16, 0x3f800000, 4);                 // 1.0f
        device.fill(a, 8, 4, 0xABCD, 2);
        device.copy(a, 0, b, 0, 16);
        float[] f = new float[4];
        device.read(b, 0, f);
        assertEquals(1f, f[0]);
        assertEquals(1f, f[1]);
        assertEquals(Float.intBitsToFloat(0xABCDABCD), f[2]);
        device.fill(b, 3, 1, 0x7f, 1);
        byte[] raw = new byte[16];
        ByteBuffer bb = ByteBuffer.allocateDirect(16);
        device.read(b, 0, bb);
        bb.get(raw);
        assertEquals(0x7f, raw[3]);
        assertTrue(driver.calls.containsAll(List.of("cuMemsetD32Async", "cuMemsetD16Async", "cuMemsetD8Async",
                "cuMemcpyDtoDAsync")));
        GpuException e = assertThrows(GpuException.class, () -> device.fill(a, 2, 4, 0, 4));
        assertTrue(e.getMessage().contains("multiples of the pattern size 4"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> device.fill(a, 0, 4, 0, 3));
        e = assertThrows(GpuException.class, () -> device.copy(a, 0, a, 4, 8));
        assertTrue(e.getMessage().contains("overlapping"), e.getMessage());
    }

    @Test
    void freeIsIdempotentAndUseAfterFreeIsRefused() {
        DeviceBuffer b = device.alloc(8);
        assertEquals(1, device.liveBuffers());
        b.close();
        b.close();
        assertEquals(0, device.liveBuffers());
        assertEquals(1, driver.calls.stream().filter("cuMemFree"::equals).count());
        GpuException e = assertThrows(GpuException.class, () -> device.read(b, 0, new float[1]));
        assertTrue(e.getMessage().contains("use of freed"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> device.alloc(-1));
        assertEquals(0, device.alloc(0).bytes());
    }

    @Test
    void parameterBlockIsBuiltOnceAndRefilledPerLaunch() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        KernelModule m = device.load(KernelSources.portable());
        Kernel k = m.kernel("scale_fwd_kernel1");
        assertSame(k, m.kernel("scale_fwd_kernel1"), "kernels are cached by name");
        DeviceBuffer x = device.alloc(64);
        DeviceBuffer out = device.alloc(64);
        CudaBuffer cx = (CudaBuffer) x;
        CudaBuffer cout = (CudaBuffer) out;
        device.launch(k, Dim3.of(2), Dim3.of(256), x, 0, 2.5f, out, 0, 16L);
        ParamBlock first = ((CudaKernel) k).paramBlock();
        device.launch(k, Dim3.of(3), Dim3.of(128), out, 0, -1f, x, 0, 7L);
        assertSame(first, ((CudaKernel) k).paramBlock(), "the same block is refilled");
        assertEquals(1, driver.launchersCreated, "one launcher (one kernelParams pointer) per kernel");
        FakeDriver.Launch l1 = driver.launches.get(0);
        FakeDriver.Launch l2 = driver.launches.get(1);
        assertArrayEquals(new long[] {cx.address(), 0, Float.floatToRawIntBits(2.5f), cout.address(), 0, 16}, l1.slots());
        assertArrayEquals(new long[] {cout.address(), 0, Float.floatToRawIntBits(-1f) & 0xffffffffL, cx.address(), 0, 7},
                l2.slots());
        assertArrayEquals(new int[] {3, 1, 1}, l2.grid());
        assertEquals(device.stream(), l2.stream());
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> device.launch(k, Dim3.of(1), Dim3.of(1), x, 0, 1f));
        assertTrue(e.getMessage().contains("3 arguments, but its parameter block holds 6")
                || e.getMessage().contains("launched with 6 before"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> device.launch(k, Dim3.of(1), Dim3.of(1), x, 0, 1f, out, 0, "seven"));
        assertTrue(e.getMessage().contains("argument 5 is a String"), e.getMessage());
    }

    @Test
    void launchLimitsAreCheckedBeforeTheDriver() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        Kernel k = device.load(KernelSources.portable()).kernel("scale_fwd_kernel1");
        driver.calls.clear();
        GpuException e = assertThrows(GpuException.class, () -> device.launch(k, Dim3.of(1), Dim3.of(2048), 1));
        assertTrue(e.getMessage().contains("block (2048, 1, 1) has 2048 threads; Fake GPU allows at most 1024"), e.getMessage());
        e = assertThrows(GpuException.class, () -> device.launch(k, Dim3.of(1, 70000), Dim3.of(1), 1));
        assertTrue(e.getMessage().contains("grid y, z <= 65535"), e.getMessage());
        assertTrue(driver.launches.isEmpty());
        e = assertThrows(GpuException.class, () -> device.load(KernelSources.portable()).kernel("missing_kernel1"));
        assertTrue(e.getMessage().contains("the fatbin has no kernel of that name"), e.getMessage());
    }

    @Test
    void queuesAndEventsMapToStreamsAndEvents() {
        DeviceQueue q = device.createQueue();
        DeviceEvent a = device.record(q);
        DeviceEvent b = device.record(device.defaultQueue());
        device.defaultQueue().waitFor(a);
        assertEquals(1.5, b.millisSince(a), 1e-9);
        q.close();
        a.close();
        b.close();
        assertTrue(driver.calls.containsAll(List.of("cuEventRecord", "cuStreamWaitEvent", "cuEventElapsedTime",
                "cuEventDestroy", "cuStreamDestroy")));
        device.defaultQueue().close();   // the default queue lives as long as the device
        device.synchronize();
    }

    @Test
    void captureTurnsTemporariesIntoGraphNodesAndDefersOtherFrees() {
        DeviceBuffer persistent = device.alloc(32);
        DeviceBuffer oldTemp = device.alloc(32);
        driver.calls.clear();
        CudaGraph g = device.capture(() -> {
            assertTrue(device.isCapturing());
            DeviceBuffer tmp = device.alloc(128);                   // becomes a graph memory node
            assertEquals(CudaBuffer.Kind.CAPTURED, ((CudaBuffer) tmp).kind());
            device.fill(tmp, 0, 128, 0, 4);
            device.copy(persistent, 0, tmp, 0, 32);
            tmp.close();                                            // freed inside the graph
            oldTemp.close();                                        // allocated before: freed after the capture
        });
        assertEquals(List.of("cuStreamBeginCapture(" + CudaDriver.CAPTURE_MODE_THREAD_LOCAL + ")", "cuMemAllocAsync",
                "cuMemsetD32Async", "cuMemcpyDtoDAsync", "cuMemFreeAsync", "cuStreamEndCapture", "cuMemFree",
                "cuGraphInstantiate"), driver.calls);
        assertFalse(device.isCapturing());
        g.replay();
        g.replay();
        assertEquals(2, driver.calls.stream().filter("cuGraphLaunch"::equals).count());
        g.close();
        assertTrue(g.isClosed());
        assertThrows(GpuException.class, g::replay);
        assertTrue(driver.calls.containsAll(List.of("cuGraphExecDestroy", "cuGraphDestroy")));
    }

    @Test
    void captureRefusesTransfersLeaksAndNesting() {
        DeviceBuffer b = device.alloc(16);
        GpuException e = assertThrows(GpuException.class, () -> device.capture(() -> device.read(b, 0, new float[1])));
        assertTrue(e.getMessage().contains("cuMemcpyDtoH: not allowed while a CUDA graph is being captured"), e.getMessage());
        assertFalse(device.isCapturing(), "a failed step ends the capture");
        assertTrue(driver.calls.contains("cuGraphDestroy"), "the partial graph is discarded");
        e = assertThrows(GpuException.class, () -> device.capture(device::synchronize));
        assertTrue(e.getMessage().contains("not allowed while a CUDA graph"), e.getMessage());
        e = assertThrows(GpuException.class, () -> device.capture(() -> device.alloc(64)));
        assertTrue(e.getMessage().contains("allocated 1 buffer(s) (64 bytes) it did not free"), e.getMessage());
        e = assertThrows(GpuException.class, () -> device.capture(() -> device.capture(() -> { })));
        assertTrue(e.getMessage().contains("already in progress"), e.getMessage());
        // the device still works afterwards
        device.write(b, 0, new float[] {4f});
        float[] r = new float[1];
        device.read(b, 0, r);
        assertEquals(4f, r[0]);
    }

    @Test
    void borrowedMemoryIsNeverFreedAndForeignContextsAreRejected() {
        long userPtr = driver.memAlloc(64);                         // the user's allocation
        CudaBuffer b = device.borrow(userPtr, 64);
        assertEquals(CudaBuffer.Kind.BORROWED, b.kind());
        device.write(b, 0, new float[] {9f});
        b.close();
        assertTrue(driver.memory.containsKey(userPtr), "closing a borrowed buffer does not free the user's memory");
        long foreign = driver.memAlloc(64);
        driver.foreignContexts.put(foreign, 0xBADL);
        GpuException e = assertThrows(GpuException.class, () -> device.borrow(foreign, 64));
        assertTrue(e.getMessage().contains("belongs to another CUDA context") && e.getMessage().contains("cuCtxCreate"),
                e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> device.borrow(0, 4));
    }

    @Test
    void externalStreamBecomesTheDefaultQueueAndIsNotDestroyed() {
        FakeDriver d2 = new FakeDriver();
        FakeDriver.Device dev = new FakeDriver.Device(d2, 0x5157L);
        assertEquals(0x5157L, dev.stream());
        assertFalse(d2.calls.stream().anyMatch(c -> c.startsWith("cuStreamCreate")));
        dev.close();
        assertFalse(d2.calls.contains("cuStreamDestroy"));
    }

    @Test
    void closeReleasesEverythingAndLaterUseThrows() {
        DeviceBuffer b = device.alloc(8);
        device.createQueue();
        device.record(device.defaultQueue());
        device.close();
        device.close();
        assertTrue(driver.memory.isEmpty(), "every owned allocation freed");
        assertTrue(b.isFreed());
        GpuException e = assertThrows(GpuException.class, () -> device.alloc(4));
        assertTrue(e.getMessage().contains("cuda-fake:0 is closed"), e.getMessage());
        b.close();   // lenient after close
    }

    @Test
    void aMissingDeviceOrdinalIsNamed() {
        FakeDriver d = new FakeDriver();
        d.deviceCount = 0;
        GpuException e = assertThrows(GpuException.class, () -> new FakeDriver.Device(d, 0));
        assertTrue(e.getMessage().contains("CUDA device 0 does not exist: the driver lists 0 device(s)"), e.getMessage());
    }
}
