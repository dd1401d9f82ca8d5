package ai.lorakit.adapters;

import java.util.LinkedHashMap;
import java.util.Map;

/**
 * An independent double-precision forward of each parametrisation, written from the formulas of VARIANTS.md
 * with plain loops (no lorakit code). Parameters live in {@link #p} under the keys A [r,in], B [out,r], m [out],
 * E [r], lb [out], ld [r]; x [N,in] and the mask [N,in] (null = no dropout) are plain arrays, so a test can
 * perturb any value and re-evaluate (finite differences).
 *
 * <p>DoRA: the norm n = ||W_o + s (B A)_o|| is a constant in the gradient (paper section 4.3, PEFT detaches
 * it): when {@link #nFixed} is set, the forward uses it instead of recomputing n from the perturbed A and B.
 */
final class DoubleReference {
    final VariantCase.Kind kind;
    final boolean fifo;
    final int n;
    final int in;
    final int out;
    final int r;
    final double s;
    /** W as stored: [out,in], or [in,out] when fifo. */
    final double[] w;
    final double[] bias;
    final double[] x;
    /** Inverted-dropout mask [N,in] (values 0 or 1/(1-p)), or null. */
    final double[] mask;
    final Map<String, double[]> p = new LinkedHashMap<>();
    /** VeRA's shared A [r,inMax] and B [outMax,r]. */
    double[] sharedA;
    double[] sharedB;
    int inMax;
    double[] nFixed;

    DoubleReference(VariantCase.Kind kind, boolean fifo, int n, int in, int out, int r, double s,
                    double[] w, double[] bias, double[] x, double[] mask) {
        this.kind = kind;
        this.fifo = fifo;
        this.n = n;
        this.in = in;
        this.out = out;
        this.r = r;
        this.s = s;
        this.w = w;
        this.bias = bias;
        this.x = x;
        this.mask = mask;
    }

    /** W_oi of the torch-layout matrix [out,in]. */
    double wAt(int o, int i) {
        return fifo ? w[i * out + o] : w[o * in + i];
    }

    /** x_d = x ∘ mask. */
    double xd(int t, int i) {
        return mask == null ? x[t * in + i] : x[t * in + i] * mask[t * in + i];
    }

    /** (B A)_oi, for LoRA/DoRA. */
    double ba(int o, int i) {
        double[] a = p.get("A");
        double[] b = p.get("B");
        double acc = 0;
        for (int k = 0; k < r; k++) {
            acc += b[o * r + k] * a[k * in + i];
        }
        return acc;
    }

    /** DoRA: n_o = ||W_o + s (B A)_o|| over the input dim. */
    double[] doraNorm() {
        double[] nn = new double[out];
        for (int o = 0; o < out; o++) {
            double acc = 0;
            for (int i = 0; i < in; i++) {
                double v = wAt(o, i) + s * ba(o, i);
                acc += v * v;
            }
            nn[o] = Math.sqrt(acc);
        }
        return nn;
    }

    /** y [N,out] of the adapted layer. */
    double[] forward() {
        double[] y = new double[n * out];
        double[] nn = kind == VariantCase.Kind.DORA ? (nFixed != null ? nFixed : doraNorm()) : null;
        for (int t = 0; t < n; t++) {
            for (int o = 0; o < out; o++) {
                double base = 0;       // x W^T
                double baseD = 0;      // x_d W^T
                for (int i = 0; i < in; i++) {
                    base += x[t * in + i] * wAt(o, i);
                    baseD += xd(t, i) * wAt(o, i);
                }
                double adapter = adapter(t, o);
                y[t * out + o] = switch (kind) {
                    case LORA, VERA, ADALORA -> base + bias[o] + adapter;
                    case DORA -> {
                        double k = p.get("m")[o] / nn[o];
                        yield mask == null
                                ? bias[o] + k * (base + adapter)                         // PEFT's reuse path
                                : base + bias[o] + (k - 1) * baseD + k * adapter;        // dropout path
                    }
                };
            }
        }
        return y;
    }

    /** The low-rank term of output (t, o), including its scaling. */
    private double adapter(int t, int o) {
        double acc = 0;
        switch (kind) {
            case LORA, DORA -> {
                double[] a = p.get("A");
                double[] b = p.get("B");
                for (int k = 0; k < r; k++) {
                    double u = 0;
                    for (int i = 0; i < in; i++) {
                        u += xd(t, i) * a[k * in + i];
                    }
                    acc += u * b[o * r + k];
                }
                return s * acc;
            }
            case ADALORA -> {
                double[] a = p.get("A");
                double[] b = p.get("B");
                double[] e = p.get("E");
                for (int k = 0; k < r; k++) {
                    double u = 0;
                    for (int i = 0; i < in; i++) {
                        u += xd(t, i) * a[k * in + i] * e[k];
                    }
                    acc += u * b[o * r + k];
                }
                return s * acc;
            }
            case VERA -> {
                double[] lb = p.get("lb");
                double[] ld = p.get("ld");
                for (int k = 0; k < r; k++) {
                    double u = 0;
                    for (int i = 0; i < in; i++) {
                        u += xd(t, i) * sharedA[k * inMax + i];      // A_l = A[:, :in]
                    }
                    acc += ld[k] * u * sharedB[o * r + k];            // B_l = B[:out, :]
                }
                return lb[o] * acc;
            }
        }
        throw new AssertionError(kind);
    }

    /** ΔW in torch layout [out,in] as merge should fold it (for DoRA: the whole merged weight minus W). */
    double[] mergedWeightTorchLayout() {
        double[] wm = new double[out * in];
        double[] nn = kind == VariantCase.Kind.DORA ? doraNorm() : null;
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                double d = switch (kind) {
                    case LORA, DORA -> s * ba(o, i);
                    case ADALORA -> {
                        double acc = 0;
                        for (int k = 0; k < r; k++) {
                            acc += p.get("B")[o * r + k] * p.get("E")[k] * p.get("A")[k * in + i];
                        }
                        yield s * acc;
                    }
                    case VERA -> {
                        double acc = 0;
                        for (int k = 0; k < r; k++) {
                            acc += sharedB[o * r + k] * p.get("ld")[k] * sharedA[k * inMax + i];
                        }
                        yield p.get("lb")[o] * acc;
                    }
                };
                double v = wAt(o, i) + d;
                wm[o * in + i] = nn == null ? v : p.get("m")[o] / nn[o] * v;
            }
        }
        return wm;
    }

    /** The merged W in W's stored layout ([in,out] when fifo). */
    double[] mergedWeightInStoredLayout() {
        double[] t = mergedWeightTorchLayout();
        if (!fifo) {
            return t;
        }
        double[] st = new double[t.length];
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < in; i++) {
                st[i * out + o] = t[o * in + i];
            }
        }
        return st;
    }

    /** sum(G ∘ y). */
    double loss(double[] g) {
        double[] y = forward();
        double l = 0;
        for (int i = 0; i < y.length; i++) {
            l += g[i] * y[i];
        }
        return l;
    }

    /** d loss / d arr[j] for every j, by central differences of the double forward. */
    double[] finiteDifference(double[] arr, double[] g) {
        double h = 1e-5;
        double[] grad = new double[arr.length];
        for (int j = 0; j < arr.length; j++) {
            double v = arr[j];
            arr[j] = v + h;
            double lp = loss(g);
            arr[j] = v - h;
            double lm = loss(g);
            arr[j] = v;
            grad[j] = (lp - lm) / (2 * h);
        }
        return grad;
    }
}
