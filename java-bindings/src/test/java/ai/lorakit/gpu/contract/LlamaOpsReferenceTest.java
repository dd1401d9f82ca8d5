package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Named;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves every backend's Llama-family ops agree with an independent PyTorch implementation
 * (ci/reference/llama_ops_reference.py: HF's LlamaRMSNorm, rotate_half RoPE, SiLU gating and repeat_kv causal
 * attention, float64 autograd from the stored F32 inputs): forward outputs, saved statistics (rstd, att) and every
 * input gradient for dout = the stored upstream gradient, to Tolerance.F32.
 */
class LlamaOpsReferenceTest {

    static Stream<Arguments> backends() {
        return ContractBackends.all().map(nb -> Arguments.of(Named.of(nb.getName(), nb.getPayload().get())));
    }

    private static Tensor up(Backend be, RefDump f, String name) {
        return be.upload(f.get(name), f.shape(name)).named(name);
    }

    private static Tensor like(Backend be, RefDump f, String name) {
        Tensor t = be.zeros(DType.F32, f.shape(name));
        be.fill(t, Float.NaN);
        return t;
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rmsNorm(Backend be) {
        RefDump f = RefDump.open("rmsnorm");
        try (Tensor x = up(be, f, "x"); Tensor g = up(be, f, "gamma"); Tensor dout = up(be, f, "dout");
             Tensor out = like(be, f, "out"); Tensor rstd = like(be, f, "rstd"); Tensor dx = like(be, f, "dx");
             Tensor dg = be.zeros(DType.F32, f.shape("dgamma"))) {
            be.rmsNormForward(x, g, (float) f.metaDouble("eps"), out, rstd);
            matches(be, f, "rmsnorm out", out, "out");
            matches(be, f, "rmsnorm rstd", rstd, "rstd");
            be.rmsNormBackward(dout, x, g, rstd, dx, dg);
            matches(be, f, "rmsnorm dx", dx, "dx");
            matches(be, f, "rmsnorm dgamma", dg, "dgamma");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void rope(Backend be) {
        RefDump f = RefDump.open("rope");
        int nHead = f.metaInt("nHead");
        try (Tensor x = up(be, f, "x"); Tensor cos = up(be, f, "cos"); Tensor sin = up(be, f, "sin");
             Tensor dout = up(be, f, "dout"); Tensor out = like(be, f, "out"); Tensor dx = like(be, f, "dx")) {
            be.ropeForward(x, nHead, cos, sin, out);
            matches(be, f, "rope out", out, "out");
            be.ropeBackward(dout, nHead, cos, sin, dx);
            matches(be, f, "rope dx", dx, "dx");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void swiglu(Backend be) {
        RefDump f = RefDump.open("swiglu");
        try (Tensor gate = up(be, f, "gate"); Tensor u = up(be, f, "up"); Tensor dout = up(be, f, "dout");
             Tensor out = like(be, f, "out"); Tensor dg = like(be, f, "dgate"); Tensor du = like(be, f, "dup")) {
            be.swigluForward(gate, u, out);
            matches(be, f, "swiglu out", out, "out");
            be.swigluBackward(dout, gate, u, dg, du);
            matches(be, f, "swiglu dgate", dg, "dgate");
            matches(be, f, "swiglu dup", du, "dup");
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("backends")
    void groupedQueryAttention(Backend be) {
        for (String name : new String[] {"gqa", "mqa", "mha"}) {
            RefDump f = RefDump.open(name);
            int nh = f.metaInt("nHead"), nkv = f.metaInt("nKvHead");
            try (Tensor q = up(be, f, "q"); Tensor k = up(be, f, "k"); Tensor v = up(be, f, "v");
                 Tensor dout = up(be, f, "dout"); Tensor out = like(be, f, "out"); Tensor att = like(be, f, "att");
                 Tensor dq = like(be, f, "dq"); Tensor dk = like(be, f, "dk"); Tensor dv = like(be, f, "dv")) {
                be.gqaAttentionForward(q, k, v, nh, nkv, out, att);
                matches(be, f, name + " out", out, "out");
                matches(be, f, name + " att", att, "att");
                be.gqaAttentionBackward(dout, q, k, v, att, nh, nkv, dq, dk, dv);
                matches(be, f, name + " dq", dq, "dq");
                matches(be, f, name + " dk", dk, "dk");
                matches(be, f, name + " dv", dv, "dv");
            }
        }
    }

    /** actual agrees with the dump's tensor {@code name}; the max error is logged for the record. */
    private static void matches(Backend be, RefDump f, String what, Tensor actual, String name) {
        Tolerance.Result res = Tolerance.F32.compare(be.name() + " vs torch: " + what, be.download(actual),
                f.get(name));
        assertTrue(res.ok(), res.describe());
        System.out.printf("llama-ops reference: %-10s %-8s max |x - ref| = %.3g%n", be.name(), what, res.maxAbsDiff());
    }
}
