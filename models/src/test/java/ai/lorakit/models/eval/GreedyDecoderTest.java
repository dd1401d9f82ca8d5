package ai.lorakit.models.eval;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.LanguageModel;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.llama.TinyLlama;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link GreedyDecoder} generates, for prompts of different lengths batched together, exactly the
 * tokens a one-prompt-at-a-time greedy loop gives: against a stub whose argmax is known by hand (next = (sum of the
 * prefix + 1) mod 10, so a wrong position, a padding token read as input or a lost row changes the answer), and
 * against a random tiny Llama ({@link DecoderModel#logitsAt}'s batched forward vs {@link LanguageModel#logits} per
 * row). Also: stop tokens end a row without being kept, maxNew caps it, bad arguments are refused.
 */
class GreedyDecoderTest {

    /** logits[t] = one-hot at (tokens[0] + ... + tokens[t] + 1) mod V, over V = 10 ids. */
    private static final class SumModel implements LanguageModel {
        static final int V = 10;
        int forwards;

        @Override
        public float[] logits(int[] tokens) {
            forwards++;
            float[] out = new float[tokens.length * V];
            int sum = 0;
            for (int t = 0; t < tokens.length; t++) {
                sum += tokens[t];
                out[t * V + (sum + 1) % V] = 1f;
            }
            return out;
        }

        @Override
        public int vocabSize() {
            return V;
        }

        @Override
        public int maxSeqLen() {
            return 64;
        }

        @Override
        public Backend backend() {
            throw new UnsupportedOperationException();
        }

        @Override
        public void setTraining(boolean training) {
        }

        @Override
        public double trainStep(int[][] windows, float gradScale) {
            throw new UnsupportedOperationException();
        }

        @Override
        public double trainStep(int[][] inputs, int[][] targets, float gradScale) {
            throw new UnsupportedOperationException();
        }

        @Override
        public double evalLoss(int[][] windows) {
            throw new UnsupportedOperationException();
        }

        @Override
        public double evalLoss(int[][] inputs, int[][] targets) {
            throw new UnsupportedOperationException();
        }

        @Override
        public List<Parameter> parameters() {
            return List.of();
        }

        @Override
        public List<AdaptedLinear> adaptedModules() {
            return List.of();
        }

        @Override
        public void close() {
        }
    }

    @Test
    void batchedRowsOfDifferentLengthsGiveTheHandComputedTokens() {
        SumModel m = new SumModel();
        // by hand, next = (running sum + 1) mod 10, stop at 0:
        // {3}:    4 (sum 7), 8 (15), 6 (21), 2 (23)                -> cut at maxNew 4
        // {4,4}:  9 (17), 8 (25), 6 (31), 2 (33)                   -> cut at maxNew 4
        // {9}:    0                                                -> stopped at once, nothing kept
        // {1,2,2}: 6 (11), 2 (13), 4 (17), 8 (25)                  -> cut
        // {4}:    5 (9), 0                                         -> stopped after one token
        List<int[]> prompts = List.of(new int[]{3}, new int[]{4, 4}, new int[]{9}, new int[]{1, 2, 2}, new int[]{4});
        GreedyDecoder.Generation g = GreedyDecoder.generate(m, prompts, 4, id -> id == 0);
        assertArrayEquals(new int[]{4, 8, 6, 2}, g.completions()[0]);
        assertArrayEquals(new int[]{9, 8, 6, 2}, g.completions()[1]);
        assertArrayEquals(new int[]{}, g.completions()[2]);
        assertArrayEquals(new int[]{6, 2, 4, 8}, g.completions()[3]);
        assertArrayEquals(new int[]{5}, g.completions()[4]);
        assertArrayEquals(new boolean[]{false, false, true, false, true}, g.stopped());
        assertEquals(4, g.forwards(), "one batched forward per generated position");
        GreedyDecoder.Generation capped = GreedyDecoder.generate(m, prompts, new int[]{2, 4, 4, 1, 4}, id -> id == 0);
        assertArrayEquals(new int[]{4, 8}, capped.completions()[0], "own cap 2");
        assertArrayEquals(new int[]{9, 8, 6, 2}, capped.completions()[1]);
        assertArrayEquals(new int[]{6}, capped.completions()[3], "own cap 1");
        assertArrayEquals(new int[]{5}, capped.completions()[4]);
    }

    @Test
    void realModelBatchedEqualsOneRowAtATime() {
        try (Backend be = new CpuBackend(); DecoderModel m = TinyLlama.random(be, LlamaFamily.LLAMA, 11)) {
            SplittableRandom rng = new SplittableRandom(3);
            List<int[]> prompts = new ArrayList<>();
            int[][] padded = new int[5][12];
            int[] pos = new int[5];
            for (int i = 0; i < 5; i++) {
                int[] p = new int[3 + 2 * i];
                for (int j = 0; j < p.length; j++) {
                    p[j] = rng.nextInt(257);
                }
                prompts.add(p);
                System.arraycopy(p, 0, padded[i], 0, p.length);
                Arrays.fill(padded[i], p.length, 12, 200);        // any valid id as padding
                pos[i] = p.length - 1;
            }
            float[] batched = m.logitsAt(padded, pos);               // [5, V]
            int v = m.vocabSize();
            for (int i = 0; i < 5; i++) {
                float[] one = m.logits(prompts.get(i));
                for (int j = 0; j < v; j++) {
                    assertEquals(one[pos[i] * v + j], batched[i * v + j], 1e-4f, "row " + i + " id " + j);
                }
            }
            int stopId = 256;
            GreedyDecoder.Generation g = GreedyDecoder.generate(m, prompts, 6, id -> id == stopId);
            for (int i = 0; i < prompts.size(); i++) {
                int[] ctx = prompts.get(i).clone();
                List<Integer> ref = new ArrayList<>();
                for (int k = 0; k < 6; k++) {
                    float[] l = m.logits(ctx);
                    int next = GreedyDecoder.argmax(l, (ctx.length - 1) * v, v);
                    if (next == stopId) {
                        break;
                    }
                    ref.add(next);
                    ctx = Arrays.copyOf(ctx, ctx.length + 1);
                    ctx[ctx.length - 1] = next;
                }
                assertArrayEquals(ref.stream().mapToInt(Integer::intValue).toArray(), g.completions()[i],
                        "prompt " + i);
            }
            assertTrue(g.forwards() >= 1 && g.forwards() <= 6);
        }
    }

    @Test
    void refusesBadArguments() {
        SumModel m = new SumModel();
        assertThrows(IllegalArgumentException.class, () -> GreedyDecoder.generate(m, List.of(), 3, id -> false));
        assertThrows(IllegalArgumentException.class,
                () -> GreedyDecoder.generate(m, List.<int[]>of(new int[0]), 3, id -> false));
        assertThrows(IllegalArgumentException.class,
                () -> GreedyDecoder.generate(m, List.<int[]>of(new int[64]), 3, id -> false), "no room to generate");
        assertThrows(IllegalArgumentException.class,
                () -> GreedyDecoder.generate(m, List.<int[]>of(new int[]{1}), 0, id -> false));
        assertThrows(IllegalArgumentException.class,
                () -> GreedyDecoder.generate(m, List.<int[]>of(new int[]{1}), new int[]{2, 2}, id -> false));
        assertThrows(IllegalArgumentException.class, () -> m.logitsAt(new int[][]{{1, 2}}, new int[]{2}));
    }
}
