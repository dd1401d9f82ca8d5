package ai.lorakit.gpu.cpu;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.contract.Ref;
import org.junit.jupiter.api.Test;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;

/**
 * Proves that {@link CpuBackend} is bit-reproducible: a mix of ops (GEMM of several shapes including the
 * multithreaded row, column and batch splits and a BF16 output, cross-entropy, GELU, LayerNorm,
 * attention forward and backward, AdamW, elementwise, broadcast and column-sum ops, embedding backward; vector
 * and scalar-reference paths) gives the same bits on every one of thousands of calls on fixed inputs, enough for
 * C2 to compile every path mid-loop (the Vector API's EXP and reduceLanes(ADD) changed results there), and the
 * same bits as a child JVM that runs each op once without C2 ({@code -XX:TieredStopAtLevel=1}: the interpreter
 * and C1 run the Vector API's Java fallback, C2 its intrinsics), so no result depends on the JIT tier even when
 * this JVM compiled everything before this test started.
 */
class DeterminismTest {

    /** Calls per small case: enough for C2 to compile the op's methods while the loop runs. */
    private static final int SMALL = 6_000;
    /** Calls per large (multithreaded) case. */
    private static final int LARGE = 100;

    /** One op on fixed inputs: returns all its outputs; must allocate (and close) its tensors per call. */
    record Case(String name, int calls, Function<Backend, float[]> run) {
    }

    // ================================================================ the cases

    static List<Case> cases() {
        List<Case> cs = new ArrayList<>();
        cs.add(gemm("gemm 13x40x30", SMALL, 1, false, false, 13, 40, 30, 0f, DType.F32));
        cs.add(gemm("gemm 13x40x30 tA tB beta", SMALL, 1, true, true, 13, 40, 30, 0.5f, DType.F32));
        cs.add(gemm("gemm skinny n (swapped) 200x8x70", SMALL / 4, 1, false, true, 200, 8, 70, 0f, DType.F32));
        cs.add(gemm("gemm BF16 C 30x20x50", SMALL / 2, 1, false, false, 30, 20, 50, 0f, DType.BF16));
        cs.add(gemm("gemm row split 130x100x30", LARGE, 1, false, true, 130, 100, 30, 0f, DType.F32));
        cs.add(gemm("gemm column split 40x700x40", LARGE, 1, true, false, 40, 700, 40, 1f, DType.F32));
        cs.add(gemm("gemm batch split 8x64x64x64", LARGE, 8, false, false, 64, 64, 64, 0f, DType.F32));
        cs.add(new Case("cross-entropy 6x50", SMALL, be -> crossEntropy(be, 6, 50)));
        cs.add(new Case("gelu fwd+bwd 333", SMALL, be -> gelu(be, 333)));
        cs.add(new Case("layerNorm fwd+bwd 12x64", SMALL, be -> layerNorm(be, 12, 64)));
        cs.add(new Case("attention fwd+bwd B2 T13 C32 H2", SMALL, be -> attention(be, 2, 13, 32, 2)));
        cs.add(new Case("attention fwd+bwd B2 T48 C64 H4 (parallel)", LARGE, be -> attention(be, 2, 48, 64, 4)));
        cs.add(new Case("adamw 3 steps 1000", SMALL / 4, be -> adamw(be, 1000)));
        cs.add(new Case("adamw 3 steps 40000 (parallel)", LARGE, be -> adamw(be, 40_000)));
        cs.add(new Case("elementwise, broadcast, sumRows 40x37", SMALL / 2, be -> elementwise(be, 40, 37)));
        cs.add(new Case("elementwise, broadcast, sumRows 521x257 (parallel)", LARGE, be -> elementwise(be, 521, 257)));
        cs.add(new Case("embedding bwd B8 T128 C160 (parallel)", LARGE, be -> embedding(be, 8, 128, 160)));
        cs.add(new Case("gelu fwd+bwd 40000 (parallel)", LARGE, be -> gelu(be, 40_000)));
        cs.add(naive(new Case("scalar path: ce, gelu, attention", SMALL / 4, be -> concat(crossEntropy(be, 4, 19),
                gelu(be, 40), attention(be, 1, 9, 16, 2)))));
        return cs;
    }

    /** c on CpuTransformerOps' scalar reference path. */
    private static Case naive(Case c) {
        return new Case(c.name(), c.calls(), be -> {
            boolean saved = CpuTransformerOps.naive;
            CpuTransformerOps.naive = true;
            try {
                return c.run().apply(be);
            } finally {
                CpuTransformerOps.naive = saved;
            }
        });
    }

    private static Case gemm(String name, int calls, int batch, boolean tA, boolean tB, int m, int n, int k,
                             float beta, DType cType) {
        float[] a = Ref.random(m * 31L + k, batch * m * k);
        float[] b = Ref.random(n * 17L + k, batch * k * n);
        float[] c0 = Ref.random(7, batch * m * n);
        return new Case(name, calls, be -> {
            try (Tensor at = be.upload(a, batch * m * k); Tensor bt = be.upload(b, batch * k * n);
                 Tensor ct = be.upload(c0, cType, batch * m * n)) {
                be.gemmBatched(batch, tA, tB, m, n, k, 1.25f, at, 0, tA ? m : k, (long) m * k, bt, 0, tB ? k : n,
                        (long) k * n, beta, ct, 0, n, (long) m * n);
                return be.download(ct);
            }
        });
    }

    private static float[] crossEntropy(Backend be, int rows, int v) {
        int[] tg = new int[rows];
        for (int i = 0; i < rows; i++) {
            tg[i] = (i * 7 + 3) % v;
        }
        try (Tensor logits = be.upload(scaled(Ref.random(rows * 77L + v, rows * v), 4f), rows, v);
             Tensor targets = be.uploadInts(tg, rows); Tensor probs = be.zeros(DType.F32, rows, v);
             Tensor losses = be.zeros(DType.F32, rows); Tensor dl = be.zeros(DType.F32, rows, v)) {
            be.crossEntropyForward(logits, targets, probs, losses);
            be.crossEntropyBackward(probs, targets, 1f / rows, dl);
            return concat(be.download(probs), be.download(losses), be.download(dl));
        }
    }

    private static float[] gelu(Backend be, int n) {
        try (Tensor x = be.upload(scaled(Ref.random(n, n), 5f), n); Tensor g = be.upload(Ref.random(n + 1, n), n);
             Tensor y = be.zeros(DType.F32, n); Tensor dx = be.zeros(DType.F32, n)) {
            be.geluForward(x, y);
            be.geluBackward(x, g, dx);
            return concat(be.download(y), be.download(dx));
        }
    }

    private static float[] layerNorm(Backend be, int rows, int cols) {
        try (Tensor x = be.upload(Ref.random(3, rows * cols), rows, cols);
             Tensor gm = be.upload(Ref.random(4, cols), cols); Tensor bt = be.upload(Ref.random(5, cols), cols);
             Tensor out = be.zeros(DType.F32, rows, cols); Tensor mean = be.zeros(DType.F32, rows);
             Tensor rstd = be.zeros(DType.F32, rows); Tensor dout = be.upload(Ref.random(6, rows * cols), rows, cols);
             Tensor dx = be.zeros(DType.F32, rows, cols); Tensor dg = be.zeros(DType.F32, cols);
             Tensor db = be.zeros(DType.F32, cols)) {
            be.layerNormForward(x, gm, bt, 1e-5f, out, mean, rstd);
            be.layerNormBackward(dout, x, gm, mean, rstd, dx, dg, db);
            return concat(be.download(out), be.download(mean), be.download(rstd), be.download(dx),
                    be.download(dg), be.download(db));
        }
    }

    private static float[] attention(Backend be, int b, int t, int c, int nh) {
        try (Tensor qkv = be.upload(scaled(Ref.random(b * 100L + t, b * t * 3 * c), 2f), b, t, 3 * c);
             Tensor out = be.zeros(DType.F32, b, t, c); Tensor att = be.zeros(DType.F32, b, nh, t, t);
             Tensor dout = be.upload(Ref.random(b * 200L + t, b * t * c), b, t, c);
             Tensor dqkv = be.zeros(DType.F32, b, t, 3 * c)) {
            be.attentionForward(qkv, nh, out, att);
            be.attentionBackward(dout, qkv, att, nh, dqkv);
            return concat(be.download(out), be.download(att), be.download(dqkv));
        }
    }

    private static float[] adamw(Backend be, int n) {
        try (Tensor p = be.upload(Ref.random(8, n), n); Tensor g = be.upload(Ref.random(9, n), n);
             Tensor m = be.zeros(DType.F32, n); Tensor v = be.zeros(DType.F32, n)) {
            for (int step = 1; step <= 3; step++) {
                be.adamw(p, g, m, v, new AdamW(1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, step));
            }
            return concat(be.download(p), be.download(m), be.download(v));
        }
    }

    private static float[] elementwise(Backend be, int rows, int cols) {
        int n = rows * cols;
        try (Tensor a = be.upload(Ref.random(10, n), rows, cols); Tensor b = be.upload(Ref.random(11, n), rows, cols);
             Tensor rv = be.upload(Ref.random(12, cols), cols); Tensor cv = be.upload(Ref.random(13, rows), rows);
             Tensor o1 = be.zeros(DType.F32, rows, cols); Tensor o2 = be.zeros(DType.BF16, rows, cols);
             Tensor o3 = be.zeros(DType.F32, rows, cols); Tensor s = be.upload(Ref.random(14, cols), cols)) {
            be.add(a, b, o1);
            be.axpby(0.3f, a, 0.7f, o1);
            be.mul(a, o1, o2);
            be.addRowVector(o1, rv, o3);
            be.mulColVector(o3, cv, o3);
            be.sumRows(o3, 0.5f, s);
            return concat(be.download(o1), be.download(o2), be.download(o3), be.download(s));
        }
    }

    private static float[] embedding(Backend be, int b, int t, int c) {
        int v = 50;
        int[] ids = new int[b * t];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (i * 13) % v;   // every id repeats
        }
        try (Tensor dout = be.upload(Ref.random(15, b * t * c), b, t, c); Tensor idt = be.uploadInts(ids, b, t);
             Tensor dwte = be.upload(Ref.random(16, v * c), v, c);
             Tensor dwpe = be.upload(Ref.random(17, t * c), t, c)) {
            be.embeddingBackward(dout, idt, dwte, dwpe);
            return concat(be.download(dwte), be.download(dwpe));
        }
    }

    private static float[] scaled(float[] x, float s) {
        for (int i = 0; i < x.length; i++) {
            x[i] *= s;
        }
        return x;
    }

    private static float[] concat(float[]... parts) {
        int n = 0;
        for (float[] p : parts) {
            n += p.length;
        }
        float[] all = new float[n];
        int o = 0;
        for (float[] p : parts) {
            System.arraycopy(p, 0, all, o, p.length);
            o += p.length;
        }
        return all;
    }

    // ================================================================ the checks

    /** SHA-256 of the raw bits of x (NaN payloads included). */
    static String digest(float[] x) {
        ByteBuffer bb = ByteBuffer.allocate(4 * x.length);
        for (float v : x) {
            bb.putInt(Float.floatToRawIntBits(v));
        }
        try {
            return HexFormat.of().formatHex(MessageDigest.getInstance("SHA-256").digest(bb.array()));
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    @Test
    void everyOpGivesTheSameBitsOnEveryCallAndAtEveryJitTier() throws Exception {
        // the child JVM (no C2) runs while this one loops
        Path java = Path.of(System.getProperty("java.home"), "bin", "java");
        Process child = new ProcessBuilder(java.toString(), "-XX:TieredStopAtLevel=1", "--add-modules",
                "jdk.incubator.vector", "-cp", System.getProperty("java.class.path"), DeterminismTest.class.getName())
                .redirectError(ProcessBuilder.Redirect.DISCARD).start();

        List<Case> cs = cases();
        Map<String, float[]> first = new LinkedHashMap<>();
        try (Backend be = new CpuBackend(false)) {
            int rounds = cs.stream().mapToInt(Case::calls).max().orElse(0);
            for (int r = 0; r < rounds; r++) {   // interleaved: code shared by several ops compiles mid-loop
                for (Case c : cs) {
                    if (r >= c.calls()) {
                        continue;
                    }
                    float[] out = c.run().apply(be);
                    float[] ref = first.putIfAbsent(c.name(), out);
                    if (ref != null) {
                        assertSameBits(c.name() + ", call " + r + " vs call 0", ref, out);
                    }
                }
            }
        }

        Map<String, String> childDigests = new LinkedHashMap<>();
        try (BufferedReader in = new BufferedReader(new InputStreamReader(child.getInputStream(),
                StandardCharsets.UTF_8))) {
            for (String line; (line = in.readLine()) != null; ) {
                int tab = line.indexOf('\t');
                if (tab > 0) {
                    childDigests.put(line.substring(0, tab), line.substring(tab + 1));
                }
            }
        }
        assertTrue(child.waitFor(120, TimeUnit.SECONDS), "child JVM did not finish");
        assertEquals(0, child.exitValue(), "child JVM exit status");
        for (Case c : cs) {
            assertEquals(digest(first.get(c.name())), childDigests.get(c.name()),
                    c.name() + ": a JVM without C2 (interpreter and C1: the Vector API's Java fallback) computed"
                            + " other bits than this one after " + c.calls() + " calls (C2 intrinsics)");
        }
    }

    private static void assertSameBits(String what, float[] want, float[] got) {
        assertEquals(want.length, got.length, what + ": length");
        for (int i = 0; i < want.length; i++) {
            if (Float.floatToRawIntBits(want[i]) != Float.floatToRawIntBits(got[i])) {
                fail(what + ": element " + i + " is " + got[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(
                        got[i])) + "), was " + want[i] + " (0x" + Integer.toHexString(Float.floatToRawIntBits(want[i]))
                        + ")");
            }
        }
    }

    /** The child JVM: prints "name TAB digest" of one call of every case. */
    public static void main(String[] args) {
        try (Backend be = new CpuBackend(false)) {
            for (Case c : cases()) {
                System.out.println(c.name() + "\t" + digest(c.run().apply(be)));
            }
        }
    }
}
