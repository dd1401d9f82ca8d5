package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.LlamaRef;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.Test;

import java.util.Random;

import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.d;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.fd;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.nan;
import static ai.lorakit.gpu.cpu.CpuTransformerOpsTest.rand;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves both paths of {@link CpuLlamaOps}' grouped-query attention (the scalar reference and the Vector API path
 * through {@link CpuAttention} on group-repeated heads) match the double reference {@code LlamaRef.gqa} and its
 * finite differences for MHA, GQA and MQA (the contract suite only reaches the path the JVM starts with), and
 * that each path gives the same bits on a second call.
 */
class CpuLlamaOpsPathsTest {

    private final boolean saved = CpuTransformerOps.naive;

    @AfterEach
    void restorePath() {
        CpuTransformerOps.naive = saved;
    }

    @Test
    void bothAttentionPathsMatchTheReference() {
        int[][] shapes = {{2, 5, 2, 2, 4}, {2, 6, 4, 2, 5}, {1, 9, 3, 1, 7}};   // (B, T, nHead, nKvHead, D)
        for (boolean scalar : new boolean[] {true, false}) {
            CpuTransformerOps.naive = scalar;
            for (int[] s : shapes) {
                int b = s[0], t = s[1], nh = s[2], nkv = s[3], hd = s[4];
                String tag = (scalar ? "scalar" : "vector") + " path B=" + b + " T=" + t + " nHead=" + nh
                        + " nKvHead=" + nkv + " D=" + hd;
                Random r = new Random(77 + t);
                float[] q = rand(r, b * t * nh * hd, 1), k = rand(r, b * t * nkv * hd, 1);
                float[] v = rand(r, b * t * nkv * hd, 1), dout = rand(r, b * t * nh * hd, 1);
                float[] out = nan(q.length), att = nan(b * nh * t * t);
                CpuLlamaOps.gqaForward(q, k, v, out, att, b, t, hd, nh, nkv);
                double[] ratt = new double[att.length];
                double[] qd = d(q), kd = d(k), vd = d(v), G = d(dout);
                close("out " + tag, out, LlamaRef.gqa(qd, kd, vd, b, t, nh, nkv, hd, ratt));
                close("att " + tag, att, ratt);
                float[] dq = nan(q.length), dk = nan(k.length), dv = nan(v.length);
                CpuLlamaOps.gqaBackward(dout, q, k, v, att, dq, dk, dv, b, t, hd, nh, nkv);
                close("dq " + tag, dq, fd(qd, G, x -> LlamaRef.gqa(x, kd, vd, b, t, nh, nkv, hd, null), null));
                close("dk " + tag, dk, fd(kd, G, x -> LlamaRef.gqa(qd, x, vd, b, t, nh, nkv, hd, null), null));
                close("dv " + tag, dv, fd(vd, G, x -> LlamaRef.gqa(qd, kd, x, b, t, nh, nkv, hd, null), null));
                float[] dk2 = nan(k.length), dq2 = nan(q.length), dv2 = nan(v.length);
                CpuLlamaOps.gqaBackward(dout, q, k, v, att, dq2, dk2, dv2, b, t, hd, nh, nkv);
                assertArrayEquals(dk, dk2, "same bits on a second call, " + tag);
            }
        }
    }

    private static void close(String what, float[] actual, double[] ref) {
        Tolerance.Result res = Tolerance.F32.compare(what, actual, ref);
        assertTrue(res.ok(), res.describe());
    }
}
