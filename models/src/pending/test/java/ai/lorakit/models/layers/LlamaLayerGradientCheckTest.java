package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Proves the Llama family's layers' backwards against central finite differences of their forwards
 * ({@link LayerCheck}): RmsNorm; SwiGluMlp; GqaSelfAttention as MHA, GQA and MQA, with and without RoPE, with and
 * without q/k/v biases (Qwen2). Pending: compiles once the Backend has rmsNorm, swiglu, rope and gqaAttention.
 */
class LlamaLayerGradientCheckTest {

    private static final int C = 8;

    private Backend be;
    private LayerCheck h;

    @BeforeEach
    void setUp() {
        be = new CpuBackend();
        h = new LayerCheck(be, 11);
    }

    @AfterEach
    void tearDown() {
        h.close();
        be.close();
    }

    @Test
    void rmsNorm() {
        Parameter g = h.param("g", C);
        h.check("RmsNorm", C, h.norm(new RmsNorm(g, 1e-6f)), List.of(g));
    }

    @Test
    void swiGluMlp() {
        List<Parameter> ps = new ArrayList<>();
        SwiGluMlp mlp = new SwiGluMlp(linear("gate", C, 12, false, ps), linear("up", C, 12, false, ps),
                linear("down", 12, C, false, ps));
        h.check("SwiGluMlp", C, h.sublayer(mlp, C), ps);
    }

    @Test
    void gqaSelfAttentionEveryHeadLayoutWithAndWithoutRopeAndBias() {
        int heads = 4;
        int d = 4;                                   // head_dim != C / heads on purpose: q is H*D = 16 wide
        for (int kvHeads : new int[] {4, 2, 1}) {    // MHA, GQA, MQA
            for (boolean rope : new boolean[] {true, false}) {
                for (boolean bias : new boolean[] {true, false}) {
                    List<Parameter> ps = new ArrayList<>();
                    GqaSelfAttention attn = new GqaSelfAttention(linear("q", C, heads * d, bias, ps),
                            linear("k", C, kvHeads * d, bias, ps), linear("v", C, kvHeads * d, bias, ps),
                            linear("o", heads * d, C, false, ps), heads, kvHeads, rope ? invFreq(d, 10000) : null);
                    h.check("GQA H=" + heads + " Hkv=" + kvHeads + (rope ? " rope" : "") + (bias ? " bias" : ""),
                            C, h.sublayer(attn, C), ps);
                }
            }
        }
        List<Parameter> ps = new ArrayList<>();
        assertThrows(IllegalArgumentException.class, () -> new GqaSelfAttention(linear("q", C, 16, false, ps),
                linear("k", C, 12, false, ps), linear("v", C, 12, false, ps), linear("o", 16, C, false, ps), 4, 3,
                null), "H % Hkv != 0 is refused");
    }

    /** theta^(-2i/D), i < D/2 (RoPE without scaling). */
    private static float[] invFreq(int d, double theta) {
        float[] f = new float[d / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = (float) Math.pow(theta, -2.0 * i / d);
        }
        return f;
    }

    /** A trainable nn.Linear-layout layer, as Llama's. */
    private Linear linear(String name, int in, int out, boolean bias, List<Parameter> ps) {
        return h.linear(name, in, out, Linear.Layout.OUT_IN, bias, ps);
    }
}
