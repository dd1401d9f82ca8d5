package ai.lorakit.bench.gpu;

import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.io.PeftAdapterIO;
import ai.lorakit.gpu.Backend;
import ai.lorakit.models.decoder.DecoderModel;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The lorakit side of the interop check (GPU.md step 3): the logits lorakit computes for a fixed token sequence
 * with a Hugging Face GPT-2 folder and a PEFT adapter folder loaded, so benchmarks/peers/interop_peft.py can
 * compare them with the logits PEFT computes for the same model, adapter and tokens.
 */
final class InteropLogits {

    private InteropLogits() {
    }

    static Map<String, Object> run(Backend be, Path model, Path adapter, int[] tokens) throws IOException {
        Map<String, Object> out = new LinkedHashMap<>();
        out.put("backend", be.name());
        out.put("tokens", tokens);
        try (DecoderModel m = DecoderModel.load(model, be)) {
            AdapterConfig ac = PeftAdapterIO.readConfig(adapter);
            m.attachAdapters(ac, 0L);
            m.adapters().loadPeft(adapter);
            m.setTraining(false);
            out.put("vocab", m.vocabSize());
            out.put("logits", m.logits(tokens));
        }
        return out;
    }
}
