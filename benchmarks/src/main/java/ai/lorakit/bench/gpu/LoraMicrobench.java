package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Dim3;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Function;

/**
 * The GPU microbenchmarks of PERFORMANCE.md ("Targets", GPU table): every LoRA-family op of the fast tier against
 * the frozen cuBLAS GEMM it rides on, at d = 4096, r = 16, N = 16384 tokens (bf16 base and activations, fp32
 * adapters), timed with device events after warm-up (median of the repeats). Inputs are random (never zeros);
 * X, dY and W are 128-268 MB, far larger than L2, so each repeat streams them from HBM.
 *
 * <p>The LoRA layer is the spare-margin K-concat design (lora_fused.cu): forward = lora_shrink_fwd_kernel2 + one
 * GEMM with K = d + r; backward = lora_linear_bwd_x_kernel1 (dY read once) + one dX GEMM with K = d + r + the dA
 * GEMM. The "packed" rows time the same layer on dense x and dY, which the two kernels copy into the margin buffers
 * as they read them (one extra write of each, no extra read). Ratios are against the frozen layer's GEMMs
 * (forward: x W^T; backward: dY W). Delta-LoRA's update is reported as achieved bandwidth against a measured
 * device-to-device copy. A row that fails is recorded with its error and the rest continue.
 */
final class LoraMicrobench {

    private final Harness h;
    private final int n;
    private final int d;
    private final int r;
    private final int rv;
    private final int reps;
    private final List<Map<String, Object>> rows = new ArrayList<>();
    private final Map<String, Double> ms = new LinkedHashMap<>();

    LoraMicrobench(Harness h, int n, int d, int r, int rv, int reps) {
        this.h = h;
        this.n = n;
        this.d = d;
        this.r = r;
        this.rv = rv;
        this.reps = reps;
    }

    List<Map<String, Object>> run() {
        int margin = Math.max(r, rv);
        int ld = d + margin;                                 // row pitch of X, dY and Wm (a multiple of 8)
        float[] big = Harness.random(1, n * ld, 1f);
        Tensor X = h.upload(big, DType.BF16, n, ld);
        Tensor dY = h.upload(big, DType.BF16, n, ld);
        float[] wv = Harness.random(2, (d + margin) * ld, 0.02f);
        Tensor W = h.upload(wv, DType.BF16, d + margin, ld);
        Tensor Y = h.zeros(DType.BF16, n, d);
        Tensor Z = h.zeros(DType.BF16, n, d);
        Tensor dX = h.zeros(DType.BF16, n, d);
        Tensor u = h.zeros(DType.F32, n, margin);
        Tensor du = h.zeros(DType.F32, n, margin);
        Tensor A = h.upload(Harness.random(3, margin * d, 0.02f), DType.F32, margin, d);
        Tensor B = h.upload(Harness.random(4, d * margin, 0.02f), DType.F32, d, margin);
        Tensor dA = h.zeros(DType.F32, margin, d);
        Tensor dB = h.zeros(DType.F32, d, margin);
        Tensor lamD = h.upload(Harness.random(5, margin, 1f), DType.F32, margin);
        Tensor lamB = h.upload(Harness.random(6, d, 1f), DType.F32, d);
        Tensor dLamD = h.zeros(DType.F32, margin);
        Tensor dLamB = h.zeros(DType.F32, d);
        Tensor G = h.zeros(DType.F32, r, r);
        Tensor nrm = h.zeros(DType.F32, d);
        Tensor g = h.zeros(DType.F32, d);
        Tensor m = h.upload(Harness.random(7, d, 1f), DType.F32, d);
        Tensor dm = h.zeros(DType.F32, d);
        float s = 2f;
        long xa = h.addr(X);
        long ya = h.addr(dY);
        long wa = h.addr(W);

        // ------------------------------------------------------------ LoRA r
        Runnable baseFwd = () -> h.gemm(false, true, n, d, d, 1f, xa, DType.BF16, ld, wa, DType.BF16, ld,
                0f, h.addr(Y), DType.BF16, d);
        Runnable margins = () -> h.launch("lora_margin_fwd_kernel1", Harness.grid1d((long) d * r + (long) r * d, 256),
                Dim3.of(256), h.addr(A), h.addr(B), s, wa, ld, d, d, r);
        Runnable shrink = () -> h.launch("lora_shrink_fwd_kernel2", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)),
                Dim3.of(256), xa, ld, h.addr(W, d, 0, ld), ld, h.addr(u), h.addr(X, 0, d, ld), ld, 0L, 0, n, d, r);
        Runnable baseBwd = () -> h.gemm(false, false, n, d, d, 1f, ya, DType.BF16, ld, wa, DType.BF16, ld,
                0f, h.addr(dX), DType.BF16, d);
        Runnable helper = () -> h.launch("lora_linear_bwd_x_kernel1", Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)),
                Dim3.of(256), ya, ld, d, h.addr(W, 0, d, ld), ld, h.addr(X, 0, d, ld), ld, s, h.addr(du),
                h.addr(dY, 0, d, ld), ld, 0L, 0, h.addr(dB), n, r);
        // The layer's x and dY arrive dense [n, d]; the packed kernels copy them into X / dY (Xm, dYm) as they read
        // them. The dense inputs here are views of the OTHER buffer's first n*d elements (random bf16, read only):
        // the packed shrink reads dY's memory and writes X, the packed helper reads X's memory and writes dY.
        Tensor xDense = h.be.wrap(ya, DType.BF16, n, d);
        Tensor dyDense = h.be.wrap(xa, DType.BF16, n, d);
        Runnable shrinkPacked = () -> h.launch("lora_shrink_fwd_kernel2",
                Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256), h.addr(xDense), d,
                h.addr(W, d, 0, ld), ld, h.addr(u), h.addr(X, 0, d, ld), ld, xa, ld, n, d, r);
        Runnable helperPacked = () -> h.launch("lora_linear_bwd_x_kernel1",
                Dim3.of(Harness.ceilDiv(r, 64), Harness.ceilDiv(n, 128)), Dim3.of(256), h.addr(dyDense), d, d,
                h.addr(W, 0, d, ld), ld, h.addr(X, 0, d, ld), ld, s, h.addr(du), h.addr(dY, 0, d, ld), ld, ya, ld,
                h.addr(dB), n, r);
        Function<Runnable, Runnable> fwdWith = sh -> () -> {
            sh.run();
            h.gemm(false, true, n, d, d + r, 1f, xa, DType.BF16, ld, wa, DType.BF16, ld, 0f, h.addr(Y), DType.BF16, d);
        };
        Function<Runnable, Runnable> bwdWith = hp -> () -> {
            hp.run();
            h.gemm(false, false, n, d, d + r, 1f, ya, DType.BF16, ld, wa, DType.BF16, ld, 0f, h.addr(dX), DType.BF16, d);
            h.gemm(true, false, r, d, n, 1f, h.addr(dY, 0, d, ld), DType.BF16, ld, xa, DType.BF16, ld,
                    1f, h.addr(dA), DType.F32, d);
        };
        Runnable loraFwd = fwdWith.apply(shrink);
        Runnable loraBwd = bwdWith.apply(helper);
        margins.run();
        time("gemm_frozen_fwd", baseFwd, null, 0, "x W^T, cuBLAS bf16 (the baseline)");
        time("lora_shrink_fwd_kernel2", shrink, "gemm_frozen_fwd", 0, "S = x A^T into X's margin (one pass over X)");
        time("lora_fwd", loraFwd, "gemm_frozen_fwd", 1.08, "shrink + [x|S][W|sB]^T (K = d + r)");
        time("lora_shrink_fwd_kernel2 + pack", shrinkPacked, "gemm_frozen_fwd", 0,
                "dense x read once: packed into Xm, S = x A^T into its margin");
        time("lora_fwd_packed", fwdWith.apply(shrinkPacked), "gemm_frozen_fwd", 1.08,
                "packing shrink + [x|S][W|sB]^T (K = d + r): the layer on a dense x");
        time("lora_margin_fwd_kernel1", margins, "gemm_frozen_fwd", 0, "per optimizer step: sB and A into Wm");
        time("gemm_frozen_bwd_dx", baseBwd, null, 0, "dY W, cuBLAS bf16 (the baseline)");
        time("lora_linear_bwd_x_kernel1", helper, "gemm_frozen_bwd_dx", 0, "dS = s dY B and dB += s dY^T S, dY read once");
        time("lora_bwd", loraBwd, "gemm_frozen_bwd_dx", 1.15, "helper + [dY|dS][W;A] (K = d + r) + dA = dS^T x");
        time("lora_linear_bwd_x_kernel1 + pack", helperPacked, "gemm_frozen_bwd_dx", 0,
                "dense dY read once: packed into dYm, dS into its margin, dB += s dY^T S");
        time("lora_bwd_packed", bwdWith.apply(helperPacked), "gemm_frozen_bwd_dx", 1.15,
                "packing helper + [dY|dS][W;A] (K = d + r) + dA = dS^T x: the layer on a dense dY");
        time("lora_layer_fwd_bwd", () -> {
            loraFwd.run();
            loraBwd.run();
        }, null, 0, "LoRA r=" + r + " forward + backward");
        xDense.close();
        dyDense.close();

        // ------------------------------------------------------------ DoRA (same r)
        Runnable doraNorm = () -> {
            h.launch("dora_gram_fwd_kernel1", Dim3.of(r, r), Dim3.of(256), h.addr(A), d, d, r, h.addr(G));
            h.launch("dora_norm_fwd_kernel2", Dim3.of(1, Harness.ceilDiv(d, 128)), Dim3.of(256), wa, ld,
                    h.addr(W, d, 0, ld), ld, h.addr(B), h.addr(G), s, h.addr(m), h.addr(nrm), h.addr(g), d, d, r);
        };
        Runnable doraFwd = () -> {
            shrink.run();
            h.gemm(false, true, n, d, d + r, 1f, xa, DType.BF16, ld, wa, DType.BF16, ld, 0f, h.addr(Z), DType.BF16, d);
            h.launch("dora_scale_fwd_kernel1", Harness.grid1d((long) n * d / 8, 256), Dim3.of(256), h.addr(Z), d,
                    h.addr(Y), d, h.addr(g), 0L, n, d);
        };
        Runnable doraBwd = () -> {
            h.launch("dora_scale_bwd_x_kernel1", Dim3.of(Harness.ceilDiv(d, 256), 16), Dim3.of(256), ya, ld, h.addr(Z), d,
                    h.addr(g), h.addr(nrm), ya, ld, h.addr(dm), n, d);
            loraBwd.run();
        };
        doraNorm.run();
        time("dora_norm (gram + dora_norm_fwd_kernel2)", doraNorm, "gemm_frozen_fwd", 0,
                "once per optimizer step: ||W + sBA|| without BA");
        time("dora_layer_fwd_bwd", () -> {
            doraFwd.run();
            doraBwd.run();
        }, "lora_layer_fwd_bwd", 1.05, "LoRA layer + rescale forward/backward (norm cached)");

        // ------------------------------------------------------------ VeRA rv
        // The training path: LoRA's K-concat at rank rv with A = A_l and B' = λb ∘ B_l ∘ λd folded (once per step,
        // O(d rv), as the margins), s = 1; x and dY arrive dense and are packed; the λ gradients come from
        // dB' = dY^T u by two [d, rv] products (dλb += (dB' ∘ B_l) λd, dλd += (dB' ∘ B_l)^T λb; the ∘ B_l is
        // elementwise on [d, rv] and left out here).
        Runnable veraMargins = () -> h.launch("lora_margin_fwd_kernel1", Harness.grid1d((long) d * rv + (long) rv * d, 256),
                Dim3.of(256), h.addr(A), h.addr(B), 1f, wa, ld, d, d, rv);
        Runnable veraFwd = () -> {
            h.launch("lora_shrink_fwd_kernel2", Dim3.of(Harness.ceilDiv(rv, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                    h.addr(xDense), d, h.addr(W, d, 0, ld), ld, h.addr(u), h.addr(X, 0, d, ld), ld, xa, ld, n, d, rv);
            h.gemm(false, true, n, d, d + rv, 1f, xa, DType.BF16, ld, wa, DType.BF16, ld, 0f, h.addr(Y), DType.BF16, d);
        };
        Runnable veraBwd = () -> {
            h.launch("lora_linear_bwd_x_kernel1", Dim3.of(Harness.ceilDiv(rv, 64), Harness.ceilDiv(n, 128)), Dim3.of(256),
                    h.addr(dyDense), d, d, h.addr(W, 0, d, ld), ld, h.addr(X, 0, d, ld), ld, 1f, 0L,
                    h.addr(dY, 0, d, ld), ld, ya, ld, h.addr(dB), n, rv);
            h.gemm(false, false, n, d, d + rv, 1f, ya, DType.BF16, ld, wa, DType.BF16, ld, 0f, h.addr(dX), DType.BF16, d);
            h.gemm(false, false, d, 1, rv, 1f, h.addr(dB), DType.F32, rv, h.addr(lamD), DType.F32, 1,
                    1f, h.addr(dLamB), DType.F32, 1);
            h.gemm(true, false, rv, 1, d, 1f, h.addr(dB), DType.F32, rv, h.addr(lamB), DType.F32, 1,
                    1f, h.addr(dLamD), DType.F32, 1);
        };
        veraMargins.run();
        time("vera_layer_fwd_bwd", () -> {
            veraFwd.run();
            veraBwd.run();
        }, "lora_layer_fwd_bwd", 1.10, "VeRA r=" + rv + " as LoRA's packed K-concat + the λ products");
        margins.run();   // back to the LoRA margins

        // ------------------------------------------------------------ Delta-LoRA
        deltaLora();

        // ------------------------------------------------------------ AdamW
        adamw();
        return rows;
    }

    private void time(String name, Runnable work, String baseline, double target, String note) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("op", name);
        try {
            double t = h.timeMs(work, 3, reps);
            ms.put(name, t);
            row.put("ms", t);
            if (baseline != null && ms.containsKey(baseline)) {
                double ratio = t / ms.get(baseline);
                row.put("vs", baseline);
                row.put("ratio", ratio);
                if (target > 0) {
                    row.put("target", target);
                    row.put("met", ratio <= target);
                }
            }
        } catch (RuntimeException e) {
            row.put("error", e.toString());
        }
        row.put("note", note);
        rows.add(row);
    }

    private void row(String name, double value, String unit, String note) {
        Map<String, Object> row = new LinkedHashMap<>();
        row.put("op", name);
        row.put(unit, value);
        row.put("note", note);
        rows.add(row);
    }

    private void deltaLora() {
        try {
            long bytes = (long) d * d * 2;
            DeviceBuffer src = h.dev.alloc(4 * bytes);
            DeviceBuffer dst = h.dev.alloc(4 * bytes);
            try {
                h.dev.fill(src, 0, 4 * bytes, 0x3f80, 2);
                double copyMs = h.timeMs(() -> h.dev.copy(src, 0, dst, 0, 4 * bytes), 2, reps);
                double copyGBs = 2.0 * 4 * bytes / copyMs / 1e6;
                row("device_copy", copyGBs, "GB/s", "read + write, " + (4 * bytes >> 20) + " MiB");
                Tensor W2 = h.upload(Harness.random(11, d * d, 1f), DType.BF16, d, d);
                Tensor master = h.upload(Harness.random(11, d * d, 1f), DType.F32, d, d);
                Tensor comp = h.zeros(DType.BF16, d, d);
                Tensor an = h.upload(Harness.random(12, r * d, 0.01f), DType.F32, r, d);
                Tensor ao = h.upload(Harness.random(13, r * d, 0.01f), DType.F32, r, d);
                Tensor bn = h.upload(Harness.random(14, d * r, 0.01f), DType.F32, d, r);
                Tensor bo = h.upload(Harness.random(15, d * r, 0.01f), DType.F32, d, r);
                Tensor P = h.upload(Harness.random(16, d * 2 * r, 0.01f), DType.BF16, d, 2 * r);
                Tensor Q = h.upload(Harness.random(17, 2 * r * d, 0.01f), DType.BF16, 2 * r, d);
                String[] modes = {"plain", "comp", "master"};
                long[] perElem = {4, 8, 10};
                for (int i = 0; i < modes.length; i++) {
                    String mode = modes[i];
                    long mAddr = mode.equals("master") ? h.addr(master) : 0L;
                    long cAddr = mode.equals("comp") ? h.addr(comp) : 0L;
                    double t = h.timeMs(() -> h.launch("delta_lora_update_fwd_kernel1",
                            Dim3.of(Harness.ceilDiv(d, 128), Harness.ceilDiv(d, 64)), Dim3.of(256), h.addr(W2), d, mAddr, d,
                            cAddr, d, 0, 1e-3f, h.addr(an), h.addr(ao), h.addr(bn), h.addr(bo), d, d, r), 2, reps);
                    double gbs = (double) perElem[i] * d * d / t / 1e6;
                    Map<String, Object> rowm = new LinkedHashMap<>();
                    rowm.put("op", "delta_lora_update_fwd_kernel1 (" + mode + ")");
                    rowm.put("ms", t);
                    rowm.put("GB/s", gbs);
                    rowm.put("share_of_copy", gbs / copyGBs);
                    rowm.put("target", 0.85);
                    rowm.put("met", gbs / copyGBs >= 0.85);
                    rowm.put("note", perElem[i] + " bytes per element of W");
                    rows.add(rowm);
                }
                time("delta_lora_cublas_beta1", () -> h.gemm(false, false, d, d, 2 * r, 1e-3f, h.addr(P), DType.BF16, 2 * r,
                        h.addr(Q), DType.BF16, d, 1f, h.addr(W2), DType.BF16, d), null, 0,
                        "peer: cuBLAS W += c P Q (beta = 1), bf16");
            } finally {
                h.dev.free(src);
                h.dev.free(dst);
            }
        } catch (RuntimeException e) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("op", "delta_lora");
            row.put("error", e.toString());
            rows.add(row);
        }
    }

    /** GPT-2 small's LoRA parameters (12 layers x 4 modules x A, B at r) in one multi-tensor launch vs one per tensor. */
    private void adamw() {
        try {
            int[][] shapes = {{768, 2304}, {768, 768}, {768, 3072}, {3072, 768}};
            List<Tensor[]> ts = new ArrayList<>();
            for (int layer = 0; layer < 12; layer++) {
                for (int[] io : shapes) {
                    for (int numel : new int[] {r * io[0], io[1] * r}) {
                        Tensor[] t = new Tensor[4];
                        for (int q = 0; q < 4; q++) {
                            float[] v = Harness.random(100 + ts.size() * 4 + q, numel, q == 3 ? 0.01f : 0.1f);
                            if (q == 3) {
                                for (int i = 0; i < v.length; i++) {
                                    v[i] = Math.abs(v[i]);      // the second moment is never negative
                                }
                            }
                            t[q] = h.upload(v, DType.F32, numel);
                        }
                        ts.add(t);
                    }
                }
            }
            int chunk = 65536;
            long[] ptrs = new long[ts.size() * 4];
            long[] numel = new long[ts.size()];
            List<Integer> ct = new ArrayList<>();
            List<Long> cs = new ArrayList<>();
            List<Integer> cg = new ArrayList<>();
            for (int t = 0; t < ts.size(); t++) {
                for (int q = 0; q < 4; q++) {
                    ptrs[4 * t + q] = h.addr(ts.get(t)[q]);
                }
                numel[t] = ts.get(t)[0].numel();
                for (long st = 0; st < numel[t]; st += chunk) {
                    ct.add(t);
                    cs.add(st);
                    cg.add(t % 2);   // A -> group 0, B -> group 1 (LoRA+)
                }
            }
            Tensor tP = h.longs(ptrs);
            Tensor tN = h.longs(numel);
            Tensor tCT = h.ints(ct.stream().mapToInt(Integer::intValue).toArray());
            Tensor tCS = h.longs(cs.stream().mapToLong(Long::longValue).toArray());
            Tensor tCG = h.ints(cg.stream().mapToInt(Integer::intValue).toArray());
            Tensor tGD = h.upload(new float[] {1f, 1f}, DType.F32, 2);
            Tensor tGS = h.upload(new float[] {1e-4f, 1.6e-3f}, DType.F32, 2);
            Tensor tHy = h.upload(new float[] {0.1f, 1f}, DType.F32, 2);
            int chunks = ct.size();
            time("adamw_multi_fwd_kernel1", () -> h.launch("adamw_multi_fwd_kernel1", Dim3.of(chunks), Dim3.of(256),
                    h.addr(tP), h.addr(tN), h.addr(tCT), h.addr(tCS), h.addr(tCG), h.addr(tGD), h.addr(tGS), 0L,
                    h.addr(tHy), chunk, 0.9f, 0.999f, 1e-8f), null, 0, ts.size() + " tensors, one launch");
            time("adamw_fwd_kernel2 x tensors", () -> {
                for (Tensor[] t : ts) {
                    h.launch("adamw_fwd_kernel2", Harness.grid1d((t[0].numel() + 3) / 4, 256), Dim3.of(256), h.addr(t[0]),
                            h.addr(t[1]), h.addr(t[2]), h.addr(t[3]), t[0].numel(), 0.9f, 0.999f, 1e-8f, 1f, 1e-4f, 0.1f);
                }
            }, "adamw_multi_fwd_kernel1", 0, "one launch per tensor");
            time("adamw_fwd_kernel1 x tensors", () -> {
                for (Tensor[] t : ts) {
                    h.launch("adamw_fwd_kernel1", Harness.grid1d(t[0].numel(), 256), Dim3.of(256), h.addr(t[0]), 0,
                            h.addr(t[1]), 0, h.addr(t[2]), 0, h.addr(t[3]), 0, t[0].numel(), 0.9f, 0.999f, 1e-8f, 1f,
                            1e-4f, 0.1f);
                }
            }, "adamw_multi_fwd_kernel1", 0, "portable twin, one launch per tensor");
        } catch (RuntimeException e) {
            Map<String, Object> row = new LinkedHashMap<>();
            row.put("op", "adamw");
            row.put("error", e.toString());
            rows.add(row);
        }
    }
}
