package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.stream.Stream;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Every op the bf16 precision policy (ARCHITECTURE.md, "Precision") runs on GPT-2's training path, called with the
 * policy's dtypes: BF16 frozen weights and activations (and activation gradients), F32 statistics, softmax
 * probabilities, logits, adapter weights and parameter gradients, mixed in one call. On every backend each output
 * (a) is written, (b) when BF16 holds bf16-rounded values (round to nearest even on the store), and (c) matches
 * the F32 CpuBackend run on the same bf16-rounded input values, to Tolerance.BF16 for a BF16 output and
 * Tolerance.F32 for an F32 one (fp32 accumulation inside every op). Llama's ops are covered the same way in
 * {@link LlamaOpsContractTest#opsOnBf16Activations}; the GEMM's dtype combinations in {@link GemmContractTest}.
 */
class PrecisionPolicyContractTest {

    private static final float EPS = 1e-5f;
    private static final DType BF = DType.BF16;
    private static final DType F = DType.F32;

    static Stream<Arguments> backends() {
        return ContractBackends.all().map(nb -> Arguments.of(Named.of(nb.getName(), nb.getPayload().get())));
    }

    /**
     * The backend under test and the F32 reference side by side: {@link #in} uploads one input to both (the
     * reference gets the values rounded to the policy dtype, in F32), {@link #out} makes an output on both (the
     * tested one poisoned with NaN), {@link #check} compares them.
     */
    static final class Pair implements AutoCloseable {
        final Backend be;
        final CpuBackend ref = new CpuBackend(true);
        final List<Tensor> open = new ArrayList<>();

        Pair(Backend be) {
            this.be = be;
        }

        Tensor[] in(float[] v, DType dt, int... shape) {
            float[] r = v.clone();
            for (int i = 0; i < r.length; i++) {
                r[i] = dt.round(r[i]);
            }
            return keep(be.upload(v, dt, shape), ref.upload(r, F, shape));
        }

        Tensor[] out(DType dt, int... shape) {
            Tensor t = be.zeros(dt, shape);
            be.fill(t, Float.NaN);
            return keep(t, ref.zeros(F, shape));
        }

        Tensor[] ids(int[] v, int... shape) {
            return keep(be.uploadInts(v, shape), ref.uploadInts(v, shape));
        }

        private Tensor[] keep(Tensor a, Tensor b) {
            open.add(a);
            open.add(b);
            return new Tensor[] {a, b};
        }

        void check(String what, Tensor[] t) {
            check(what, t, Tolerance.of(t[0].dtype()));
        }

        /** As {@link #check(String, Tensor[])} with an explicit tolerance (a fast kernel documented at bf16's). */
        void check(String what, Tensor[] t, Tolerance tol) {
            float[] got = be.download(t[0]);
            DType dt = t[0].dtype();
            for (int i = 0; i < got.length; i++) {
                assertFalse(Float.isNaN(got[i]), what + "[" + i + "] not written (still NaN)");
                if (dt != F) {
                    assertEquals(dt.round(got[i]), got[i], 0f, what + "[" + i + "] not rounded to " + dt);
                }
            }
            Tolerance.Result r = tol.compare(what + " (" + dt + ")", got, ref.download(t[1]));
            assertTrue(r.ok(), r.describe());
        }

        @Override
        public void close() {
            open.forEach(Tensor::close);
            ref.close();
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void embeddingAndLayerNorm(Backend be) {
        int b = 2, t = 7, c = 40, v = 23, n = b * t;
        Random r = new Random(1900);
        int[] idv = new int[n];
        for (int i = 0; i < n; i++) {
            idv[i] = r.nextInt(v);
        }
        try (be; Pair p = new Pair(be)) {
            Tensor[] ids = p.ids(idv, b, t);
            Tensor[] wte = p.in(rand(r, v * c, 1), BF, v, c);
            Tensor[] wpe = p.in(rand(r, t * c, 1), BF, t, c);
            Tensor[] x = p.out(BF, b, t, c);
            be.embeddingForward(ids[0], wte[0], wpe[0], x[0]);
            p.ref.embeddingForward(ids[1], wte[1], wpe[1], x[1]);
            p.check("embedding out", x);
            Tensor[] dout = p.in(rand(r, n * c, 1), BF, b, t, c);
            Tensor[] dwte = p.in(rand(r, v * c, 1), F, v, c);
            Tensor[] dwpe = p.in(rand(r, t * c, 1), F, t, c);
            be.embeddingBackward(dout[0], ids[0], dwte[0], dwpe[0]);
            p.ref.embeddingBackward(dout[1], ids[1], dwte[1], dwpe[1]);
            p.check("embedding dwte (+=)", dwte);
            p.check("embedding dwpe (+=)", dwpe);

            Tensor[] xs = p.in(rand(r, n * c, 3), BF, b, t, c);
            Tensor[] g = p.in(rand(r, c, 1), BF, c);
            Tensor[] beta = p.in(rand(r, c, 1), BF, c);
            Tensor[] y = p.out(BF, b, t, c);
            Tensor[] mean = p.out(F, n);
            Tensor[] rstd = p.out(F, n);
            be.layerNormForward(xs[0], g[0], beta[0], EPS, y[0], mean[0], rstd[0]);
            p.ref.layerNormForward(xs[1], g[1], beta[1], EPS, y[1], mean[1], rstd[1]);
            p.check("layerNorm out", y);
            p.check("layerNorm mean", mean);
            p.check("layerNorm rstd", rstd);
            Tensor[] dx = p.out(BF, b, t, c);
            Tensor[] dg = p.in(rand(r, c, 1), F, c);
            Tensor[] db = p.in(rand(r, c, 1), F, c);
            be.layerNormBackward(dout[0], xs[0], g[0], mean[0], rstd[0], dx[0], dg[0], db[0]);
            p.ref.layerNormBackward(dout[1], xs[1], g[1], mean[1], rstd[1], dx[1], dg[1], db[1]);
            p.check("layerNorm dx", dx);
            p.check("layerNorm dgamma (+=)", dg);
            p.check("layerNorm dbeta (+=)", db);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void linearLayersBothLayoutsAndLora(Backend be) {
        int n = 13, in = 24, out = 36, rank = 4;
        Random r = new Random(1901);
        try (be; Pair p = new Pair(be)) {
            Tensor[] x = p.in(rand(r, n * in, 1), BF, n, in);
            Tensor[] bias = p.in(rand(r, out, 1), BF, out);
            Tensor[] dy = p.in(rand(r, n * out, 1), BF, n, out);
            for (boolean fanInFanOut : new boolean[] {false, true}) {
                String tag = fanInFanOut ? " [in,out]" : " [out,in]";
                int[] ws = fanInFanOut ? new int[] {in, out} : new int[] {out, in};
                Tensor[] w = p.in(rand(r, in * out, 1), BF, ws);
                // y = x op(W) + b, all BF16 (frozen layer)
                Tensor[] y = p.out(BF, n, out);
                be.matmul(x[0], false, w[0], !fanInFanOut, y[0], 1f, 0f);
                p.ref.matmul(x[1], false, w[1], !fanInFanOut, y[1], 1f, 0f);
                be.addRowVector(y[0], bias[0], y[0]);
                p.ref.addRowVector(y[1], bias[1], y[1]);
                p.check("linear y" + tag, y);
                // dx = dy op(W)^T (BF16)
                Tensor[] dx = p.out(BF, n, in);
                be.matmul(dy[0], false, w[0], fanInFanOut, dx[0], 1f, 0f);
                p.ref.matmul(dy[1], false, w[1], fanInFanOut, dx[1], 1f, 0f);
                p.check("linear dx" + tag, dx);
                // full fine-tuning: dW (F32 master gradient) += BF16 activations; forward through an F32 W
                Tensor[] dw = p.in(rand(r, in * out, 1), F, ws);
                if (fanInFanOut) {
                    be.matmul(x[0], true, dy[0], false, dw[0], 1f, 1f);
                    p.ref.matmul(x[1], true, dy[1], false, dw[1], 1f, 1f);
                } else {
                    be.matmul(dy[0], true, x[0], false, dw[0], 1f, 1f);
                    p.ref.matmul(dy[1], true, x[1], false, dw[1], 1f, 1f);
                }
                p.check("linear dW (+=)" + tag, dw);
                Tensor[] yMaster = p.out(BF, n, out);
                be.matmul(x[0], false, dw[0], !fanInFanOut, yMaster[0], 1f, 0f);
                p.ref.matmul(x[1], false, dw[1], !fanInFanOut, yMaster[1], 1f, 0f);
                p.check("linear y through an F32 W" + tag, yMaster);
                // LoRA: BF16 x and W, F32 A, B and u, BF16 y
                Tensor[] a = p.in(rand(r, rank * in, 1), F, rank, in);
                Tensor[] bm = p.in(rand(r, out * rank, 1), F, out, rank);
                Tensor[] u = p.out(F, n, rank);
                Tensor[] yl = p.out(BF, n, out);
                be.loraLinearForward(x[0], w[0], fanInFanOut, bias[0], a[0], bm[0], 2f, u[0], yl[0]);
                p.ref.loraLinearForward(x[1], w[1], fanInFanOut, bias[1], a[1], bm[1], 2f, u[1], yl[1]);
                p.check("lora u" + tag, u);
                p.check("lora y" + tag, yl);
                // DoRA: n = ||W + s B A|| per output unit from BF16 W and F32 A, B; k = m / n and 1 / n, all F32 [out].
                // BF16 tolerance: CUDA's fast tier reads a bf16 copy of A for W [out,in] (dora.cu, kernel2's twin).
                Tensor[] nrm = p.out(F, out);
                be.doraWeightNorm(w[0], fanInFanOut, a[0], bm[0], 2f, nrm[0]);
                p.ref.doraWeightNorm(w[1], fanInFanOut, a[1], bm[1], 2f, nrm[1]);
                p.check("dora n" + tag, nrm, Tolerance.BF16);
                Tensor[] mag = p.in(rand(r, out, 1), F, out);
                Tensor[] k = p.out(F, out);
                be.divide(mag[0], nrm[0], k[0]);
                p.ref.divide(mag[1], nrm[1], k[1]);
                p.check("dora k = m / n" + tag, k, Tolerance.BF16);
                Tensor[] invN = p.out(F, out);
                be.reciprocal(nrm[0], invN[0]);
                p.ref.reciprocal(nrm[1], invN[1]);
                p.check("dora 1 / n" + tag, invN, Tolerance.BF16);
            }
            // the LoRA gradients: g = dy B (F32), dA += s g^T x, dB += s dy^T u (F32)
            Tensor[] bm = p.in(rand(r, out * rank, 1), F, out, rank);
            Tensor[] u = p.in(rand(r, n * rank, 1), F, n, rank);
            Tensor[] g = p.out(F, n, rank);
            be.matmul(dy[0], false, bm[0], false, g[0], 1f, 0f);
            p.ref.matmul(dy[1], false, bm[1], false, g[1], 1f, 0f);
            p.check("lora g = dy B", g);
            Tensor[] da = p.in(rand(r, rank * in, 1), F, rank, in);
            be.matmul(g[0], true, x[0], false, da[0], 2f, 1f);
            p.ref.matmul(g[1], true, x[1], false, da[1], 2f, 1f);
            p.check("lora dA (+=)", da);
            Tensor[] dbm = p.in(rand(r, out * rank, 1), F, out, rank);
            be.matmul(dy[0], true, u[0], false, dbm[0], 2f, 1f);
            p.ref.matmul(dy[1], true, u[1], false, dbm[1], 2f, 1f);
            p.check("lora dB (+=)", dbm);
            // bias gradient: db += sum_rows dy (F32 from BF16)
            Tensor[] dbias = p.in(rand(r, out, 1), F, out);
            be.sumRows(dy[0], 1f, dbias[0]);
            p.ref.sumRows(dy[1], 1f, dbias[1]);
            p.check("sumRows db (+=)", dbias);
            // the lm head: BF16 activations and tied BF16 embedding -> F32 logits
            Tensor[] wte = p.in(rand(r, out * in, 1), BF, out, in);
            Tensor[] logits = p.out(F, n, out);
            be.matmul(x[0], false, wte[0], true, logits[0], 1f, 0f);
            p.ref.matmul(x[1], false, wte[1], true, logits[1], 1f, 0f);
            p.check("lm head logits", logits);
            // dx of the head from the F32 dlogits: BF16
            Tensor[] dxh = p.out(BF, n, in);
            be.matmul(logits[0], false, wte[0], false, dxh[0], 1f, 0f);
            p.ref.matmul(logits[1], false, wte[1], false, dxh[1], 1f, 0f);
            p.check("lm head dx", dxh);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void residualGeluAndAttention(Backend be) {
        int b = 2, t = 9, nh = 3, hs = 8, c = nh * hs, n = b * t;
        Random r = new Random(1902);
        try (be; Pair p = new Pair(be)) {
            Tensor[] x = p.in(rand(r, n * c, 2), BF, b, t, c);
            Tensor[] y = p.in(rand(r, n * c, 2), BF, b, t, c);
            Tensor[] sum = p.out(BF, b, t, c);
            be.add(x[0], y[0], sum[0]);
            p.ref.add(x[1], y[1], sum[1]);
            p.check("residual add", sum);
            Tensor[] h = p.out(BF, b, t, c);
            be.geluForward(x[0], h[0]);
            p.ref.geluForward(x[1], h[1]);
            p.check("gelu", h);
            Tensor[] dh = p.out(BF, b, t, c);
            be.geluBackward(x[0], y[0], dh[0]);
            p.ref.geluBackward(x[1], y[1], dh[1]);
            p.check("gelu dx", dh);

            Tensor[] qkv = p.in(rand(r, n * 3 * c, 1), BF, b, t, 3 * c);
            Tensor[] o = p.out(BF, b, t, c);
            Tensor[] att = p.out(F, b, nh, t, t);
            be.attentionForward(qkv[0], nh, o[0], att[0]);
            p.ref.attentionForward(qkv[1], nh, o[1], att[1]);
            p.check("attention out", o);
            p.check("attention probabilities", att);
            Tensor[] dq = p.out(BF, b, t, 3 * c);
            be.attentionBackward(y[0], qkv[0], att[0], nh, dq[0]);
            p.ref.attentionBackward(y[1], qkv[1], att[1], nh, dq[1]);
            p.check("attention dqkv", dq);
        }
    }
}
