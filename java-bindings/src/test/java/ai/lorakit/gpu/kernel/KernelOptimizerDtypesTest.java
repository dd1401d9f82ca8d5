package ai.lorakit.gpu.kernel;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.ContractBackends;
import ai.lorakit.gpu.contract.Ref;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * KernelBackend's optimizer and AdaLoRA kernels (adamw.kc, adalora.kc) on OpenCL against CpuBackend beyond
 * the F32 contract: every mix of F32/BF16/F16 storage for param, grad and moments follows CpuBackend's
 * rounding (moments rounded before the update uses them) within the loosest involved dtype's tolerance
 * (the device may contract a*b+c into an FMA, so a 16-bit rounding can land one ulp apart); fully aliased
 * AdaLoRA arguments give CpuBackend's result; a NaN score keeps its element; and an empty tensor is a no-op.
 */
class KernelOptimizerDtypesTest {

    private static Backend cpu;
    private static Backend cl;

    @BeforeAll
    static void open() {
        String reason = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean(ContractBackends.REQUIRE_OPENCL)) {
            assertEquals(null, reason, "OpenCL required but unavailable");
        }
        assumeTrue(reason == null, () -> "no OpenCL device: " + reason);
        cpu = new CpuBackend();
        cl = OpenClBackend.open();
    }

    @AfterAll
    static void close() {
        if (cl != null) {
            cl.close();
        }
        if (cpu != null) {
            cpu.close();
        }
    }

    private static final DType[] FLOATS = {DType.F32, DType.BF16, DType.F16};

    @Test
    void adamwOnEveryStorageMixMatchesCpu() {
        int n = 301;
        for (DType pd : FLOATS) {
            for (DType gd : FLOATS) {
                for (DType md : FLOATS) {
                    float[] p0 = Ref.random(11, n), g = Ref.random(12, n);
                    float[] p = null, m = null, v = null, pr = null, mr = null, vr = null;
                    for (Backend be : new Backend[] {cpu, cl}) {
                        try (Tensor pt = be.upload(p0, pd, n); Tensor gt = be.upload(g, gd, n);
                             Tensor mt = be.zeros(md, n); Tensor vt = be.zeros(md, n)) {
                            for (int t = 1; t <= 3; t++) {
                                be.adamw(pt, gt, mt, vt, new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, 0.1f, t));
                            }
                            if (be == cpu) {
                                pr = be.download(pt);
                                mr = be.download(mt);
                                vr = be.download(vt);
                            } else {
                                p = be.download(pt);
                                m = be.download(mt);
                                v = be.download(vt);
                            }
                        }
                    }
                    String what = "adamw param " + pd + " grad " + gd + " moments " + md;
                    // a moment rounded to BF16/F16 one ulp apart (FMA contraction on the device) moves the
                    // update by that dtype's relative step: the param is held to the loosest tolerance involved
                    check(loosest(pd, gd, md), what + ": param", p, pr);
                    check(Tolerance.of(md), what + ": m", m, mr);
                    check(Tolerance.of(md), what + ": v", v, vr);
                }
            }
        }
    }

    @Test
    void adaloraOpsOnEveryStorageMixAndAliasedMatchCpu() {
        int n = 257;
        for (DType pd : FLOATS) {
            for (DType sd : FLOATS) {
                float[] p = Ref.random(21, n), g = Ref.random(22, n), i0 = Ref.random(23, n), u0 = Ref.random(24, n);
                float[][] got = new float[2][], ref = new float[2][];
                for (Backend be : new Backend[] {cpu, cl}) {
                    try (Tensor pt = be.upload(p, pd, n); Tensor gt = be.upload(g, pd, n);
                         Tensor it = be.upload(i0, sd, n); Tensor ut = be.upload(u0, sd, n)) {
                        for (int s = 0; s < 3; s++) {
                            be.adaloraSensitivity(pt, gt, it, ut, 0.85f, 0.95f);
                        }
                        be.maskWhereAtMost(pt, it, 0.2f);
                        float[][] dst = be == cpu ? ref : got;
                        dst[0] = be.download(it);
                        dst[1] = be.download(pt);
                    }
                }
                String what = "adalora p/g " + pd + " EMAs " + sd;
                check(Tolerance.of(sd), what + ": Ibar", got[0], ref[0]);
                check(loosest(pd, sd), what + ": masked p", got[1], ref[1]);
            }
        }
        // every argument the same tensor: the kernel's read/write order is CpuBackend's loop order
        float[] x = Ref.random(31, 100);
        float[] want = null;
        for (Backend be : new Backend[] {cpu, cl}) {
            try (Tensor t = be.upload(x, 100)) {
                be.adaloraSensitivity(t, t, t, t, 0.85f, 0.5f);
                if (be == cpu) {
                    want = be.download(t);
                } else {
                    check(Tolerance.F32, "adalora fully aliased", be.download(t), want);
                }
            }
        }
    }

    @Test
    void maskKeepsNaNScoresAndEmptyTensorsAreNoOps() {
        try (Tensor t = cl.upload(new float[] {1f, 2f, 3f}, 3);
             Tensor s = cl.upload(new float[] {Float.NaN, 0f, 1f}, 3)) {
            cl.maskWhereAtMost(t, s, 0.5f);
            assertArrayEquals(new float[] {1f, 0f, 3f}, cl.download(t));
        }
        try (Tensor e = cl.zeros(DType.F32, 0)) {
            cl.adamw(e, e, e, e, new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0f, 1));
            cl.adaloraSensitivity(e, e, e, e, 0.85f, 0.85f);
            cl.maskWhereAtMost(e, e, 0f);
            assertEquals(0, cl.download(e).length);
        }
    }

    private static Tolerance loosest(DType... dts) {
        Tolerance t = Tolerance.F32;
        for (DType d : dts) {
            if (Tolerance.of(d).atol() > t.atol()) {
                t = Tolerance.of(d);
            }
        }
        return t;
    }

    private static void check(Tolerance tol, String what, float[] got, float[] ref) {
        Tolerance.Result r = tol.compare(what, got, ref);
        assertTrue(r.ok(), r.describe());
    }
}
