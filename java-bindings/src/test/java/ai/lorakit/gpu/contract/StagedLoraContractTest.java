package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.PrecisionPolicyContractTest.Pair;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.Random;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static org.junit.jupiter.api.Assertions.assertEquals;

/**
 * The staged LoRA-family ops (Backend#loraStage, loraLinearForwardStaged, loraLinearBackward, doraScale,
 * doraScaleBackward, deltaLoraUpdateMaster; VeRA, DoRA and AdaLoRA stage through the same ops) with the bf16 policy's dtypes, in both weight layouts, on
 * every backend: the stages hold the bf16-rounded adapter and LoRA's margin buffers Wm and Xm hold W, A, s B, x and
 * S where LoraMargins puts them (checked against values computed here on the host), and the outputs match the F32
 * CpuBackend reference computed with primitive GEMMs from the bf16-rounded A, s B, S and dS that the K-concat GEMMs
 * read, to the bf16 tolerance. On the GPU check this compares the CUDA fast tier
 * (lora_margin/shrink/linear_bwd_x, dora_scale fwd/bwd, delta_lora_update with a master) with its twins.
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

    /**
     * Wm holds W, bf16(s B), bf16(A) and the bias where LoraMargins says (its class comment, restated here from the
     * maths): [out,in] W: W | s B | b beside it, A below; [in,out] W: W | A^T beside it, (s B)^T and b below. The
     * unused corners and the pitch padding are not read by any GEMM and not checked.
     */
    private static void assertMargins(Backend be, String what, Tensor wm, LoraMargins g, float[] w, float[] a,
                                      float[] sb, float[] bias) {
        float[] got = be.download(wm);
        int in = g.in(), out = g.out(), r = g.r(), ld = g.ldw();
        for (int o = 0; o < out; o++) {
            for (int k = 0; k < in; k++) {
                int at = g.fanInFanOut() ? k * ld + o : o * ld + k;
                assertEquals(w[g.fanInFanOut() ? k * out + o : o * in + k], got[at], 0f, what + " W[" + o + "," + k + "]");
            }
            for (int j = 0; j < r; j++) {
                int at = g.fanInFanOut() ? (in + j) * ld + o : o * ld + in + j;
                assertEquals(BF.round(sb[o * r + j]), got[at], 0f, what + " sB[" + o + "," + j + "]");
            }
            if (g.bias()) {
                int at = g.fanInFanOut() ? (in + r) * ld + o : o * ld + in + r;
                assertEquals(bias[o], got[at], 0f, what + " b[" + o + "]");
            }
        }
        for (int j = 0; j < r; j++) {
            for (int k = 0; k < in; k++) {
                int at = g.fanInFanOut() ? k * ld + out + j : (out + j) * ld + k;
                assertEquals(BF.round(a[j * in + k]), got[at], 0f, what + " A[" + j + "," + k + "]");
            }
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void loraStagedForwardAndBackward(Backend be) {
        int n = 40, in = 24, out = 32, rank = 8;
        float s = 2f;
        Random r = new Random(2100);
        try (be; Pair p = new Pair(be)) {
            for (int layout = 0; layout < 4; layout++) {
                boolean fifo = layout % 2 == 1;
                boolean withBias = layout < 2;
                String tag = (fifo ? " (fan_in_fan_out)" : "") + (withBias ? "" : " (no bias)");
                int[] ws = fifo ? new int[] {in, out} : new int[] {out, in};
                Tensor[] x = p.in(rand(r, n * in, 1), BF, 2, n / 2, in);
                Tensor[] w = p.in(rand(r, in * out, 0.2), BF, ws);
                float[] biasV = rand(r, out, 1);
                Tensor[] bias = p.in(biasV, BF, out);
                float[] av = rand(r, rank * in, 0.3);
                float[] bv = rand(r, out * rank, 0.3);
                Tensor[] a = p.in(av, F, rank, in);
                Tensor[] b = p.in(bv, F, out, rank);
                Tensor[] aS = p.out(BF, rank, in);
                Tensor[] sbS = p.out(BF, out, rank);
                LoraMargins m = new LoraMargins(in, out, rank, fifo, withBias);
                Tensor[] wm = p.out(BF, m.wmRows(), m.ldw());
                be.loraStage(a[0], b[0], s, m, w[0], withBias ? bias[0] : null, aS[0], sbS[0], wm[0]);
                float[] sb = bv.clone();
                for (int i = 0; i < sb.length; i++) {
                    sb[i] *= s;
                }
                assertStage(be, "staged A" + tag, aS[0], av);
                assertStage(be, "staged s B" + tag, sbS[0], sb);
                assertMargins(be, "Wm" + tag, wm[0], m, be.download(w[0]), av, sb, be.download(bias[0]));

                Tensor uRef = p.ref.zeros(F, n, rank);
                Tensor[] xm = p.out(BF, n, m.ldx());
                Tensor[] y = p.out(F, 2, n / 2, out);
                try (Tensor one = be.upload(new float[] {1f}, F, 1)) {
                    m.onesColumn(be, one, xm[0], n);                // the layer's part: once per Xm
                }
                be.loraLinearForwardStaged(x[0], a[0], m, aS[0], wm[0], xm[0], y[0]);
                // reference from primitives on the rounded stages the op reads: y = x op(W) + b + bf16(x A^T) bf16(s B)^T
                Tensor sRef = p.ref.zeros(BF, n, rank);   // bf16(x A^T), also the backward's reference S
                try (Tensor sbR = p.ref.upload(sb, BF, out, rank)) {
                    p.ref.matmul(x[1], false, w[1], !fifo, y[1], 1f, 0f);
                    if (withBias) {
                        p.ref.addRowVector(y[1], bias[1], y[1]);
                    }
                    p.ref.matmul(x[1], false, a[1], true, uRef, 1f, 0f);
                    p.ref.copy(uRef, sRef);
                    p.ref.matmul(sRef, false, sbR, true, y[1], 1f, 1f);
                }
                p.check("staged y" + tag, y, Tolerance.BF16);
                // Xm = [x | S | 1]: x exactly (the pack is a copy), S = bf16(x A^T) to the bf16 tolerance
                float[] xv = be.download(x[0]);
                float[] sv = p.ref.download(sRef);
                float[] xmv = be.download(xm[0]);
                float[] sGot = new float[n * rank];
                for (int i = 0; i < n; i++) {
                    for (int k = 0; k < in; k++) {
                        assertEquals(xv[i * in + k], xmv[i * m.ldx() + k], 0f, "Xm x" + tag + "[" + i + "," + k + "]");
                    }
                    System.arraycopy(xmv, i * m.ldx() + in, sGot, i * rank, rank);
                    if (withBias) {
                        assertEquals(1f, xmv[i * m.ldx() + in + rank], 0f, "Xm's ones column" + tag + "[" + i + "]");
                    }
                }
                assertClose("Xm's S" + tag, sGot, sv, Tolerance.BF16);

                for (boolean fa : new boolean[] {false, true}) {
                    String t2 = tag + (fa ? " A frozen" : "");
                    Tensor[] dy = p.in(rand(r, n * out, 1), BF, 2, n / 2, out);
                    Tensor[] dx = p.out(F, 2, n / 2, in);
                    Tensor[] dA = fa ? new Tensor[2] : p.in(rand(r, rank * in, 1), F, rank, in);
                    Tensor[] dB = p.in(rand(r, out * rank, 1), F, out, rank);
                    Tensor[] dym = p.out(BF, n, m.ldy());
                    be.loraLinearBackward(dy[0], b[0], s, m, sbS[0], wm[0], xm[0], dym[0], dx[0], dA[0], dB[0]);
                    // reference from primitives on the rounded stages: dS = bf16(s dy B); dx = dy op(W)^T + dS bf16(A);
                    // dB += s dy^T S; dA += dS^T x
                    try (Tensor g32 = p.ref.zeros(F, n, rank); Tensor dS = p.ref.zeros(BF, n, rank);
                         Tensor aR = p.ref.upload(av, BF, rank, in)) {
                        p.ref.matmul(dy[1], false, w[1], fifo, dx[1], 1f, 0f);
                        p.ref.matmul(dy[1], false, b[1], false, g32, s, 0f);
                        p.ref.copy(g32, dS);
                        p.ref.matmul(dS, false, aR, false, dx[1], 1f, 1f);
                        p.ref.matmul(dy[1], true, sRef, false, dB[1], s, 1f);
                        if (!fa) {
                            p.ref.matmul(dS, true, x[1], false, dA[1], 1f, 1f);
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

    /**
     * DoRA's rescale and its backward (Backend#doraScale, #doraScaleBackward) in the staged path's dtypes (z, y, dy,
     * dz bf16; k, n, bias, dm fp32), with and without a bias, against values computed here in double: y = k ∘ z + b
     * rounded once, dz = k ∘ dy rounded, dm += Σ_rows dy ∘ z / n; a null dm (frozen magnitude) leaves only dz.
     */
    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void doraScaleForwardAndBackward(Backend be) {
        int n = 70, out = 40;
        Random r = new Random(2103);
        try (be) {
            float[] zv = bf16(rand(r, n * out, 1));
            float[] dyv = bf16(rand(r, n * out, 1));
            float[] kv = rand(r, out, 1);
            float[] bv = rand(r, out, 1);
            float[] nv = new float[out];
            for (int o = 0; o < out; o++) {
                nv[o] = 0.5f + r.nextFloat();
            }
            float[] dm0 = rand(r, out, 1);
            for (boolean withBias : new boolean[] {true, false}) {
                try (Tensor z = be.upload(zv, BF, n, out); Tensor dy = be.upload(dyv, BF, n, out);
                     Tensor k = be.upload(kv, F, out); Tensor bias = be.upload(bv, F, out);
                     Tensor nt = be.upload(nv, F, out); Tensor dm = be.upload(dm0, F, out);
                     Tensor y = be.zeros(BF, n, out); Tensor dz = be.zeros(BF, n, out)) {
                    be.doraScale(z, k, withBias ? bias : null, y);
                    be.doraScaleBackward(dy, z, k, nt, dz, dm);
                    float[] wantY = new float[n * out];
                    float[] wantDz = new float[n * out];
                    double[] wantDm = new double[out];
                    for (int o = 0; o < out; o++) {
                        wantDm[o] = dm0[o];
                    }
                    for (int i = 0; i < n * out; i++) {
                        int o = i % out;
                        wantY[i] = BF.round((float) ((double) kv[o] * zv[i] + (withBias ? bv[o] : 0)));
                        wantDz[i] = BF.round((float) ((double) kv[o] * dyv[i]));
                        wantDm[o] += (double) dyv[i] * zv[i] / nv[o];
                    }
                    String tag = withBias ? "" : " (no bias)";
                    assertClose("y = k z + b" + tag, be.download(y), wantY, Tolerance.BF16);
                    assertClose("dz = k dy" + tag, be.download(dz), wantDz, Tolerance.BF16);
                    var res = Tolerance.F32.compare("dm += sum dy z / n" + tag, be.download(dm), wantDm);
                    org.junit.jupiter.api.Assertions.assertTrue(res.ok(), res.toString());
                    be.doraScaleBackward(dy, z, k, nt, dz, null);   // frozen magnitude: dz only
                    assertClose("dz, frozen m" + tag, be.download(dz), wantDz, Tolerance.BF16);
                }
            }
        }
    }

    private static float[] bf16(float[] v) {
        float[] o = v.clone();
        for (int i = 0; i < o.length; i++) {
            o[i] = BF.round(o[i]);
        }
        return o;
    }

    private static void assertClose(String what, float[] got, float[] want, Tolerance tol) {
        var res = tol.compare(what, got, want);
        org.junit.jupiter.api.Assertions.assertTrue(res.ok(), res.toString());
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
