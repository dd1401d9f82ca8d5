package ai.lorakit.adapters.schedule;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.HashSet;
import java.util.IdentityHashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * LoRA-drop's stage 2 structure (VARIANTS.md section 8): {@link #apply} ties every dropped module to ONE shared
 * adapter per shape class (in, out, r), i.e. the tied layers read the very same A [r,in] and B [out,r]
 * {@link Parameter} objects ({@link AdaptedLinear#shareLowRank}), so a backward through any of them accumulates
 * into the shared gradient and an optimizer step on it changes every tied layer. Kept modules keep individual
 * adapters. The shared parameters are owned by this object (close it after the modules).
 *
 * <p>The whole procedure, for the Trainer:
 * <ol>
 *   <li>stage 1: train LoRA on a sample of α of the training data ({@link LoraDropOptions#sampleSize});</li>
 *   <li>{@code ImportanceMeter.attach(modules)}, forward the sample in eval mode, {@code LoraDropSelection.select};
 *       log and save the selection ({@link LoraDropSelection#toJson});</li>
 *   <li>{@code LoraDrop.apply(selection, modules, seed)};</li>
 *   <li>stage 2: a NEW optimizer over {@link #distinctParameters}(modules) (each shared tensor once; the stage-1
 *       optimizer's parameters of tied modules are closed), train on all the data;</li>
 *   <li>{@link #export}: a plain PEFT LoRA, the shared tensors written once per module (no aliasing in the file).</li>
 * </ol>
 */
public final class LoraDrop implements AutoCloseable {

    private final LoraDropSelection selection;
    /** shape key -> {A, B} shared. */
    private final Map<String, Parameter[]> shared;
    /** module -> shape key, for dropped modules. */
    private final Map<String, String> tiedTo;
    private boolean closed;

    private LoraDrop(LoraDropSelection selection, Map<String, Parameter[]> shared, Map<String, String> tiedTo) {
        this.selection = selection;
        this.shared = shared;
        this.tiedTo = tiedTo;
    }

    /**
     * Applies a selection to the modules (the same modules the importance was measured on). RESTART re-initialises
     * the kept adapters as at creation from {@code seed}; both modes start the shared adapters fresh (B = 0 with
     * the default init).
     *
     * @throws IllegalArgumentException a module not plain LoRA, or the modules and the selection name different
     *                                  module sets
     */
    public static LoraDrop apply(LoraDropSelection selection, List<AdaptedLinear> modules, long seed) {
        if (selection == null || modules == null || modules.isEmpty()) {
            throw new IllegalArgumentException("LoRA-drop apply: need a selection and modules, got " + selection + ", "
                    + modules);
        }
        Set<String> listed = new HashSet<>(selection.keptModules());
        listed.addAll(selection.droppedModules());
        Set<String> given = new HashSet<>();
        for (AdaptedLinear m : modules) {
            if (!(m.config() instanceof LoraConfig c) || c.useDora()) {
                throw new IllegalArgumentException("LoRA-drop: module " + m.name() + " is " + m
                        + "; LoRA-drop works on plain LoRA adapters");
            }
            if (!given.add(m.name())) {
                throw new IllegalArgumentException("LoRA-drop apply: two modules are named " + m.name());
            }
        }
        if (!given.equals(listed)) {
            Set<String> missing = new HashSet<>(listed);
            missing.removeAll(given);
            Set<String> extra = new HashSet<>(given);
            extra.removeAll(listed);
            throw new IllegalArgumentException("LoRA-drop apply: the selection and the modules differ: in the selection"
                    + " only " + missing + ", among the modules only " + extra);
        }
        Set<String> dropped = selection.droppedModules();
        Map<String, Parameter[]> shared = new LinkedHashMap<>();
        Map<String, String> tiedTo = new LinkedHashMap<>();
        try {
            int index = 0;
            for (AdaptedLinear m : modules) {
                index++;
                if (dropped.contains(m.name())) {
                    String key = shapeKey(m);
                    if (!shared.containsKey(key)) {
                        shared.put(key, freshShared(m, key, mix(seed, -index)));
                    }
                    tiedTo.put(m.name(), key);
                } else if (selection.options().stage2() == LoraDropOptions.Stage2.RESTART) {
                    reinit(m, mix(seed, index));
                }
            }
            for (AdaptedLinear m : modules) {
                String key = tiedTo.get(m.name());
                if (key != null) {
                    Parameter[] ab = shared.get(key);
                    m.shareLowRank(ab[0], ab[1]);
                }
            }
        } catch (RuntimeException e) {
            shared.values().forEach(LoraDrop::closeShared);
            throw e;
        }
        return new LoraDrop(selection, Collections.unmodifiableMap(shared), Collections.unmodifiableMap(tiedTo));
    }

    /** "in x out r" of a module: modules share an adapter only within one class. */
    static String shapeKey(AdaptedLinear m) {
        return m.inFeatures() + "x" + m.outFeatures() + "_r" + m.rank();
    }

    /** New shared A, B initialised as a fresh adapter of module m would be. */
    private static Parameter[] freshShared(AdaptedLinear m, String key, long seed) {
        float[][] ab = freshValues(m, seed);
        Backend be = m.weight().backend();
        String base = "lora_drop.shared_" + key;
        Tensor a = be.upload(ab[0], DType.F32, m.rank(), m.inFeatures()).named(base + ".lora_A");
        Tensor b;
        try {
            b = be.upload(ab[1], DType.F32, m.outFeatures(), m.rank()).named(base + ".lora_B");
        } catch (RuntimeException e) {
            a.close();
            throw e;
        }
        return new Parameter[] {new Parameter(base + ".lora_A", Parameter.Role.LORA_A, a, true),
                new Parameter(base + ".lora_B", Parameter.Role.LORA_B, b, true)};
    }

    /** RESTART: the module's own A, B set to fresh-init values, gradients zeroed. */
    private static void reinit(AdaptedLinear m, long seed) {
        float[][] ab = freshValues(m, seed);
        Parameter a = m.parameter(Parameter.Role.LORA_A);
        Parameter b = m.parameter(Parameter.Role.LORA_B);
        Backend be = a.value().backend();
        try (Tensor ta = be.upload(ab[0], DType.F32, a.value().shape());
             Tensor tb = be.upload(ab[1], DType.F32, b.value().shape())) {
            be.copy(ta, a.value());
            be.copy(tb, b.value());
        }
        a.markChanged();
        b.markChanged();
        a.zeroGrad();
        b.zeroGrad();
    }

    /** A and B of a throwaway layer built like m (same config, so same init rule, rank and shapes). */
    private static float[][] freshValues(AdaptedLinear m, long seed) {
        try (AdaptedLinear fresh = AdaptedLinear.create(m.name(), m.weight(), null, m.fanInFanOut(), m.config(), null,
                seed)) {
            Tensor a = fresh.parameter(Parameter.Role.LORA_A).value();
            Tensor b = fresh.parameter(Parameter.Role.LORA_B).value();
            return new float[][] {a.backend().download(a), b.backend().download(b)};
        }
    }

    private static long mix(long seed, int i) {
        long z = seed + i * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    // ---------------------------------------------------------------- queries

    public LoraDropSelection selection() {
        return selection;
    }

    /** The shared parameters (A then B per shape class). */
    public List<Parameter> sharedParameters() {
        List<Parameter> out = new ArrayList<>();
        shared.values().forEach(ab -> out.addAll(List.of(ab)));
        return out;
    }

    /** Dropped module -> the name of its shared A (e.g. lora_drop.shared_768x768_r8.lora_A). */
    public Map<String, String> tiedTo() {
        Map<String, String> out = new LinkedHashMap<>();
        tiedTo.forEach((m, k) -> out.put(m, shared.get(k)[0].name()));
        return out;
    }

    /**
     * Every parameter of the modules once (by identity, first occurrence order): what a stage-2 optimizer must be
     * given (a tied A appears in several modules' {@code parameters()}).
     */
    public static List<Parameter> distinctParameters(List<AdaptedLinear> modules) {
        Set<Parameter> seen = Collections.newSetFromMap(new IdentityHashMap<>());
        List<Parameter> out = new ArrayList<>();
        for (AdaptedLinear m : modules) {
            for (Parameter p : m.parameters()) {
                if (seen.add(p)) {
                    out.add(p);
                }
            }
        }
        return out;
    }

    /**
     * Writes the modules as a plain PEFT LoRA adapter ({@link PeftAdapterIO#save}: each module's A, B written under
     * its own keys, so shared tensors are duplicated, never aliased) plus {@link LoraDropSelection#FILE} (PEFT
     * ignores the extra file).
     */
    public static void export(Path dir, LoraConfig config, List<AdaptedLinear> modules, LoraDropSelection selection,
                              String baseModelNameOrPath) throws IOException {
        PeftAdapterIO.save(dir, config, modules, null, baseModelNameOrPath);
        if (selection != null) {
            selection.save(dir.resolve(LoraDropSelection.FILE));
        }
    }

    /** Closes the shared tensors and their gradients; the tied modules must not run afterwards. Idempotent. */
    @Override
    public void close() {
        if (!closed) {
            closed = true;
            shared.values().forEach(LoraDrop::closeShared);
        }
    }

    private static void closeShared(Parameter[] ab) {
        for (Parameter p : ab) {
            if (p.grad() != null) {
                p.grad().close();
            }
            p.value().close();
        }
    }

    @Override
    public String toString() {
        return "LoraDrop(" + selection.keptModules().size() + " kept, " + tiedTo.size() + " tied to "
                + shared.size() + " shared adapters)";
    }
}
