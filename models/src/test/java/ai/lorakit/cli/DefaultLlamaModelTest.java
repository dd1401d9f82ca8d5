package ai.lorakit.cli;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.data.ChatMessage;
import ai.lorakit.models.data.ChatTemplate;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.llama.LlamaConfig;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.tokenizer.HfTokenizer;
import ai.lorakit.models.tokenizer.Tokenizer;
import org.junit.jupiter.api.Test;

import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the jar carries the embedded Llama-family default ({@code --model default-llama}) described in its
 * PROVENANCE.md: Llama, 4 layers, hidden 192, 4 heads sharing 2 kv heads, SwiGLU ffn 576, tied embeddings, 261 ids
 * (257 byte ids + 4 chat tokens); that its tokenizer.json gives exactly the byte tokenizer's ids on plain text and
 * the special ids 256..260 for the special strings, and its chat template renders Llama-3-style turns; and that it
 * is really pretrained: on English prose it never saw its loss is far below a uniform guess (ln 261 = 5.56 nats).
 */
class DefaultLlamaModelTest {

    private static final String PROSE = "The harbour was quiet in the early morning, and the fishermen walked down "
            + "to their boats without a word. Nobody in the village could remember a winter as long as this one. "
            + "When the sun finally rose above the hills, the water turned from grey to a pale and shining blue, "
            + "and the children ran along the wall to watch the first boat leave. ";

    @Test
    void theEmbeddedLlamaIsTheDocumentedPretrainedModel() throws IOException {
        ModelSource.Resolved r = ModelSource.resolve(Path.of("default-llama"));
        assertEquals(ModelSource.DEFAULT_LLAMA_NAME, r.name());
        assertTrue(r.embedded());
        try (CpuBackend be = new CpuBackend(); DecoderModel m = ModelSource.load(r, be)) {
            LlamaConfig c = assertInstanceOf(LlamaConfig.class, m.config());
            assertSame(LlamaFamily.LLAMA, c.family());
            assertEquals(4, c.numLayers());
            assertEquals(192, c.hiddenSize());
            assertEquals(576, c.intermediateSize());
            assertEquals(4, c.numHeads());
            assertEquals(2, c.numKvHeads());
            assertEquals(48, c.headDim());
            assertEquals(261, c.vocabSize());
            assertEquals(256, c.maxPositionEmbeddings());
            assertTrue(c.tieWordEmbeddings());

            Tokenizer tok = ModelSource.tokenizer("auto", r.dir(), m.vocabSize());
            assertInstanceOf(HfTokenizer.class, tok);
            int[] ids = tok.encode(PROSE + PROSE);
            assertArrayEquals(new ByteTokenizer().encode(PROSE + PROSE), ids);
            int t = 64;
            int[][] windows = new int[4][];
            for (int b = 0; b < windows.length; b++) {
                windows[b] = Arrays.copyOfRange(ids, b * 50, b * 50 + t + 1);
            }
            double loss = m.evalLoss(windows);
            assertTrue(Double.isFinite(loss) && loss < 2.5,
                    "a pretrained byte model should be well below ln(261) = 5.56 nats on English; got " + loss);
        }
    }

    @Test
    void itsTokenizerIsTheByteVocabularyPlusChatTokens() throws IOException {
        Path dir = ModelSource.resolve(Path.of("default-llama")).dir();
        HfTokenizer tok = HfTokenizer.load(dir);
        ByteTokenizer bytes = new ByteTokenizer();
        String text = "Zoë's café, naïve — 3 × 4 = 12 \u2603 \uD83D\uDE00\ttabs\nand\r\nlines  ";
        assertArrayEquals(bytes.encode(text), tok.encode(text));
        assertEquals(text, tok.decode(tok.encode(text)));
        assertArrayEquals(new int[]{256, 257, 258, 104, 105, 259, 260},
                tok.encode("<|endoftext|><|begin_of_text|><|start_header_id|>hi<|end_header_id|><|eot_id|>"));
        assertEquals(256, tok.endOfTextId().orElseThrow());

        ChatTemplate chat = ChatTemplate.load(dir);
        String rendered = chat.render(List.of(new ChatMessage("user", " Hi there "),
                new ChatMessage("assistant", "Hello.")), true);
        assertEquals("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi there<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\nHello.<|eot_id|>"
                + "<|start_header_id|>assistant<|end_header_id|>\n\n", rendered);
        int[] ids = tok.encode(rendered);
        assertEquals(257, ids[0]);
        assertEquals(258, ids[1]);
    }

    @Test
    void anUnknownModelNameNamesTheEmbeddedOnes() {
        UsageException e = assertThrows(UsageException.class,
                () -> ModelSource.resolve(Path.of("no-such-model-folder-xyz")));
        assertTrue(e.getMessage().contains("default-llama"), e.getMessage());
    }
}
