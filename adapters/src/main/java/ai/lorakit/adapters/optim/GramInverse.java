package ai.lorakit.adapters.optim;

/**
 * LoRA-FA's (A Aᵀ + ridge·I)⁻¹ for one frozen A [r,in], on the host in double (r is small: 8..256, computed
 * once per module). Cholesky factorisation G = L Lᵀ, then G⁻¹ = L⁻ᵀ L⁻¹.
 *
 * <p>Singularity rule: A must have full row rank r. PEFT applies {@code torch.linalg.pinv}, whose default
 * cutoff drops eigenvalues below r·2⁻²³·λ_max (fp32 resolution); lorakit refuses such an A instead of silently
 * projecting directions out: λ_min(A Aᵀ) <= r·2⁻²³·λ_max(A Aᵀ) (both estimated by power iteration, on G and
 * on G⁻¹) or a non-positive Cholesky pivot throws {@link IllegalArgumentException} naming the module.
 */
final class GramInverse {

    private static final double FP32_EPS = 0x1p-23;
    private static final int POWER_ITERATIONS = 200;

    private GramInverse() {
    }

    /**
     * @param a      A row-major [r,in]
     * @param module the module's name, for error messages
     * @return (A Aᵀ + ridge·I)⁻¹ row-major [r,r]
     */
    static double[] invert(float[] a, int r, int in, double ridge, String module) {
        for (float x : a) {
            if (!Float.isFinite(x)) {
                throw new IllegalArgumentException("LoRA-FA: A of module '" + module + "' has non-finite values");
            }
        }
        double[] g = new double[r * r];                       // G = A Aᵀ [r,r]
        for (int i = 0; i < r; i++) {
            for (int j = 0; j <= i; j++) {
                double acc = 0;
                for (int k = 0; k < in; k++) {
                    acc += (double) a[i * in + k] * a[j * in + k];
                }
                g[i * r + j] = acc;
                g[j * r + i] = acc;
            }
        }
        double lambdaMax = largestEigenvalue(g, r);
        double cutoff = r * FP32_EPS * lambdaMax;
        if (!(lambdaMax > 0)) {
            throw singular(module, r, in, "A is all zeros (a zero-initialised A cannot be trained with LoRA-FA)");
        }
        for (int i = 0; i < r; i++) {
            g[i * r + i] += ridge;
        }
        double[] lower = new double[r * r];                   // L, G + ridge·I = L Lᵀ
        for (int j = 0; j < r; j++) {
            double d = g[j * r + j];
            for (int k = 0; k < j; k++) {
                d -= lower[j * r + k] * lower[j * r + k];
            }
            if (!(d - ridge > cutoff)) {
                throw singular(module, r, in, String.format("Cholesky pivot %d is %.3e, cutoff %.3e", j, d - ridge,
                        cutoff));
            }
            double ljj = Math.sqrt(d);
            lower[j * r + j] = ljj;
            for (int i = j + 1; i < r; i++) {
                double s = g[i * r + j];
                for (int k = 0; k < j; k++) {
                    s -= lower[i * r + k] * lower[j * r + k];
                }
                lower[i * r + j] = s / ljj;
            }
        }
        double[] linv = new double[r * r];                    // L⁻¹, lower triangular
        for (int c = 0; c < r; c++) {
            linv[c * r + c] = 1 / lower[c * r + c];
            for (int i = c + 1; i < r; i++) {
                double s = 0;
                for (int k = c; k < i; k++) {
                    s -= lower[i * r + k] * linv[k * r + c];
                }
                linv[i * r + c] = s / lower[i * r + i];
            }
        }
        double[] inv = new double[r * r];                     // G⁻¹ = L⁻ᵀ L⁻¹
        for (int i = 0; i < r; i++) {
            for (int j = 0; j <= i; j++) {
                double s = 0;
                for (int k = i; k < r; k++) {
                    s += linv[k * r + i] * linv[k * r + j];
                }
                inv[i * r + j] = s;
                inv[j * r + i] = s;
            }
        }
        double lambdaMin = 1 / largestEigenvalue(inv, r) - ridge;
        if (!(lambdaMin > cutoff)) {
            throw singular(module, r, in, String.format("λ_min(A Aᵀ) ≈ %.3e <= cutoff %.3e (λ_max %.3e)",
                    lambdaMin, cutoff, lambdaMax));
        }
        return inv;
    }

    /** Power iteration on a symmetric positive semi-definite m [r,r]; returns the Rayleigh quotient. */
    static double largestEigenvalue(double[] m, int r) {
        double[] x = new double[r];
        for (int i = 0; i < r; i++) {
            x[i] = 1 + 0.01 * i;                              // deterministic start, not orthogonal to e.g. 1
        }
        double lambda = 0;
        double[] y = new double[r];
        for (int it = 0; it < POWER_ITERATIONS; it++) {
            double norm = 0;
            for (double v : x) {
                norm += v * v;
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                return 0;
            }
            for (int i = 0; i < r; i++) {
                x[i] /= norm;
            }
            lambda = 0;
            for (int i = 0; i < r; i++) {
                double s = 0;
                for (int k = 0; k < r; k++) {
                    s += m[i * r + k] * x[k];
                }
                y[i] = s;
                lambda += x[i] * s;
            }
            double[] t = x;
            x = y;
            y = t;
        }
        return lambda;
    }

    private static IllegalArgumentException singular(String module, int r, int in, String why) {
        return new IllegalArgumentException("LoRA-FA: A Aᵀ of module '" + module + "' is singular: A [" + r + ","
                + in + "] must have full row rank " + r + " (" + why + ")");
    }
}
