package ai.lorakit.models.decoder;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.VeraConfig;
import ai.lorakit.adapters.VeraProjections;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.gpu.Backend;
import ai.lorakit.models.layers.Linear;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * The adapters attached to a model's named linear modules by one config: it owns the {@link AdaptedLinear}s,
 * VeRA's shared projections and their parameters, and does merge/unmerge and PEFT save/load, so neither the model
 * nor PEFT IO needs to know the model's class.
 *
 * <p>{@link #attach} selects the modules with {@link TargetModules}; VeRA gets one {@link VeraProjections} sized to
 * the largest in and out of the targeted modules. Module k of the model's linear modules draws its init (and its
 * dropout stream) from a seed derived from (seed, k), so a module's adapter does not depend on which others are
 * targeted. Closing detaches the adapters (merged ones stay in W, PEFT's merge_and_unload) and frees VeRA's
 * projections.
 */
public final class AdapterSet implements AutoCloseable {

    private final AdapterConfig config;
    private final long seed;
    private final List<Linear> layers;
    private final VeraProjections vera;
    private final List<Parameter> veraParams;
    private boolean closed;

    private AdapterSet(AdapterConfig config, long seed, List<Linear> layers, VeraProjections vera) {
        this.config = config;
        this.seed = seed;
        this.layers = List.copyOf(layers);
        this.vera = vera;
        this.veraParams = vera == null ? List.of() : List.of(
                new Parameter("vera_A", Parameter.Role.VERA_A, vera.a(), false),
                new Parameter("vera_B", Parameter.Role.VERA_B, vera.b(), false));
    }

    /**
     * Attaches one adapter of {@code config}'s kind to every module of {@code linears} (the model's linear modules
     * in model order, by name) that config.targetModules() selects ({@link TargetModules}; an entry matching
     * nothing is an IllegalArgumentException listing the names). On failure nothing stays attached.
     *
     * @param training the adapters' initial mode (dropout on in training)
     */
    public static AdapterSet attach(AdapterConfig config, Map<String, Linear> linears, long seed, boolean training) {
        if (config == null) {
            throw new IllegalArgumentException("adapter config is null");
        }
        List<String> all = List.copyOf(linears.keySet());
        List<String> chosen = TargetModules.parse(config.targetModules()).select(all);
        for (String m : chosen) {
            if (linears.get(m).adapter() != null) {
                throw new IllegalStateException(m + " already has an adapter; close the attached AdapterSet first");
            }
        }
        VeraProjections shared = null;
        List<AdaptedLinear> made = new ArrayList<>();
        List<Linear> layers = new ArrayList<>();
        try {
            if (config instanceof VeraConfig vc) {
                int inMax = 0;
                int outMax = 0;
                for (String m : chosen) {
                    inMax = Math.max(inMax, linears.get(m).in());
                    outMax = Math.max(outMax, linears.get(m).out());
                }
                Backend be = linears.get(chosen.getFirst()).weight().value().backend();
                shared = VeraProjections.create(be, vc, inMax, outMax);
            }
            for (String m : chosen) {
                Linear lin = linears.get(m);
                AdaptedLinear a = AdaptedLinear.create(m, lin.weight().value(),
                        lin.bias() == null ? null : lin.bias().value(), lin.layout() == Linear.Layout.IN_OUT, config,
                        shared, moduleSeed(seed, all.indexOf(m)));
                made.add(a);
                a.setTraining(training);
                layers.add(lin);
            }
        } catch (RuntimeException e) {
            made.forEach(AdaptedLinear::close);
            if (shared != null) {
                shared.close();
            }
            throw e;
        }
        for (int i = 0; i < made.size(); i++) {
            layers.get(i).attach(made.get(i));
        }
        return new AdapterSet(config, seed, layers, shared);
    }

    /** SplitMix64's finaliser of seed + (k+1) * golden gamma: independent streams per module index k. */
    private static long moduleSeed(long seed, int k) {
        long z = seed + (k + 1L) * 0x9E3779B97F4A7C15L;
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }

    public AdapterConfig config() {
        return config;
    }

    /**
     * The seed given to {@link #attach}. It fixes the adapters' init AND their dropout mask streams: a resumed run
     * must attach with the same seed to draw the same masks.
     */
    public long seed() {
        return seed;
    }

    /** The adapted layers, in model order. */
    public List<AdaptedLinear> modules() {
        checkOpen();
        List<AdaptedLinear> out = new ArrayList<>(layers.size());
        for (Linear l : layers) {
            out.add(l.adapter());
        }
        return out;
    }

    /** VeRA's shared projections, or null. */
    public VeraProjections veraProjections() {
        return vera;
    }

    /** The adapters' parameters in model order, then VeRA's frozen vera_A / vera_B. */
    public List<Parameter> parameters() {
        List<Parameter> out = new ArrayList<>();
        for (AdaptedLinear a : modules()) {
            out.addAll(a.parameters());
        }
        out.addAll(veraParams);
        return out;
    }

    /** Sets every adapter's mode (training: dropout on, cache kept for the backward). */
    public void setTraining(boolean on) {
        modules().forEach(a -> a.setTraining(on));
    }

    /** Folds every adapter into its W (AdaptedLinear#merge); forwards then run the plain layers. */
    public void merge() {
        modules().forEach(AdaptedLinear::merge);
    }

    /** Restores every W (AdaptedLinear#unmerge). */
    public void unmerge() {
        modules().forEach(AdaptedLinear::unmerge);
    }

    /** Writes the adapters as a PEFT folder (adapter_config.json + adapter_model.safetensors, HF names). */
    public void savePeft(Path dir, String baseModelNameOrPath) throws IOException {
        PeftAdapterIO.save(dir, config, modules(), vera, baseModelNameOrPath);
    }

    /** Loads a PEFT folder into these adapters after validating all of it ({@link PeftAdapterIO#load}). */
    public AdapterConfig loadPeft(Path dir) throws IOException {
        return PeftAdapterIO.load(dir, modules(), vera);
    }

    private void checkOpen() {
        if (closed) {
            throw new IllegalStateException("AdapterSet (" + config.peftType() + ") is closed");
        }
    }

    /** Detaches and closes every adapter and VeRA's projections; idempotent. */
    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        layers.forEach(Linear::detach);
        if (vera != null) {
            vera.close();
        }
    }

    @Override
    public String toString() {
        return "AdapterSet(" + config.peftType() + " on " + layers.size() + " modules)";
    }
}
