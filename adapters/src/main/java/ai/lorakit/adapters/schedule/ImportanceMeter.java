package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA-drop's importance measurement (VARIANTS.md section 8, step 1): while attached, every forward of an adapted
 * module that runs its adapter adds I_i += Σ_n ‖ΔW_i x_n‖² = s² Σ_n u_nᵀ (BᵀB) u_n with u = x Aᵀ [N,r]
 * ({@link Backend#loraShrink} then {@link Backend#loraImportance}), never forming the N x out output. x is the
 * module's input as given to forward (before dropout), so run the measurement pass in eval mode over the stage-1
 * sample. Cost per forward: one extra [N,in]x[in,r] product plus O(N r² + out r²).
 *
 * <p>Usage: {@code try (ImportanceMeter meter = ImportanceMeter.attach(modules)) { forward the sample;
 * selection = LoraDropSelection.select(meter.importance(), options); }} ({@link #close} detaches).
 */
public final class ImportanceMeter implements AutoCloseable {

    private final List<AdaptedLinear> modules;
    private final Map<String, double[]> importance = new LinkedHashMap<>();   // name -> {I, tokens}
    private boolean closed;

    private ImportanceMeter(List<AdaptedLinear> modules) {
        this.modules = modules;
        for (AdaptedLinear m : modules) {
            importance.put(m.name(), new double[2]);
        }
    }

    /**
     * Installs the meter as the input observer of every module.
     *
     * @throws IllegalArgumentException no modules, duplicate names, a module that is not plain LoRA (LoRA-drop's
     *                                  importance is that of ΔW = s·B·A)
     */
    public static ImportanceMeter attach(List<AdaptedLinear> modules) {
        if (modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("LoRA-drop importance: need at least one adapted module, got " + modules);
        }
        Set<String> names = new HashSet<>();
        for (AdaptedLinear m : modules) {
            if (!(m.config() instanceof LoraConfig c) || c.useDora()) {
                throw new IllegalArgumentException("LoRA-drop: module " + m.name() + " is " + m
                        + "; LoRA-drop works on plain LoRA adapters");
            }
            if (!names.add(m.name())) {
                throw new IllegalArgumentException("LoRA-drop importance: two modules are named " + m.name());
            }
        }
        ImportanceMeter meter = new ImportanceMeter(List.copyOf(modules));
        for (AdaptedLinear m : modules) {
            m.setInputObserver(meter::observe);
        }
        return meter;
    }

    private void observe(AdaptedLinear m, Tensor x) {
        Backend be = x.backend();
        Tensor a = m.parameter(Parameter.Role.LORA_A).value();   // [r,in]
        Tensor b = m.parameter(Parameter.Role.LORA_B).value();   // [out,r]
        try (Tensor u = be.zeros(DType.F32, x.rows(), a.dim(0))) {
            be.loraShrink(x, a, u);                               // u = x Aᵀ: [N,r]
            double[] acc = importance.get(m.name());
            acc[0] += be.loraImportance(u, b, m.scaling());
            acc[1] += x.rows();
        }
    }

    /** I_i per module name (sum of ‖ΔW_i x‖² over every observed input row), in the modules' order. */
    public Map<String, Double> importance() {
        Map<String, Double> out = new LinkedHashMap<>();
        importance.forEach((k, v) -> out.put(k, v[0]));
        return Collections.unmodifiableMap(out);
    }

    /** Input rows (tokens) observed per module. */
    public Map<String, Long> tokens() {
        Map<String, Long> out = new LinkedHashMap<>();
        importance.forEach((k, v) -> out.put(k, (long) v[1]));
        return Collections.unmodifiableMap(out);
    }

    /** Zeroes the sums (e.g. to measure again after more stage-1 training). */
    public void reset() {
        importance.values().forEach(v -> {
            v[0] = 0;
            v[1] = 0;
        });
    }

    /** The modules measured. */
    public List<AdaptedLinear> modules() {
        return new ArrayList<>(modules);
    }

    /** Detaches from every module (idempotent); the sums stay readable. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            for (AdaptedLinear m : modules) {
                try {
                    m.setInputObserver(null);
                } catch (IllegalStateException alreadyClosed) {
                    // a closed layer runs no more forwards: nothing to detach
                }
            }
        }
    }
}
