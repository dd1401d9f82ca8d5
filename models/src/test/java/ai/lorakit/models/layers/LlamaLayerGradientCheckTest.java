package ai.lorakit.models.layers;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.RopeTables;
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
 * without q/k/v biases (Qwen2), with llama3 rope_scaling, and with Qwen3's per-head q/k RMSNorm (whose gammas are
 * checked too).
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
                    if (bias && !rope) {
                        continue;   // k's bias then adds q.bk to a whole score row: softmax cancels it, dL/dbk == 0
                    }
                    List<Parameter> ps = new ArrayList<>();
                    GqaSelfAttention attn = new GqaSelfAttention(linear("q", C, heads * d, bias, ps),
                            linear("k", C, kvHeads * d, bias, ps), linear("v", C, kvHeads * d, bias, ps),
                            linear("o", heads * d, C, false, ps), heads, kvHeads,
                            rope ? new GqaSelfAttention.Rope(10000, null) : null, null);
                    h.check("GQA H=" + heads + " Hkv=" + kvHeads + (rope ? " rope" : "") + (bias ? " bias" : ""),
                            C, h.sublayer(attn, C), ps);
                }
            }
        }
        List<Parameter> ps = new ArrayList<>();
        assertThrows(IllegalArgumentException.class, () -> new GqaSelfAttention(linear("q", C, 16, false, ps),
                linear("k", C, 12, false, ps), linear("v", C, 12, false, ps), linear("o", 16, C, false, ps), 4, 3,
                null, null), "H % Hkv != 0 is refused");
    }

    @Test
    void gqaSelfAttentionWithQwen3QkNormAndLlama3Scaling() {
        int heads = 4;
        int kvHeads = 2;
        int d = 4;
        List<Parameter> ps = new ArrayList<>();
        Linear q = linear("q", C, heads * d, false, ps);
        Linear k = linear("k", C, kvHeads * d, false, ps);
        Linear v = linear("v", C, kvHeads * d, false, ps);
        Linear o = linear("o", heads * d, C, false, ps);
        Parameter qn = h.param("g_qnorm", d);
        Parameter kn = h.param("g_knorm", d);
        ps.add(qn);
        ps.add(kn);
        // factor 8, original 4 positions: wavelengths of D=4 fall in every llama3 band at theta 10
        GqaSelfAttention attn = new GqaSelfAttention(q, k, v, o, heads, kvHeads,
                new GqaSelfAttention.Rope(10, new RopeTables.Llama3Scaling(8f, 1f, 4f, 4)),
                new GqaSelfAttention.QkNorm(qn, kn, 1e-6f));
        h.check("GQA qk-norm llama3-rope", C, h.sublayer(attn, C), ps);
        assertThrows(IllegalArgumentException.class, () -> new GqaSelfAttention(q, k, v, o, heads, kvHeads, null,
                new GqaSelfAttention.QkNorm(h.param("bad", d + 1), kn, 1e-6f)), "a q norm not [D] is refused");
    }

    /** A trainable nn.Linear-layout layer, as Llama's. */
    private Linear linear(String name, int in, int out, boolean bias, List<Parameter> ps) {
        return h.linear(name, in, out, Linear.Layout.OUT_IN, bias, ps);
    }
}
