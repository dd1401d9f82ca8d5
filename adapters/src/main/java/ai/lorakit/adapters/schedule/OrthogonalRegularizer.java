package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceSums;
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
 *
 * <p>On the device, with no host transfer ({@link #applyTo}): the M matrices' D_i are rows of one [M, r²] tensor
 * (D_i row-major [r_i,r_i] at the start of row i, zero padded; I written once at {@link #create}), so one
 * {@link Backend#rowDot} gives every f_i², and the PEFT form's coefficients c_i = weight·2/(f_i·M) (0 where
 * f_i = 0) scale the rows ({@link Backend#mulColVector}) before the gradient GEMMs; weight·R goes to a slot of the
 * caller's stats tensor ({@link DeviceSums}).
 */
public final class OrthogonalRegularizer implements AutoCloseable {

    /** Which regulariser; see the class comment. */
    public enum Form {
        /** PEFT / official code: mean over matrices of ‖C − I‖_F. */
        PEFT_MEAN_NORM,
        /** AdaLoRA paper: sum over matrices of ‖C − I‖²_F. */
        PAPER_SUM_SQUARED
    }

    private final List<Parameter> matrices;
    private final float weight;
    private final Form form;
    private final Backend be;
    /** r_i of each matrix (0: a pruned-away layer, skipped as PEFT). */
    private final int[] ranks;
    /** [M, r²]: I_i at the start of row i (written once). */
    private final Tensor eye;
    /** [M, r²]: D_i = C_i − I_i, then (PEFT form) c_i·D_i. */
    private final Tensor d;
    /** [M]: f_i², then f_i. */
    private final Tensor norm;
    /** [M]: weight·(f_i/M or f_i²), then (PEFT form) c_i. */
    private final Tensor coef;

    private OrthogonalRegularizer(List<Parameter> matrices, float weight, Form form, Backend be, int[] ranks,
                                  Tensor eye, Tensor d, Tensor norm, Tensor coef) {
        this.matrices = matrices;
        this.weight = weight;
        this.form = form;
        this.be = be;
        this.ranks = ranks;
        this.eye = eye;
        this.d = d;
        this.norm = norm;
        this.coef = coef;
    }

    /**
     * The regulariser over the given A (role LORA_A) and B (LORA_B) parameters, with its device work tensors made
     * here (none per step).
     *
     * @throws IllegalArgumentException an empty list, a parameter that is neither LORA_A nor LORA_B or not 2-d, or
     *                                  parameters on different backends
     */
    public static OrthogonalRegularizer create(List<Parameter> matrices, float weight, Form form) {
        if (matrices == null || matrices.isEmpty() || form == null) {
            throw new IllegalArgumentException("orthogonal regulariser: need at least one LORA_A / LORA_B matrix and"
                    + " a form, got " + matrices + ", " + form);
        }
        List<Parameter> ms = List.copyOf(matrices);
        Backend be = ms.getFirst().value().backend();
        int m = ms.size();
        int[] ranks = new int[m];
        int rMax = 0;
        for (int i = 0; i < m; i++) {
            Parameter p = ms.get(i);
            boolean isA = p.role() == Parameter.Role.LORA_A;
            if ((!isA && p.role() != Parameter.Role.LORA_B) || p.value().rank() != 2) {
                throw new IllegalArgumentException("orthogonal regulariser: " + p + " " + p.value()
                        + " must be a 2-d LORA_A [r,in] or LORA_B [out,r]");
            }
            if (p.value().backend() != be) {
                throw new IllegalArgumentException("orthogonal regulariser: " + p + " is on " + p.value().backend()
                        + " but " + ms.getFirst() + " is on " + be + "; put every adapter on one backend");
            }
            ranks[i] = isA ? p.value().dim(0) : p.value().dim(1);
            rMax = Math.max(rMax, ranks[i]);
        }
        int width = rMax * rMax;
        float[] ident = new float[m * width];
        for (int i = 0; i < m; i++) {
            for (int k = 0; k < ranks[i]; k++) {
                ident[i * width + k * ranks[i] + k] = 1f;          // I_i [r_i,r_i] row-major at the row's start
            }
        }
        Tensor eye = null, d = null, norm = null;
        try {
            eye = be.upload(ident, DType.F32, m, width).named("adalora.orth.eye");
            d = be.zeros(DType.F32, m, width).named("adalora.orth.d");
            norm = be.zeros(DType.F32, m).named("adalora.orth.norm");
            Tensor coef = be.zeros(DType.F32, m).named("adalora.orth.coef");
            return new OrthogonalRegularizer(ms, weight, form, be, ranks, eye, d, norm, coef);
        } catch (RuntimeException e) {
            for (Tensor t : new Tensor[] {eye, d, norm}) {
                if (t != null) {
                    t.close();
                }
            }
            throw e;
        }
    }

    /**
     * Writes weight·R into slot {@code at} of {@code stats} ({@link DeviceSums}) and, when {@code addGradients},
     * adds weight·∂R/∂P into the gradient of every trainable matrix (frozen ones contribute to R only). No host
     * transfer and no allocation (a gradient is allocated only where the parameter had none yet). Weight 0: the
     * slot is 0 and nothing else is touched.
     */
    public void applyTo(Tensor stats, int at, boolean addGradients) {
        DeviceSums.checkSlot("orthogonal regulariser", stats, at);
        if (weight == 0f) {
            stats.backend().sumSquaresTo(List.of(), stats, at);     // slot = 0
            return;
        }
        int m = matrices.size();
        int width = d.cols();
        for (int i = 0; i < m; i++) {                               // C_i into row i of d (pitch r_i)
            int r = ranks[i];
            Tensor w = matrices.get(i).value();
            if (r == 0) {
                continue;                                           // rank-0 layer (pruned away): PEFT skips it
            }
            if (matrices.get(i).role() == Parameter.Role.LORA_A) {  // C = A Aᵀ: [r,in] x [in,r]
                be.gemm(false, true, r, r, w.cols(), 1f, w, 0, w.cols(), w, 0, w.cols(), 0f, d, (long) i * width, r);
            } else {                                                // C = Bᵀ B: [r,out] x [out,r]
                be.gemm(true, false, r, r, w.rows(), 1f, w, 0, r, w, 0, r, 0f, d, (long) i * width, r);
            }
        }
        be.axpby(-1f, eye, 1f, d);                                  // D = C − I: [M, r²]
        be.rowDot(d, d, norm);                                      // f² = ‖D‖²_F: [M]
        if (form == Form.PEFT_MEAN_NORM) {
            be.sqrt(norm, norm);                                    // f
            be.scale(norm, weight / m, coef);                       // weight·f/M
        } else {
            be.scale(norm, weight, coef);                           // weight·f²
        }
        be.sumTo(coef, stats, at);                                  // weight·R
        if (!addGradients) {
            return;
        }
        float alpha = 4f * weight;                                  // squared form: weight·4 D A
        if (form == Form.PEFT_MEAN_NORM) {
            be.reciprocal(norm, coef);                              // 1/f (Inf at f = 0)
            be.scale(coef, 2f * weight / m, coef);                  // c = weight·2/(f·M)
            be.maskWhereAtMost(coef, norm, 0f);                     // c = 0 where f = 0 (subgradient)
            be.mulColVector(d, coef, d);                            // c_i·D_i
            alpha = 1f;
        }
        for (int i = 0; i < m; i++) {
            Parameter p = matrices.get(i);
            int r = ranks[i];
            if (r == 0 || !p.trainable()) {
                continue;
            }
            Tensor w = p.value();
            Tensor g = p.gradForAccumulation();
            long off = (long) i * width;
            if (p.role() == Parameter.Role.LORA_A) {                // g += c·D A: [r,r] x [r,in]
                be.gemm(false, false, r, w.cols(), r, alpha, d, off, r, w, 0, w.cols(), 1f, g, 0, w.cols());
            } else {                                                // g += c·B D: [out,r] x [r,r]
                be.gemm(false, false, w.rows(), r, r, alpha, w, 0, r, d, off, r, 1f, g, 0, r);
            }
        }
    }

    /**
     * weight·R for the given matrices, read to the host (for tests and one-off use: it makes and frees the work
     * tensors); when {@code addGradients}, also adds weight·∂R/∂P as {@link #applyTo}.
     *
     * @return weight·R (0 for an empty list or weight 0, in which case nothing is touched)
     * @throws IllegalArgumentException see {@link #create}
     */
    public static double apply(List<Parameter> matrices, float weight, Form form, boolean addGradients) {
        if (matrices.isEmpty() || weight == 0f) {
            return 0.0;
        }
        try (OrthogonalRegularizer reg = create(matrices, weight, form);
             Tensor stats = reg.be.zeros(DType.F32, 2)) {
            reg.applyTo(stats, 0, addGradients);
            return DeviceSums.at(reg.be.download(stats), 0);
        }
    }

    /** Releases the work tensors (never the parameters). Idempotent. */
    @Override
    public void close() {
        for (Tensor t : new Tensor[] {eye, d, norm, coef}) {
            t.close();
        }
    }
}
