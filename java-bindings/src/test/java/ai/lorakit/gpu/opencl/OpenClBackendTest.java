package ai.lorakit.gpu.opencl;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.GpuException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.ContractBackends;
import ai.lorakit.gpu.contract.Ref;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.kernel.KernelBackend;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * KernelBackend on OpenCL beyond the shared contract: the registry reports opencl available and opens it by
 * name; the kernels' dtype conversions equal Java's bit for bit over every BF16/F16 pattern
 * and random fp32 bits; I32 conversions follow Java's cast; aliased GEMM/transpose calls and the launch
 * splitting for huge batches and widths are right; and no device buffer outlives its tensor or the backend.
 */
class OpenClBackendTest {

    @BeforeAll
    static void needsOpenCl() {
        String reason = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean(ContractBackends.REQUIRE_OPENCL)) {
            assertEquals(null, reason, "OpenCL required but unavailable");
        }
        assumeTrue(reason == null, () -> "no OpenCL device: " + reason);
    }

    @Test
    void registryListsOpenClAndOpensItByName() {
        BackendRegistry.Status s = BackendRegistry.list().stream().filter(x -> x.name().equals("opencl")).findFirst()
                .orElseThrow();
        assertTrue(s.available(), s.toString());
        try (Backend be = BackendRegistry.open("opencl")) {
            assertEquals("opencl", be.name());
            assertTrue(be instanceof KernelBackend);
        }
    }

    @Test
    void sixteenBitConversionsMatchJavaBitForBit() {
        int n = 1 << 16;
        float[] bf = new float[n], h = new float[n];
        for (int i = 0; i < n; i++) {
            bf[i] = DType.bf16ToFloat((short) i);
            h[i] = Float.float16ToFloat((short) i);
        }
        SplittableRandom r = new SplittableRandom(16);
        float[] bits = new float[n];
        for (int i = 0; i < n; i++) {
            // random fp32 bit patterns, weighted to the f16 range and its edges (subnormals, 65504..65520)
            bits[i] = switch (i % 4) {
                case 0 -> Float.intBitsToFloat(r.nextInt());
                case 1 -> Float.intBitsToFloat(0x33000000 + r.nextInt(0x14800000));   // 2^-25 .. 2^16
                case 2 -> (r.nextBoolean() ? 1 : -1) * (65504f + r.nextInt(40));
                default -> (float) (r.nextDouble() * 1e-4) * (r.nextBoolean() ? 1 : -1);
            };
        }
        try (KernelBackend be = OpenClBackend.open();
             Tensor bft = be.upload(bf, DType.BF16, n); Tensor ht = be.upload(h, DType.F16, n);
             Tensor f32 = be.zeros(DType.F32, n); Tensor src = be.upload(bits, n);
             Tensor toBf = be.zeros(DType.BF16, n); Tensor toH = be.zeros(DType.F16, n)) {
            be.copy(bft, f32);   // kernel: bf16_to_f32 over every pattern
            assertArrayEquals(bf, be.download(f32), "bf16_to_f32");
            be.copy(ht, f32);    // kernel: f16_to_f32 over every pattern
            assertArrayEquals(h, be.download(f32), "f16_to_f32");
            be.copy(src, toBf);  // kernel: f32_to_bf16
            be.copy(src, toH);   // kernel: f32_to_f16
            float[] gotBf = be.download(toBf), gotH = be.download(toH);
            for (int i = 0; i < n; i++) {
                assertEquals(DType.BF16.round(bits[i]), gotBf[i], 0f, "f32_to_bf16 of " + Float.floatToRawIntBits(bits[i]));
                assertEquals(DType.F16.round(bits[i]), gotH[i], 0f, "f32_to_f16 of " + bits[i]
                        + " (0x" + Integer.toHexString(Float.floatToRawIntBits(bits[i])) + ")");
            }
        }
    }

    @Test
    void intConversionsFollowJavaCasts() {
        float[] x = {Float.NaN, Float.POSITIVE_INFINITY, Float.NEGATIVE_INFINITY, 3.7f, -3.7f, 2147483648f, -2147483648f,
                -2.5e9f, 16777217f, 0.5f, -0f};
        int[] ids = {0, 1 << 24, (1 << 24) + 1, -7, Integer.MAX_VALUE, Integer.MIN_VALUE};
        try (KernelBackend be = OpenClBackend.open(); CpuBackend cpu = new CpuBackend();
             Tensor f = be.upload(x, x.length); Tensor i = be.zeros(DType.I32, x.length);
             Tensor cf = cpu.upload(x, x.length); Tensor ci = cpu.zeros(DType.I32, x.length);
             Tensor it = be.uploadInts(ids, ids.length); Tensor back = be.zeros(DType.F32, ids.length);
             Tensor it2 = be.zeros(DType.I32, ids.length)) {
            be.copy(f, i);
            cpu.copy(cf, ci);
            assertArrayEquals(cpu.downloadInts(ci), be.downloadInts(i), "F32 -> I32 as Java's (int) cast");
            be.copy(it, back);
            float[] want = new float[ids.length];
            for (int k = 0; k < ids.length; k++) {
                want[k] = ids[k];
            }
            assertArrayEquals(want, be.download(back), "I32 -> F32 rounds to nearest");
            be.copy(it, it2);
            assertArrayEquals(ids, be.downloadInts(it2), "I32 -> I32 is exact");
            be.fill(it2, -3.9f);
            assertArrayEquals(new int[] {-3, -3, -3, -3, -3, -3}, be.downloadInts(it2));
        }
    }

    @Test
    void aliasedCallsAndSplitLaunches() {
        try (KernelBackend be = OpenClBackend.open(); CpuBackend cpu = new CpuBackend()) {
            int n = 37;
            float[] a = Ref.random(1, n * n), b = Ref.random(2, n * n);
            // C aliases A: A <- 0.5 A B + 2 A, read from a staged copy
            try (Tensor at = be.upload(a, n, n); Tensor bt = be.upload(b, n, n);
                 Tensor ca = cpu.upload(a, n, n); Tensor cb = cpu.upload(b, n, n)) {
                be.matmul(at, false, bt, false, at, 0.5f, 2f);
                cpu.matmul(ca, false, cb, false, ca, 0.5f, 2f);
                Ref.assertClose(Tolerance.F32, "gemm C == A", be.download(at), cpu.download(ca));
                be.transpose(bt, bt);
                cpu.transpose(cb, cb);
                assertArrayEquals(cpu.download(cb), be.download(bt), "transpose in place");
            }
            // more batch entries than a CUDA grid's z extent: 65537 1x1x1 products
            int batch = 65537;
            float[] x = Ref.random(3, batch), y = Ref.random(4, batch);
            try (Tensor xt = be.upload(x, batch); Tensor yt = be.upload(y, batch); Tensor c = be.zeros(DType.F32, batch)) {
                be.gemmBatched(batch, false, true, 1, 1, 1, 1f, xt, 0, 1, 1, yt, 0, 1, 1, 0f, c, 0, 1, 1);
                float[] got = be.download(c);
                for (int i = 0; i < batch; i++) {
                    assertEquals(x[i] * y[i], got[i], 0f, "batched product " + i);
                }
            }
            // wider than 65535 tiles: a [2, 1048577] transpose and a GEMM with n = 2097153
            int wide = 65535 * 16 + 1;
            float[] w = Ref.random(5, 2 * wide);
            try (Tensor wt = be.upload(w, 2, wide); Tensor out = be.zeros(DType.F32, wide, 2)) {
                be.transpose(wt, out);
                float[] got = be.download(out);
                for (int c = 0; c < wide; c += 4099) {
                    assertEquals(w[c], got[2 * c], 0f, "transpose col " + c);
                    assertEquals(w[wide + c], got[2 * c + 1], 0f, "transpose col " + c);
                }
                assertEquals(w[2 * wide - 1], got[2 * wide - 1], 0f, "last element");
            }
            int nn = 65535 * 32 + 1;
            float[] row = Ref.random(6, nn);
            try (Tensor one = be.upload(new float[] {2f}, 1, 1); Tensor r = be.upload(row, 1, nn);
                 Tensor c = be.zeros(DType.F32, 1, nn)) {
                be.matmul(one, false, r, false, c, 1f, 0f);
                float[] got = be.download(c);
                for (int j = 0; j < nn; j += 7919) {
                    assertEquals(2f * row[j], got[j], 0f, "wide gemm column " + j);
                }
                assertEquals(2f * row[nn - 1], got[nn - 1], 0f, "wide gemm last column");
            }
        }
    }

    @Test
    void noBufferOutlivesItsTensorOrTheBackend() throws InterruptedException {
        KernelBackend be = OpenClBackend.open();
        OpenClDevice d = (OpenClDevice) be.device();
        try (Tensor warm = be.upload(Ref.ones(8), 8)) {
            be.sum(warm);   // allocates the reusable scratch buffer
        }
        int base = d.liveBuffers();
        for (int i = 0; i < 20; i++) {
            try (Tensor a = be.upload(Ref.random(i, 64), 8, 8); Tensor c = be.zeros(DType.BF16, 8, 8)) {
                be.matmul(a, false, a, true, c, 1f, 0f);
                be.transpose(a, a);   // staged copy
                be.dot(a, a);
            }
        }
        assertEquals(base, d.liveBuffers(), "closed tensors and staged copies free their buffers");
        dropOne(be);
        for (int i = 0; i < 50 && d.liveBuffers() > base; i++) {
            System.gc();
            Thread.sleep(10);
            be.zeros(DType.F32, 1).close();   // the next allocation frees what became unreachable
        }
        assertEquals(base, d.liveBuffers(), "an unreachable tensor's buffer is freed at the next allocation");
        Tensor open = be.zeros(DType.F32, 4);
        be.close();
        assertTrue(d.isClosed(), "the backend owns its device");
        assertEquals(0, d.liveBuffers());
        assertThrows(GpuException.class, () -> be.download(open));
        open.close();   // closing a tensor after its backend is harmless
    }

    private static void dropOne(Backend be) {
        be.zeros(DType.F32, 1000);   // never closed, never referenced again
    }
}
