package ai.lorakit.cli;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.gpu.Backend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.tokenizer.Tokenizer;

import java.io.IOException;
import java.nio.file.Path;

/**
 * A base model (plus, optionally, a PEFT adapter loaded into it), its tokenizer and its backend, as eval,
 * generate, merge and import-peft use them. Closing releases the model and the backend.
 */
final class LoadedModel implements AutoCloseable {

    final Backend backend;
    final DecoderModel model;
    final ModelSource.Resolved source;
    final Tokenizer tokenizer;
    final AdapterConfig adapter;   // null without --adapter

    private LoadedModel(Backend backend, DecoderModel model, ModelSource.Resolved source, Tokenizer tokenizer,
                        AdapterConfig adapter) {
        this.backend = backend;
        this.model = model;
        this.source = source;
        this.tokenizer = tokenizer;
        this.adapter = adapter;
    }

    /**
     * @param modelDir   --model (null = embedded default)
     * @param adapterDir --adapter (null = none): a PEFT folder, validated and loaded
     * @param tokenizer  --tokenizer spec, or null when no tokenizer is needed
     */
    static LoadedModel open(Path modelDir, Path adapterDir, String backendName, String tokenizer) throws IOException {
        return open(modelDir, adapterDir, backendName, tokenizer, "fp32");
    }

    /** As {@link #open(Path, Path, String, String)}, run under --precision {@code precision} (fp32, bf16, auto). */
    static LoadedModel open(Path modelDir, Path adapterDir, String backendName, String tokenizer, String precision)
            throws IOException {
        ModelSource.Resolved src = ModelSource.resolve(modelDir);
        AdapterConfig ac = adapterDir == null ? null : PeftAdapterIO.readConfig(adapterDir);
        Backend be = ModelSource.openBackend(backendName);
        DecoderModel m = null;
        try {
            Precision p;
            try {
                p = Precision.parse(precision, be);
            } catch (IllegalArgumentException e) {
                throw new UsageException("--precision: " + e.getMessage());
            }
            m = ModelSource.load(src, be, p);
            Tokenizer tok = tokenizer == null ? null : ModelSource.tokenizer(tokenizer, src.dir(), m.vocabSize());
            if (ac != null) {
                m.attachAdapters(ac, 0L).loadPeft(adapterDir);
            }
            m.setTraining(false);
            return new LoadedModel(be, m, src, tok, ac);
        } catch (IOException | RuntimeException e) {
            if (m != null) {
                m.close();
            }
            be.close();
            throw e;
        }
    }

    /** "LORA r=8 alpha=16 (rsLoRA) on 8 modules" and the like. */
    static String describe(AdapterConfig c, int modules) {
        String what = switch (c) {
            case LoraConfig l -> (l.useDora() ? "DoRA" : "LoRA") + " r=" + l.r() + " alpha=" + num(l.alpha())
                    + (l.useRslora() ? " (rsLoRA)" : "");
            case ai.lorakit.adapters.VeraConfig v -> "VeRA r=" + v.r();
            case ai.lorakit.adapters.AdaLoraConfig a -> "AdaLoRA init_r=" + a.initR() + " target_r=" + a.targetR()
                    + " alpha=" + num(a.alpha());
        };
        return what + " on " + modules + " modules (targets " + String.join(",", c.targetModules()) + ")";
    }

    /** 16 rather than 16.0. */
    static String num(float v) {
        return v == Math.rint(v) && Math.abs(v) < 1e7 ? Integer.toString((int) v) : Float.toString(v);
    }

    /** Elements of the adapter tensors (those PEFT saves). */
    long adapterParameterCount() {
        long n = 0;
        for (var a : model.adaptedModules()) {
            for (Parameter p : a.parameters()) {
                n += p.value().numel();
            }
        }
        return n;
    }

    @Override
    public void close() {
        model.close();
        backend.close();
    }
}
