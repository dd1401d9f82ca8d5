package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.DeviceEvent;
import ai.lorakit.gpu.DeviceException;
import ai.lorakit.gpu.DeviceQueue;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Kernel;
import ai.lorakit.gpu.KernelModule;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.contract.ContractBackends;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The OpenCL Device layer on whatever OpenCL device this machine has (PoCL in CI; skipped without a runtime
 * unless lorakit.test.requireOpenCl is set): device listing and selection, memory transfers of every element
 * width with byte offsets, fills, device copies, bounds checks before native calls, kernel launches with every
 * argument kind, events that time work, a build failure that carries the compiler log, native errors that
 * name the call and the CL status, and no buffer left behind after close.
 */
class OpenClDeviceTest {

    @BeforeAll
    static void needsOpenCl() {
        String reason = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean(ContractBackends.REQUIRE_OPENCL)) {
            assertNull(reason, "OpenCL required but unavailable");
        }
        assumeTrue(reason == null, () -> "no OpenCL device: " + reason);
    }

    @Test
    void listsAndSelectsDevices() {
        List<OpenClDeviceInfo> all = OpenClDevice.devices();
        assertFalse(all.isEmpty());
        OpenClDeviceInfo first = all.getFirst();
        try (OpenClDevice byId = OpenClDevice.open(first.id());
             OpenClDevice byIndex = OpenClDevice.open("0");
             OpenClDevice byName = OpenClDevice.open(first.deviceName().substring(0, 3).toUpperCase())) {
            assertEquals(first, byId.info());
            assertEquals(first, byIndex.info());
            assertTrue(byName.description().contains(byName.info().deviceName()), byName.description());
            assertEquals("opencl:" + first.id(), byId.name());
            assertTrue(byId.maxBlockThreads() >= 256, "max work-group size " + byId.maxBlockThreads());
        }
        GpuException e = assertThrows(GpuException.class, () -> OpenClDevice.open("no-such-device-xyz"));
        assertTrue(e.getMessage().contains("no usable device matches 'no-such-device-xyz'")
                && e.getMessage().contains(first.deviceName()), e.getMessage());
    }

    @Test
    void transfersFillsAndCopies() {
        try (OpenClDevice d = OpenClDevice.open("auto")) {
            DeviceBuffer a = d.alloc(64);
            DeviceBuffer b = d.alloc(64);
            d.write(a, 0, new float[] {1f, -2f, 3.5f, Float.NaN});
            d.write(a, 16, new int[] {7, -8});
            d.write(a, 24, new short[] {(short) 0xBEEF, 1, 2, 3});
            ByteBuffer bb = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN).putLong(0, 0x0102030405060708L);
            d.write(a, 32, bb);
            d.fill(a, 40, 24, 0x3f800000, 4);
            d.copy(a, 0, b, 0, 64);
            float[] f = new float[4];
            d.read(b, 0, f);
            assertArrayEquals(new float[] {1f, -2f, 3.5f, Float.NaN}, f);
            int[] i = new int[2];
            d.read(b, 16, i);
            assertArrayEquals(new int[] {7, -8}, i);
            short[] s = new short[4];
            d.read(b, 24, s);
            assertArrayEquals(new short[] {(short) 0xBEEF, 1, 2, 3}, s);
            ByteBuffer back = ByteBuffer.allocateDirect(8).order(ByteOrder.LITTLE_ENDIAN);
            d.read(b, 32, back);
            assertEquals(0x0102030405060708L, back.getLong(0));
            float[] ones = new float[6];
            d.read(b, 40, ones);
            assertArrayEquals(new float[] {1, 1, 1, 1, 1, 1}, ones);
            d.fill(b, 2, 6, 0xABCD, 2);
            d.read(b, 0, s);
            assertArrayEquals(new short[] {0, (short) 0xABCD, (short) 0xABCD, (short) 0xABCD}, s, "2-byte fill pattern");
            // bounds and misuse are caught before the native call
            GpuException e = assertThrows(GpuException.class, () -> d.read(b, 60, new float[2]));
            assertTrue(e.getMessage().contains("clEnqueueReadBuffer") && e.getMessage().contains("outside"), e.getMessage());
            assertThrows(GpuException.class, () -> d.fill(b, 1, 4, 0, 2));
            assertThrows(GpuException.class, () -> d.copy(a, 0, a, 8, 16), "overlapping copy");
            assertThrows(IllegalArgumentException.class, () -> d.write(a, 0, ByteBuffer.allocate(4)));
            DeviceBuffer empty = d.alloc(0);
            d.write(empty, 0, new float[0]);
            assertEquals(0, empty.bytes());
            assertEquals(3, d.liveBuffers());
            a.close();
            a.close();   // idempotent
            assertTrue(a.isFreed());
            assertThrows(GpuException.class, () -> d.read(a, 0, new float[1]), "use after free");
            assertEquals(2, d.liveBuffers());
        }
    }

    private static final String SAXPY = """
            KERNEL void saxpy_fwd_kernel1(GLOBAL float* y, GLOBAL const float* x, float a, int n, long base) {
                const int i = GLOBAL_ID_X;
                if (i < n) {
                    y[i] = a * x[i] + y[i] + (float)base;
                }
            }
            """;

    @Test
    void launchesKernelsAndTimesThem() {
        try (OpenClDevice d = OpenClDevice.open("auto")) {
            KernelSources src = KernelSources.of(KernelSources.portable().header(), Map.of("saxpy.kc", SAXPY));
            KernelModule m = d.load(src);
            assertEquals(java.util.Set.of("saxpy_fwd_kernel1"), m.kernelNames());
            Kernel k = m.kernel("saxpy_fwd_kernel1");
            assertSame(k, m.kernel("saxpy_fwd_kernel1"), "kernels are cached");
            assertTrue(d.buildMillis() > 0, "build time recorded");
            int n = 1000;
            float[] x = new float[n], y = new float[n];
            for (int i = 0; i < n; i++) {
                x[i] = i;
                y[i] = 1;
            }
            DeviceBuffer xb = d.alloc(4L * n), yb = d.alloc(4L * n);
            d.write(xb, 0, x);
            d.write(yb, 0, y);
            DeviceQueue q = d.createQueue();
            DeviceEvent start = d.record(q);
            d.launch(q, k, Dim3.of((n + 63) / 64), Dim3.of(64), yb, xb, 2f, n, 10L);
            DeviceEvent end = d.record(q);
            q.synchronize();
            assertTrue(end.millisSince(start) >= 0, "event time");
            float[] got = new float[n];
            d.read(yb, 0, got);
            for (int i = 0; i < n; i++) {
                assertEquals(2f * i + 1 + 10, got[i], 0f, "saxpy element " + i);
            }
            start.close();
            end.close();
            q.close();
            GpuException unknown = assertThrows(GpuException.class, () -> m.kernel("nope_fwd_kernel1"));
            assertTrue(unknown.getMessage().contains("saxpy_fwd_kernel1"), unknown.getMessage());
            // an int where the kernel takes a pointer: the runtime's status, named with the call
            DeviceException bad = assertThrows(DeviceException.class,
                    () -> d.launch(k, Dim3.of(1), Dim3.of(64), 5, xb, 2f, n, 10L));
            assertTrue(bad.getMessage().startsWith("clSetKernelArg(saxpy_fwd_kernel1, arg 0) failed: CL_INVALID_"),
                    bad.getMessage());
            assertTrue(bad.status() < 0);
            GpuException tooBig = assertThrows(GpuException.class,
                    () -> d.launch(k, Dim3.of(1), Dim3.of(d.maxBlockThreads() + 1), yb, xb, 2f, n, 10L));
            assertTrue(tooBig.getMessage().contains("clEnqueueNDRangeKernel(saxpy_fwd_kernel1)"), tooBig.getMessage());
            assertThrows(IllegalArgumentException.class, () -> d.launch(k, Dim3.of(1), Dim3.of(64), yb, xb, 2.0, n, 1L));
        }
    }

    @Test
    void buildFailureCarriesTheBuildLog() {
        try (OpenClDevice d = OpenClDevice.open("auto")) {
            String broken = "KERNEL void broken_fwd_kernel1(GLOBAL float* x) {\n    x[0] = undeclared_thing;\n}\n";
            KernelModule m = d.load(KernelSources.of(KernelSources.portable().header(), Map.of("broken.kc", broken)));
            DeviceException e = assertThrows(DeviceException.class, () -> m.kernel("broken_fwd_kernel1"));
            assertTrue(e.getMessage().startsWith("clBuildProgram(broken.kc) failed: CL_BUILD_PROGRAM_FAILURE (-11)"),
                    e.getMessage());
            assertTrue(e.getMessage().contains("undeclared_thing"), "build log missing: " + e.getMessage());
            assertEquals(-11, e.status());
        }
    }

    @Test
    void closeFreesEverythingAndLaterUseThrows() {
        OpenClDevice d = OpenClDevice.open("auto");
        DeviceBuffer b = d.alloc(16);
        d.alloc(32);
        d.load(KernelSources.portable()).kernel("add_fwd_kernel1");
        d.record(d.defaultQueue());
        d.createQueue();
        assertEquals(2, d.liveBuffers());
        d.close();
        d.close();   // idempotent
        assertTrue(d.isClosed());
        assertEquals(0, d.liveBuffers());
        assertTrue(b.isFreed());
        b.close();   // freeing after the device closed is a no-op
        GpuException e = assertThrows(GpuException.class, () -> d.alloc(4));
        assertTrue(e.getMessage().contains("closed"), e.getMessage());
        assertThrows(GpuException.class, () -> d.write(b, 0, new float[1]));
    }
}
