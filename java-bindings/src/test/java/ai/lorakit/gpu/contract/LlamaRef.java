package ai.lorakit.gpu.contract;

/**
 * Naive double-precision references of the Llama-family ops, written from their definitions independently of
 * the backends (HF's LlamaRMSNorm, rotate_half RoPE, SiLU-gated SwiGLU, causal attention with repeat_kv). The
 * contract tests compare every backend's forward with these and every backward with finite differences of them.
 */
public final class LlamaRef {
    private LlamaRef() {
    }

    /** out [n,c] = x / sqrt(mean(x^2) + eps) * g; rstdOut [n] filled when non-null. */
    static double[] rmsNorm(double[] x, double[] g, double eps, int n, int c, double[] rstdOut) {
        double[] out = new double[n * c];
        for (int i = 0; i < n; i++) {
            double ss = 0;
            for (int j = 0; j < c; j++) {
                ss += x[i * c + j] * x[i * c + j];
            }
            double r = 1 / Math.sqrt(ss / c + eps);
            for (int j = 0; j < c; j++) {
                out[i * c + j] = x[i * c + j] * r * g[j];
            }
            if (rstdOut != null) {
                rstdOut[i] = r;
            }
        }
        return out;
    }

    /** HF: out = x * cat(cos, cos) + rotate_half(x) * cat(sin, sin) per head; x [b*t, nh*d]; cos, sin [>=t, d/2]. */
    static double[] rope(double[] x, double[] cos, double[] sin, int bt, int t, int nh, int d) {
        double[] out = new double[x.length];
        int half = d / 2;
        for (int n = 0; n < bt; n++) {
            int pos = n % t;
            for (int h = 0; h < nh; h++) {
                int o = (n * nh + h) * d;
                for (int i = 0; i < d; i++) {
                    double c = cos[pos * half + i % half];
                    double s = sin[pos * half + i % half];
                    double rot = i < half ? -x[o + i + half] : x[o + i - half];   // rotate_half
                    out[o + i] = x[o + i] * c + rot * s;
                }
            }
        }
        return out;
    }

    static double silu(double g) {
        return g / (1 + Math.exp(-g));
    }

    /** out = silu(gate) * up, elementwise. */
    static double[] swiglu(double[] gate, double[] up) {
        double[] out = new double[gate.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = silu(gate[i]) * up[i];
        }
        return out;
    }

    /**
     * Causal GQA: out [b,t,nh*d] from q [b,t,nh*d], k, v [b,t,nkv*d], query head h reading kv head
     * h / (nh / nkv); att [b,nh,t,t] filled (0 above the diagonal) when non-null.
     */
    public static double[] gqa(double[] q, double[] k, double[] v, int bs, int ts, int nh, int nkv, int d, double[] att) {
        double[] out = new double[bs * ts * nh * d];
        int group = nh / nkv;
        for (int b = 0; b < bs; b++) {
            for (int h = 0; h < nh; h++) {
                int kh = h / group;
                for (int t = 0; t < ts; t++) {
                    double[] s = new double[t + 1];
                    double m = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        double dd = 0;
                        for (int i = 0; i < d; i++) {
                            dd += q[((b * ts + t) * nh + h) * d + i] * k[((b * ts + u) * nkv + kh) * d + i];
                        }
                        s[u] = dd / Math.sqrt(d);
                        m = Math.max(m, s[u]);
                    }
                    double z = 0;
                    for (int u = 0; u <= t; u++) {
                        s[u] = Math.exp(s[u] - m);
                        z += s[u];
                    }
                    for (int u = 0; u <= t; u++) {
                        double a = s[u] / z;
                        if (att != null) {
                            att[((b * nh + h) * ts + t) * ts + u] = a;
                        }
                        for (int i = 0; i < d; i++) {
                            out[((b * ts + t) * nh + h) * d + i] += a * v[((b * ts + u) * nkv + kh) * d + i];
                        }
                    }
                }
            }
        }
        return out;
    }
}
