package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static ai.lorakit.models.layers.LayerCheck.B;
import static ai.lorakit.models.layers.LayerCheck.T;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Proves each layer's hand-written backward against central finite differences of its own forward, layer by layer
 * ({@link LayerCheck}; the whole-model check against an independent double forward is Gpt2GradientCheckTest): dx
 * and the gradient of every trainable parameter, at every coordinate. Covered: Linear in both layouts, with and
 * without bias, frozen (no gradient) or trainable; LayerNorm; GeluMlp; CausalSelfAttention; PreNormBlock;
 * Embedding with and without its position table's gradient.
 */
class LayerGradientCheckTest {

    private static final int C = 8;

    private Backend be;
    private LayerCheck h;

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        h = new LayerCheck(be, 7);
    }

    @AfterEach
    void tearDown() {
        h.close();
        be.close();
    }

    @Test
    void linearBothLayoutsWithAndWithoutBias() {
        for (Linear.Layout layout : Linear.Layout.values()) {
            for (boolean withBias : new boolean[] {true, false}) {
                List<Parameter> ps = new ArrayList<>();
                Linear lin = h.linear("lin", C, 5, layout, withBias, ps);
                assertEquals(C, lin.in());
                assertEquals(5, lin.out());
                h.check(layout + (withBias ? " + bias" : ""), C, h.linear(lin), ps);
            }
        }
    }

    @Test
    void frozenLinearGetsNoGradientButPassesDx() {
        List<Parameter> ps = new ArrayList<>();
        Linear lin = h.linear("lin", C, 4, Linear.Layout.OUT_IN, true, ps);
        ps.forEach(p -> p.setTrainable(false));
        h.check("frozen", C, h.linear(lin), List.of());
        for (Parameter p : ps) {
            assertNull(p.grad(), "frozen " + p.name() + " gets no gradient");
        }
    }

    @Test
    void layerNorm() {
        Parameter g = h.param("g", C);
        Parameter b = h.param("b", C);
        h.check("LayerNorm", C, h.norm(new LayerNorm(g, b, 1e-5f)), List.of(g, b));
    }

    @Test
    void geluMlp() {
        List<Parameter> ps = new ArrayList<>();
        GeluMlp mlp = new GeluMlp(conv1d("fc", C, 4 * C, ps), conv1d("proj", 4 * C, C, ps));
        h.check("GeluMlp", C, h.sublayer(mlp, C), ps);
    }

    @Test
    void causalSelfAttention() {
        List<Parameter> ps = new ArrayList<>();
        CausalSelfAttention attn = new CausalSelfAttention(conv1d("qkv", C, 3 * C, ps), conv1d("o", C, C, ps), 2);
        h.check("CausalSelfAttention", C, h.sublayer(attn, C), ps);
        assertThrows(IllegalArgumentException.class,
                () -> new CausalSelfAttention(conv1d("qkv", C, 3 * C, ps), conv1d("o", C, C, ps), 3),
                "C % heads != 0 is refused");
    }

    @Test
    void preNormBlock() {
        List<Parameter> ps = new ArrayList<>();
        Parameter g1 = h.param("g1", C);
        Parameter b1 = h.param("b1", C);
        Parameter g2 = h.param("g2", C);
        Parameter b2 = h.param("b2", C);
        CausalSelfAttention attn = new CausalSelfAttention(conv1d("qkv", C, 3 * C, ps), conv1d("o", C, C, ps), 2);
        GeluMlp mlp = new GeluMlp(conv1d("fc", C, 4 * C, ps), conv1d("proj", 4 * C, C, ps));
        PreNormBlock block = new PreNormBlock(new LayerNorm(g1, b1, 1e-5f), attn, new LayerNorm(g2, b2, 1e-5f), mlp,
                C, be);
        ps.addAll(List.of(g1, b1, g2, b2));
        h.check("PreNormBlock", C, new LayerCheck.Layer() {
            public Tensor forward(Buffers buf, Tensor x) {
                return block.forward(buf, x);
            }

            public void backward(Buffers buf, Tensor dy, Tensor dx) {
                be.copy(dy, dx);
                block.backward(buf, dx);     // in place: dL/d out -> dL/d x
            }
        }, ps);
    }

    @Test
    void embeddingWithAndWithoutTrainablePositions() {
        int v = 6;
        int[] ids = {0, 5, 2, 2, 1, 0};
        for (boolean posTrainable : new boolean[] {true, false}) {
            Parameter wte = h.param("wte", v, C);
            Parameter wpe = h.param("wpe", T, C);
            wpe.setTrainable(posTrainable);
            try (Embedding emb = new Embedding(wte, wpe); Buffers buf = new Buffers(be, B, T);
                 Tensor idT = be.uploadInts(ids, B, T)) {
                float[] g = h.uniform(B * T * C, 1);
                assertEquals(B * T * C, emb.forward(buf, idT).numel());
                try (Tensor dy = be.upload(g, B, T, C)) {
                    emb.backward(buf, dy);
                }
                for (Parameter p : posTrainable ? List.of(wte, wpe) : List.of(wte)) {
                    h.compareGrad("Embedding d" + p.name(), p,
                            () -> LayerCheck.dot(g, be.download(emb.forward(buf, idT))));
                }
                if (!posTrainable) {
                    assertNull(wpe.grad(), "a frozen position table gets no gradient");
                }
            }
        }
    }

    /** A trainable Conv1D-layout linear with bias (GPT-2's). */
    private Linear conv1d(String name, int in, int out, List<Parameter> ps) {
        return h.linear(name, in, out, Linear.Layout.IN_OUT, true, ps);
    }
}
