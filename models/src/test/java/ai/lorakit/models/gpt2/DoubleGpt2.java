package ai.lorakit.models.gpt2;

import java.util.HashMap;
import java.util.Map;

/**
 * An independent GPT-2 forward in double precision with plain loops, written from the architecture (Radford et
 * al. 2019, HF's GPT2LMHeadModel) and VARIANTS.md, sharing no code with lorakit: the oracle of
 * {@link Gpt2GradientCheckTest}. Parameters are HF names -> double[] (Conv1D weights [in,out]); adapters are
 * attached per module name.
 */
final class DoubleGpt2 {
    final int v;
    final int p;
    final int c;
    final int layers;
    final int heads;
    final double eps;
    /** HF name (transformer.*) or adapter tensor name (module.lora_A, ...) -> values. */
    final Map<String, double[]> params = new HashMap<>();
    /** Adapted modules: module name -> kind. */
    final Map<String, Adapter> adapters = new HashMap<>();
    /** DoRA: module -> the weight norm n [out] held constant (detached), or absent = computed from the params. */
    final Map<String, double[]> doraNorm = new HashMap<>();

    enum Kind { LORA, DORA, VERA }

    /** An adapter on one module: LoRA/DoRA with rank r and scaling s; VeRA with shared rank r (s unused). */
    record Adapter(Kind kind, int r, double s) {
    }

    DoubleGpt2(int v, int p, int c, int layers, int heads, double eps) {
        this.v = v;
        this.p = p;
        this.c = c;
        this.layers = layers;
        this.heads = heads;
        this.eps = eps;
    }

    /** Logits [B*T][V] for ids [B][T]. */
    double[][] logits(int[][] ids) {
        int b = ids.length;
        int t = ids[0].length;
        int n = b * t;
        double[] wte = params.get("transformer.wte.weight");
        double[] wpe = params.get("transformer.wpe.weight");
        double[][] x = new double[n][c];
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) {
                for (int k = 0; k < c; k++) {
                    x[i * t + j][k] = wte[ids[i][j] * c + k] + wpe[j * c + k];
                }
            }
        }
        for (int l = 0; l < layers; l++) {
            String h = "transformer.h." + l + ".";
            double[][] a = layerNorm(x, h + "ln_1");
            double[][] qkv = linear(a, h + "attn.c_attn", c, 3 * c);
            double[][] y = attention(qkv, b, t);
            double[][] o = linear(y, h + "attn.c_proj", c, c);
            x = add(x, o);
            double[][] m = layerNorm(x, h + "ln_2");
            double[][] f = linear(m, h + "mlp.c_fc", c, 4 * c);
            for (double[] row : f) {
                for (int k = 0; k < row.length; k++) {
                    double z = row[k];
                    row[k] = 0.5 * z * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)));
                }
            }
            x = add(x, linear(f, h + "mlp.c_proj", 4 * c, c));
        }
        double[][] fin = layerNorm(x, "transformer.ln_f");
        double[][] out = new double[n][v];
        for (int i = 0; i < n; i++) {
            for (int w = 0; w < v; w++) {
                double s = 0;
                for (int k = 0; k < c; k++) {
                    s += fin[i][k] * wte[w * c + k];
                }
                out[i][w] = s;
            }
        }
        return out;
    }

    /** Mean cross-entropy of windows [B][T+1] (inputs 0..T-1, targets 1..T). */
    double loss(int[][] windows) {
        int b = windows.length;
        int t = windows[0].length - 1;
        int[][] ids = new int[b][t];
        for (int i = 0; i < b; i++) {
            System.arraycopy(windows[i], 0, ids[i], 0, t);
        }
        double[][] lg = logits(ids);
        double sum = 0;
        for (int i = 0; i < b; i++) {
            for (int j = 0; j < t; j++) {
                double[] row = lg[i * t + j];
                double max = Double.NEGATIVE_INFINITY;
                for (double z : row) {
                    max = Math.max(max, z);
                }
                double se = 0;
                for (double z : row) {
                    se += Math.exp(z - max);
                }
                sum += max + Math.log(se) - row[windows[i][j + 1]];
            }
        }
        return sum / (b * t);
    }

    /** Mean cross-entropy over the targets [B][T] that are not CrossEntropy.IGNORE (inputs [B][T]). */
    double maskedLoss(int[][] inputs, int[][] targets) {
        int t = inputs[0].length;
        double[][] lg = logits(inputs);
        double sum = 0;
        int counted = 0;
        for (int i = 0; i < inputs.length; i++) {
            for (int j = 0; j < t; j++) {
                if (targets[i][j] == ai.lorakit.gpu.CrossEntropy.IGNORE) {
                    continue;
                }
                double[] row = lg[i * t + j];
                double max = Double.NEGATIVE_INFINITY;
                for (double z : row) {
                    max = Math.max(max, z);
                }
                double se = 0;
                for (double z : row) {
                    se += Math.exp(z - max);
                }
                sum += max + Math.log(se) - row[targets[i][j]];
                counted++;
            }
        }
        return sum / counted;
    }

    /** d maskedLoss / d params[name][i] by central differences. */
    double maskedFiniteDifference(int[][] inputs, int[][] targets, String name, int i, double step) {
        double[] w = params.get(name);
        double old = w[i];
        w[i] = old + step;
        double up = maskedLoss(inputs, targets);
        w[i] = old - step;
        double down = maskedLoss(inputs, targets);
        w[i] = old;
        return (up - down) / (2 * step);
    }

    /** d loss / d params[name][i] by central differences. */
    double finiteDifference(int[][] windows, String name, int i, double step) {
        double[] w = params.get(name);
        double old = w[i];
        w[i] = old + step;
        double up = loss(windows);
        w[i] = old - step;
        double down = loss(windows);
        w[i] = old;
        return (up - down) / (2 * step);
    }

    private double[][] layerNorm(double[][] x, String prefix) {
        double[] g = params.get(prefix + ".weight");
        double[] bb = params.get(prefix + ".bias");
        double[][] out = new double[x.length][c];
        for (int i = 0; i < x.length; i++) {
            double mean = 0;
            for (double z : x[i]) {
                mean += z;
            }
            mean /= c;
            double var = 0;
            for (double z : x[i]) {
                var += (z - mean) * (z - mean);
            }
            var /= c;
            double r = 1 / Math.sqrt(var + eps);
            for (int k = 0; k < c; k++) {
                out[i][k] = (x[i][k] - mean) * r * g[k] + bb[k];
            }
        }
        return out;
    }

    /** Causal self-attention over qkv [N][3C] (q | k | v), heads of size C/H. */
    private double[][] attention(double[][] qkv, int b, int t) {
        int hs = c / heads;
        double[][] out = new double[b * t][c];
        for (int i = 0; i < b; i++) {
            for (int h = 0; h < heads; h++) {
                for (int q = 0; q < t; q++) {
                    double[] sc = new double[q + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int k = 0; k <= q; k++) {
                        double s = 0;
                        for (int d = 0; d < hs; d++) {
                            s += qkv[i * t + q][h * hs + d] * qkv[i * t + k][c + h * hs + d];
                        }
                        sc[k] = s / Math.sqrt(hs);
                        max = Math.max(max, sc[k]);
                    }
                    double z = 0;
                    for (int k = 0; k <= q; k++) {
                        sc[k] = Math.exp(sc[k] - max);
                        z += sc[k];
                    }
                    for (int k = 0; k <= q; k++) {
                        for (int d = 0; d < hs; d++) {
                            out[i * t + q][h * hs + d] += sc[k] / z * qkv[i * t + k][2 * c + h * hs + d];
                        }
                    }
                }
            }
        }
        return out;
    }

    /** y = x W + b (W [in,out]) plus the module's adapter, if any (VARIANTS.md sections 1, 4, 5). */
    private double[][] linear(double[][] x, String module, int in, int out) {
        double[] w = params.get(module + ".weight");
        double[] bias = params.get(module + ".bias");
        Adapter ad = adapters.get(module);
        double[][] base = new double[x.length][out];   // x W (no bias)
        for (int i = 0; i < x.length; i++) {
            for (int k = 0; k < in; k++) {
                double xv = x[i][k];
                for (int o = 0; o < out; o++) {
                    base[i][o] += xv * w[k * out + o];
                }
            }
        }
        double[][] delta = new double[x.length][out];   // the adapter's additive path
        if (ad != null && ad.kind() != Kind.VERA) {
            double[] a = params.get(module + ".lora_A");   // [r,in]
            double[] bm = params.get(module + ".lora_B");  // [out,r]
            for (int i = 0; i < x.length; i++) {
                double[] u = new double[ad.r()];
                for (int r = 0; r < ad.r(); r++) {
                    for (int k = 0; k < in; k++) {
                        u[r] += x[i][k] * a[r * in + k];
                    }
                }
                for (int o = 0; o < out; o++) {
                    double s = 0;
                    for (int r = 0; r < ad.r(); r++) {
                        s += u[r] * bm[o * ad.r() + r];
                    }
                    delta[i][o] = ad.s() * s;
                }
            }
        } else if (ad != null) {
            double[] sa = params.get("vera_A");            // [r,inMax]
            double[] sb = params.get("vera_B");            // [outMax,r]
            double[] lb = params.get(module + ".vera_lambda_b");
            double[] ld = params.get(module + ".vera_lambda_d");
            int inMax = sa.length / ad.r();
            for (int i = 0; i < x.length; i++) {
                double[] u = new double[ad.r()];
                for (int r = 0; r < ad.r(); r++) {
                    for (int k = 0; k < in; k++) {
                        u[r] += x[i][k] * sa[r * inMax + k];
                    }
                    u[r] *= ld[r];
                }
                for (int o = 0; o < out; o++) {
                    double s = 0;
                    for (int r = 0; r < ad.r(); r++) {
                        s += u[r] * sb[o * ad.r() + r];
                    }
                    delta[i][o] = lb[o] * s;
                }
            }
        }
        double[] k = null;   // DoRA: m / ||W + s (B A)^T|| per output column
        if (ad != null && ad.kind() == Kind.DORA) {
            double[] m = params.get(module + ".lora_magnitude_vector");
            double[] n = doraNorm.containsKey(module) ? doraNorm.get(module) : doraNorm(module, in, out);
            k = new double[out];
            for (int o = 0; o < out; o++) {
                k[o] = m[o] / n[o];
            }
        }
        double[][] y = new double[x.length][out];
        for (int i = 0; i < x.length; i++) {
            for (int o = 0; o < out; o++) {
                double z = base[i][o] + delta[i][o];
                y[i][o] = (k == null ? z : k[o] * z) + bias[o];
            }
        }
        return y;
    }

    /** DoRA's n[o] = || W[:,o] + s (B A)^T[:,o] || for a Conv1D W [in,out]. */
    double[] doraNorm(String module, int in, int out) {
        Adapter ad = adapters.get(module);
        double[] w = params.get(module + ".weight");
        double[] a = params.get(module + ".lora_A");
        double[] bm = params.get(module + ".lora_B");
        double[] n = new double[out];
        for (int o = 0; o < out; o++) {
            double sq = 0;
            for (int k = 0; k < in; k++) {
                double ba = 0;
                for (int r = 0; r < ad.r(); r++) {
                    ba += bm[o * ad.r() + r] * a[r * in + k];
                }
                double e = w[k * out + o] + ad.s() * ba;
                sq += e * e;
            }
            n[o] = Math.sqrt(sq);
        }
        return n;
    }

    private static double[][] add(double[][] a, double[][] b) {
        double[][] out = new double[a.length][a[0].length];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < a[i].length; k++) {
                out[i][k] = a[i][k] + b[i][k];
            }
        }
        return out;
    }
}
