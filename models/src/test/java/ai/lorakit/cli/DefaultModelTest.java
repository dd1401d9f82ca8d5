package ai.lorakit.cli;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the jar carries the embedded default base model described in its PROVENANCE.md (GPT-2, 4 layers,
 * n_embd 192, byte vocabulary of 257) and that it is really pretrained: on English prose it never saw (written
 * for this test) its loss is far below a uniform guess over bytes (ln 257 = 5.55 nats).
 */
class DefaultModelTest {

    private static final String PROSE = "The harbour was quiet in the early morning, and the fishermen walked down "
            + "to their boats without a word. Nobody in the village could remember a winter as long as this one. "
            + "When the sun finally rose above the hills, the water turned from grey to a pale and shining blue, "
            + "and the children ran along the wall to watch the first boat leave. ";

    @Test
    void theEmbeddedModelIsTheDocumentedPretrainedGpt2() throws IOException {
        assertTrue(ModelSource.hasDefault(), "the build must carry " + ModelSource.DEFAULT_RESOURCE);
        ModelSource.Resolved r = ModelSource.resolve(null);
        assertEquals(ModelSource.DEFAULT_NAME, r.name());
        try (CpuBackend be = new CpuBackend(); DecoderModel m = ModelSource.load(r, be)) {
            Gpt2Config c = (Gpt2Config) m.config();
            assertEquals(4, c.nLayer());
            assertEquals(192, c.nEmbd());
            assertEquals(4, c.nHead());
            assertEquals(257, c.vocabSize());
            assertEquals(256, c.nPositions());

            int[] ids = new ByteTokenizer().encode(PROSE + PROSE);
            int t = 64;
            int[][] windows = new int[4][];
            for (int b = 0; b < windows.length; b++) {
                windows[b] = java.util.Arrays.copyOfRange(ids, b * 50, b * 50 + t + 1);
            }
            double loss = m.evalLoss(windows);
            assertTrue(Double.isFinite(loss) && loss < 2.5,
                    "a pretrained byte model should be well below ln(257) = 5.55 nats on English; got " + loss);
        }
    }
}
