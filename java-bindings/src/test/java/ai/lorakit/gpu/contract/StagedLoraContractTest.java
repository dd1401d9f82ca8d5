package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.PrecisionPolicyContractTest.Pair;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The staged LoRA-family ops (Backend#loraStage, loraLinearForwardStaged, loraLinearBackward, veraStage,
 * veraForwardStaged, veraBackward, deltaLoraUpdateMaster) with the bf16 policy's dtypes, in both weight layouts, on
 * every backend: the stages hold the bf16-rounded adapter (checked against values computed here on the host), and the
 * outputs match the F32 CpuBackend reference computed from the fp32 masters with the unstaged ops and primitive
 * GEMMs, to the bf16 tolerance (a fast tier reads the bf16 stages). On the GPU check this compares the CUDA fast tier
 * (lora_margin/shrink/linear_bwd_x, vera_margin/shrink/lambda, delta_lora_update with a master) with its twins.
 */
class StagedLoraContractTest {
    private static final DType BF = DType.BF16;
    private static final DType F = DType.F32;

    static java.util.stream.Stream<org.junit.jupiter.params.provider.Arguments> backends() {
        return PrecisionPolicyContractTest.backends();
    }

    private static void assertStage(Backend be, String what, Tensor stage, float[] want) {
        float[] got = be.download(stage);
        assertEquals(want.length, got.length, what);
        for (int i = 0; i < want.length; i++) {
            assertEquals(BF.round(want[i]), got[i], 0f, what + "[" + i + "]");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void loraStagedForwardAndBackward(Backend be) {
        int n = 40, in = 24, out = 32, rank = 8;
        float s = 2f;
        Random r = new Random(2100);
        try (be; Pair p = new Pair(be)) {
            for (boolean fifo : new boolean[] {false, true}) {
                String tag = fifo ? " (fan_in_fan_out)" : "";
                int[] ws = fifo ? new int[] {in, out} : new int[] {out, in};
                Tensor[] x = p.in(rand(r, n * in, 1), BF, 2, n / 2, in);
                Tensor[] w = p.in(rand(r, in * out, 0.2), BF, ws);
                Tensor[] bias = p.in(rand(r, out, 1), BF, out);
                float[] av = rand(r, rank * in, 0.3);
                float[] bv = rand(r, out * rank, 0.3);
                Tensor[] a = p.in(av, F, rank, in);
                Tensor[] b = p.in(bv, F, out, rank);
                Tensor[] aS = p.out(BF, rank, in);
                Tensor[] sbS = p.out(BF, out, rank);
                be.loraStage(a[0], b[0], s, aS[0], sbS[0]);
                float[] sb = bv.clone();
                for (int i = 0; i < sb.length; i++) {
                    sb[i] *= s;
                }
                assertStage(be, "staged A" + tag, aS[0], av);
                assertStage(be, "staged s B" + tag, sbS[0], sb);

                Tensor[] u = p.out(F, n, rank);
                Tensor[] uS = p.out(BF, n, rank);
                Tensor[] y = p.out(F, 2, n / 2, out);
                be.loraLinearForwardStaged(x[0], w[0], fifo, bias[0], a[0], b[0], s, aS[0], sbS[0], u[0], uS[0], y[0]);
                p.ref.loraLinearForward(x[1], w[1], fifo, bias[1], a[1], b[1], s, u[1], y[1]);
                p.ref.copy(u[1], uS[1]);
                p.check("staged u" + tag, u, Tolerance.BF16);
                p.check("staged S" + tag, uS);
                p.check("staged y" + tag, y, Tolerance.BF16);

                for (boolean fa : new boolean[] {false, true}) {
                    String t2 = tag + (fa ? " A frozen" : "");
                    Tensor[] dy = p.in(rand(r, n * out, 1), BF, 2, n / 2, out);
                    Tensor[] dx = p.out(F, 2, n / 2, in);
                    Tensor[] dA = fa ? new Tensor[2] : p.in(rand(r, rank * in, 1), F, rank, in);
                    Tensor[] dB = p.in(rand(r, out * rank, 1), F, out, rank);
                    be.loraLinearBackward(dy[0], w[0], fifo, a[0], b[0], s, aS[0], sbS[0], u[0], uS[0],
                            fa ? null : x[0], dx[0], dA[0], dB[0]);
                    // reference from primitives: g = dy B; dx = dy op(W)^T + s g A; dB += s dy^T u; dA += s g^T x
                    try (Tensor g = p.ref.zeros(F, n, rank)) {
                        p.ref.matmul(dy[1], false, w[1], fifo, dx[1], 1f, 0f);
                        p.ref.matmul(dy[1], false, b[1], false, g, 1f, 0f);
                        p.ref.matmul(g, false, a[1], false, dx[1], s, 1f);
                        p.ref.matmul(dy[1], true, u[1], false, dB[1], s, 1f);
                        if (!fa) {
                            p.ref.matmul(g, true, x[1], false, dA[1], s, 1f);
                        }
                    }
                    p.check("staged dx" + t2, dx, Tolerance.BF16);
                    p.check("staged dB (+=)" + t2, dB, Tolerance.BF16);
                    if (!fa) {
                        p.check("staged dA (+=)" + t2, dA, Tolerance.BF16);
                    }
                }
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void veraStagedForwardAndBackward(Backend be) {
        int n = 40, in = 24, out = 32, inMax = 40, outMax = 48, rank = 16;
        Random r = new Random(2101);
        try (be; Pair p = new Pair(be)) {
            for (boolean fifo : new boolean[] {false, true}) {
                String tag = fifo ? " (fan_in_fan_out)" : "";
                int[] ws = fifo ? new int[] {in, out} : new int[] {out, in};
                Tensor[] x = p.in(rand(r, n * in, 1), BF, n, in);
                Tensor[] w = p.in(rand(r, in * out, 0.2), BF, ws);
                float[] sav = rand(r, rank * inMax, 0.3);
                float[] sbv = rand(r, outMax * rank, 0.3);
                float[] lbv = rand(r, out, 1);
                Tensor[] sa = p.in(sav, F, rank, inMax);
                Tensor[] sb = p.in(sbv, F, outMax, rank);
                Tensor[] ld = p.in(rand(r, rank, 1), F, rank);
                Tensor[] lb = p.in(lbv, F, out);
                Tensor[] aS = p.out(BF, rank, in);
                Tensor[] sbS = p.out(BF, out, rank);
                be.veraStage(sa[0], sb[0], lb[0], aS[0], sbS[0]);
                float[] al = new float[rank * in];
                for (int j = 0; j < rank; j++) {
                    System.arraycopy(sav, j * inMax, al, j * in, in);
                }
                assertStage(be, "staged A_l" + tag, aS[0], al);
                // a new λb: the per-step refresh (A_l not restaged)
                for (int o = 0; o < out; o++) {
                    lbv[o] = (float) r.nextGaussian();
                }
                be.write(lb[0], lbv);
                p.ref.write(lb[1], lbv);
                be.veraStage(sa[0], sb[0], lb[0], null, sbS[0]);
                float[] lbB = new float[out * rank];
                for (int o = 0; o < out; o++) {
                    for (int j = 0; j < rank; j++) {
                        lbB[o * rank + j] = lbv[o] * sbv[o * rank + j];
                    }
                }
                assertStage(be, "staged λb ∘ B_l" + tag, sbS[0], lbB);
                assertStage(be, "A_l kept" + tag, aS[0], al);

                Tensor[] u = p.out(F, n, rank);
                Tensor[] vS = p.out(BF, n, rank);
                Tensor[] y = p.in(rand(r, n * out, 1), F, n, out);
                be.veraForwardStaged(x[0], sa[0], sb[0], ld[0], lb[0], aS[0], sbS[0], u[0], vS[0], y[0]);
                p.ref.veraForward(x[1], sa[1], sb[1], ld[1], lb[1], u[1], vS[1], y[1]);
                p.check("staged u" + tag, u, Tolerance.BF16);
                p.check("staged V" + tag, vS);
                p.check("staged y (+=)" + tag, y, Tolerance.BF16);

                Tensor[] dy = p.in(rand(r, n * out, 1), BF, n, out);
                Tensor[] dx = p.out(F, n, in);
                Tensor[] dld = p.in(rand(r, rank, 1), F, rank);
                Tensor[] dlb = p.in(rand(r, out, 1), F, out);
                be.veraBackward(dy[0], w[0], fifo, sa[0], sb[0], ld[0], lb[0], sbS[0], u[0], vS[0], dx[0], dld[0],
                        dlb[0]);
                p.ref.veraBackward(dy[1], w[1], fifo, sa[1], sb[1], ld[1], lb[1], sbS[1], u[1], vS[1], dx[1],
                        dld[1], dlb[1]);
                p.check("staged dx" + tag, dx, Tolerance.BF16);
                p.check("staged dλd (+=)" + tag, dld, Tolerance.BF16);
                p.check("staged dλb (+=)" + tag, dlb, Tolerance.BF16);
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void deltaLoraMasterUpdate(Backend be) {
        int in = 24, out = 32, rank = 8;
        Random r = new Random(2102);
        try (be; Pair p = new Pair(be)) {
            for (boolean fifo : new boolean[] {false, true}) {
                String tag = fifo ? " (fan_in_fan_out)" : "";
                int[] ws = fifo ? new int[] {in, out} : new int[] {out, in};
                float[] wv = rand(r, in * out, 1);
                Tensor[] master = p.in(wv, F, ws);
                Tensor[] w = p.in(wv, BF, ws);
                Tensor[] a1 = p.in(rand(r, rank * in, 0.1), F, rank, in);
                Tensor[] a0 = p.in(rand(r, rank * in, 0.1), F, rank, in);
                Tensor[] b1 = p.in(rand(r, out * rank, 0.1), F, out, rank);
                Tensor[] b0 = p.in(rand(r, out * rank, 0.1), F, out, rank);
                be.deltaLoraUpdateMaster(w[0], master[0], fifo, 1e-3f, b1[0], a1[0], b0[0], a0[0]);
                p.ref.deltaLoraUpdate(master[1], fifo, 1e-3f, b1[1], a1[1], b0[1], a0[1]);
                p.ref.copy(master[1], w[1]);
                p.check("master" + tag, master);
                p.check("W = bf16(master)" + tag, w);
            }
        }
    }
}
