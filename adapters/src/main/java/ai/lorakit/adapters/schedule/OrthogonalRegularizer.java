package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.List;

/**
 * AdaLoRA's orthogonality regulariser on P = B [out,r] and Q = A [r,in] (VARIANTS.md section 6), in two forms:
 * <ul>
 *   <li>{@link Form#PEFT_MEAN_NORM} (what {@link RankAllocator} uses, as PEFT's {@code AdaLoraModel.forward} and
 *       the official AdaLoRA code): R = (1/M) Σ_P ‖C_P − I‖_F, the NON-squared Frobenius norm averaged over the M
 *       matrices (every A and every B), with C = A Aᵀ for A and C = Bᵀ B for B (both [r,r]);</li>
 *   <li>{@link Form#PAPER_SUM_SQUARED} (paper eq. 4): R = Σ_P ‖C_P − I‖²_F.</li>
 * </ul>
 * The loss added to the training loss is weight·R ({@code orth_reg_weight}, PEFT default 0.5).
 *
 * <p>Gradient (derived here; checked by finite differences in the tests). With D = C − I (symmetric) and
 * f = ‖D‖_F: df = ⟨D, dA Aᵀ + A dAᵀ⟩ / f = 2⟨D A, dA⟩ / f, so ∂f/∂A = 2 D A / f [r,in]; for B, dC = dBᵀB + BᵀdB
 * gives ∂f/∂B = 2 B D / f [out,r]. Squared form: ∂f²/∂A = 4 D A, ∂f²/∂B = 4 B D. At f = 0 the non-squared norm
 * has no derivative; the gradient is taken as 0 there (torch's subgradient of the norm).
 */
public final class OrthogonalRegularizer {

    /** Which regulariser; see the class comment. */
    public enum Form {
        /** PEFT / official code: mean over matrices of ‖C − I‖_F. */
        PEFT_MEAN_NORM,
        /** AdaLoRA paper: sum over matrices of ‖C − I‖²_F. */
        PAPER_SUM_SQUARED
    }

    private OrthogonalRegularizer() {
    }

    /**
     * weight·R for the given A (role LORA_A) and B (LORA_B) parameters; when {@code addGradients}, also adds
     * weight·∂R/∂P into the gradient of every trainable one of them (frozen ones contribute to R only).
     *
     * @return weight·R (0 for an empty list or weight 0, in which case nothing is touched)
     * @throws IllegalArgumentException a parameter that is neither LORA_A nor LORA_B, or not 2-d
     */
    public static double apply(List<Parameter> matrices, float weight, Form form, boolean addGradients) {
        if (matrices.isEmpty() || weight == 0f) {
            return 0.0;
        }
        int m = matrices.size();
        double total = 0;
        for (Parameter p : matrices) {
            boolean isA = p.role() == Parameter.Role.LORA_A;
            if ((!isA && p.role() != Parameter.Role.LORA_B) || p.value().rank() != 2) {
                throw new IllegalArgumentException("orthogonal regulariser: " + p + " " + p.value()
                        + " must be a 2-d LORA_A [r,in] or LORA_B [out,r]");
            }
            Tensor w = p.value();
            int r = isA ? w.dim(0) : w.dim(1);
            if (r == 0) {
                continue;                                  // rank-0 layer (pruned away): PEFT skips it
            }
            Backend be = w.backend();
            Tensor d = be.borrowWork(DType.F32, r, r);           // work tensors: no allocation per step
            Tensor eye = be.borrowWork(DType.F32, r, r);
            try {
                be.write(eye, identity(r));
                if (isA) {
                    be.matmul(w, false, w, true, d, 1f, 0f);       // C = A Aᵀ: [r,in] x [in,r]
                } else {
                    be.matmul(w, true, w, false, d, 1f, 0f);       // C = Bᵀ B: [r,out] x [out,r]
                }
                be.axpby(-1f, eye, 1f, d);                         // D = C − I
                double sq = be.dot(d, d);                          // f² = ‖D‖²_F
                double f = Math.sqrt(sq);
                double value = form == Form.PEFT_MEAN_NORM ? f / m : sq;
                total += value;
                if (addGradients && p.trainable()) {
                    double c = form == Form.PEFT_MEAN_NORM ? (f == 0 ? 0 : 2.0 / (f * m)) : 4.0;
                    Tensor g = p.gradForAccumulation();
                    float coef = (float) (weight * c);
                    if (isA) {
                        be.matmul(d, false, w, false, g, coef, 1f);   // += c·D A: [r,r] x [r,in]
                    } else {
                        be.matmul(w, false, d, false, g, coef, 1f);   // += c·B D: [out,r] x [r,r]
                    }
                }
            } finally {
                be.returnWork(d);
                be.returnWork(eye);
            }
        }
        return weight * total;
    }

    /** I [r,r] row-major. */
    private static float[] identity(int r) {
        float[] v = new float[r * r];
        for (int i = 0; i < r; i++) {
            v[i * r + i] = 1f;
        }
        return v;
    }
}
