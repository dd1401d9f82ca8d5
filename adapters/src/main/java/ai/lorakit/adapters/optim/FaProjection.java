package ai.lorakit.adapters.optim;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.IdentityHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA-FA's per-module projection g̃_B = (1/s²) · ∂L/∂B · (A Aᵀ + 1e-8·I)⁻¹ (VARIANTS.md section 3). A is frozen,
 * so the inverse is computed once ({@link GramInverse}) and kept on the backend.
 */
final class FaProjection implements AutoCloseable {
    final LoraPair pair;
    private final Tensor inverse;      // (A Aᵀ + 1e-8·I)⁻¹ [r,r]
    private Tensor projected;          // g̃_B [out,r], allocated on first use and reused

    private FaProjection(LoraPair pair, Tensor inverse) {
        this.pair = pair;
        this.inverse = inverse;
    }

    /**
     * Validates the pairs against the parameters, computes every inverse, and only then freezes every A, so a
     * failure leaves the parameters untouched. Returns the projections keyed by B (identity).
     */
    static Map<Parameter, FaProjection> prepare(List<Parameter> params, List<LoraPair> pairs) {
        Set<Parameter> known = Collections.newSetFromMap(new IdentityHashMap<>());
        known.addAll(params);
        Set<Parameter> paired = Collections.newSetFromMap(new IdentityHashMap<>());
        for (LoraPair p : pairs) {
            Checks.require(p != null, "pairs", null, "must not contain null");
            for (Parameter q : List.of(p.a(), p.b())) {
                Checks.require(known.contains(q), "LoRA-FA pair of module " + p.module(), q.name(),
                        "must reference parameters passed in params");
                Checks.require(paired.add(q), "LoRA-FA pairs", q.name(), "must not share a parameter");
            }
        }
        for (Parameter q : params) {
            boolean lora = q.role() == Parameter.Role.LORA_A || q.role() == Parameter.Role.LORA_B;
            Checks.require(!(lora && q.trainable() && !paired.contains(q)), "LoRA-FA pairs", q.name(),
                    "must cover every trainable LORA_A/LORA_B parameter; missing");
        }
        Map<Parameter, FaProjection> out = new IdentityHashMap<>();
        List<FaProjection> made = new ArrayList<>();
        try {
            for (LoraPair p : pairs) {
                Tensor a = p.a().value();
                Backend be = a.backend();
                int r = a.dim(0);
                double[] inv = GramInverse.invert(be.download(a), r, a.dim(1), LoraFaPolicy.RIDGE, p.module());
                float[] f = new float[inv.length];
                for (int i = 0; i < f.length; i++) {
                    f[i] = (float) inv[i];
                }
                FaProjection fp = new FaProjection(p, be.upload(f, DType.F32, r, r).named(p.module() + ".AAt_inv"));
                made.add(fp);
                out.put(p.b(), fp);
            }
        } catch (RuntimeException e) {
            made.forEach(FaProjection::close);
            throw e;
        }
        for (LoraPair p : pairs) {
            p.a().setTrainable(false);
        }
        return out;
    }

    /** g̃_B = (1/s²) · grad_B [out,r] · inverse [r,r]: one GEMM. Returns the reused buffer. */
    Tensor project(Tensor gradB) {
        Backend be = gradB.backend();
        if (projected == null) {
            projected = be.zeros(DType.F32, gradB.shape()).named(pair.b().name() + ".projected_grad");
        }
        float s = pair.scaling();
        be.matmul(gradB, false, inverse, false, projected, 1f / (s * s), 0f);
        return projected;
    }

    @Override
    public void close() {
        inverse.close();
        if (projected != null) {
            projected.close();
        }
    }
}
