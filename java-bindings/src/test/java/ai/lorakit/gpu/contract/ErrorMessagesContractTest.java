package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

/**
 * Every backend rejects bad calls with the same exception type and the same message as the CPU reference
 * (ai.lorakit.gpu.OpChecks is the one wording), once the backend's own name in tensor descriptions is set
 * aside: shape and numel mismatches, GEMM operands out of bounds, wrong dtypes, bad host data, a bad dropout
 * probability, closed tensors and a closed backend.
 */
class ErrorMessagesContractTest {

    /** One bad call on a backend's tensors: a [2,3] F32, b [5] F32, ids [2,3] I32. */
    private record Bad(String what, Consumer<Env> call) {
    }

    private record Env(Backend be, Tensor a, Tensor b, Tensor ids, Tensor sq) {
    }

    private static List<Bad> cases() {
        List<Bad> c = new ArrayList<>();
        c.add(new Bad("add numel", e -> e.be().add(e.a(), e.b(), e.a())));
        c.add(new Bad("axpby numel", e -> e.be().axpby(1f, e.b(), 1f, e.a())));
        c.add(new Bad("addRowVector", e -> e.be().addRowVector(e.a(), e.b(), e.a())));
        c.add(new Bad("mulColVector", e -> e.be().mulColVector(e.a(), e.b(), e.a())));
        c.add(new Bad("transpose", e -> e.be().transpose(e.a(), e.a())));
        c.add(new Bad("rowDot", e -> e.be().rowDot(e.a(), e.sq(), e.b())));
        c.add(new Bad("sumRows", e -> e.be().sumRows(e.a(), 0f, e.b())));
        c.add(new Bad("dot", e -> e.be().dot(e.a(), e.b())));
        c.add(new Bad("I32 in math op", e -> e.be().scale(e.ids(), 2f, e.a())));
        c.add(new Bad("downloadInts of F32", e -> e.be().downloadInts(e.a())));
        c.add(new Bad("copy numel", e -> e.be().copy(e.a(), e.b())));
        c.add(new Bad("upload length", e -> e.be().upload(new float[5], 2, 3)));
        c.add(new Bad("uploadInts length", e -> e.be().uploadInts(new int[5], 6)));
        c.add(new Bad("negative dim", e -> e.be().zeros(DType.F32, 2, -1)));
        c.add(new Bad("dropout p", e -> e.be().dropoutMask(e.a(), 1.5f, 1L)));
        c.add(new Bad("gemm lda", e -> e.be().gemm(false, false, 2, 3, 3, 1f, e.a(), 0, 2, e.sq(), 0, 3, 0f, e.a(), 0, 3)));
        c.add(new Bad("gemm past end", e -> e.be().gemm(false, false, 2, 3, 3, 1f, e.a(), 1, 3, e.sq(), 0, 3, 0f, e.a(), 0, 3)));
        c.add(new Bad("gemm negative", e -> e.be().gemm(false, false, -2, 3, 3, 1f, e.a(), 0, 3, e.sq(), 0, 3, 0f, e.a(), 0, 3)));
        c.add(new Bad("copyStrided past end", e -> e.be().copyStrided(e.a(), 0, 3, 1, e.b(), 1, 3, 2, 3)));
        c.add(new Bad("copyStrided ld", e -> e.be().copyStrided(e.a(), 0, 3, 1, e.a(), 0, 2, 2, 3)));
        c.add(new Bad("rmsNorm gamma", e -> e.be().rmsNormForward(e.a(), e.b(), 1e-5f, e.a(), e.b())));
        c.add(new Bad("rope rank", e -> e.be().ropeForward(e.a(), 1, e.sq(), e.sq(), e.a())));
        c.add(new Bad("swiglu numel", e -> e.be().swigluForward(e.a(), e.b(), e.a())));
        c.add(new Bad("gqa rank", e -> e.be().gqaAttentionForward(e.a(), e.a(), e.a(), 1, 1, e.a(), e.sq())));
        c.add(new Bad("embedding ids", e -> e.be().embeddingForward(e.ids(), e.sq(), null, e.a())));
        c.add(new Bad("matmul inner", e -> e.be().matmul(e.a(), false, e.a(), false, e.sq(), 1f, 0f)));
        c.add(new Bad("closed tensor", e -> {
            Tensor t = e.be().upload(new float[3], 3).named("t");
            t.close();
            e.be().scale(t, 1f, e.b());
        }));
        return c;
    }

    private static Throwable failure(Backend be, Bad bad) {
        try (Tensor a = be.upload(Ref.arange(6, 1f), 2, 3).named("a"); Tensor b = be.upload(Ref.ones(5), 5).named("b");
             Tensor ids = be.uploadInts(new int[6], 2, 3).named("ids"); Tensor sq = be.upload(Ref.ones(9), 3, 3).named("sq")) {
            return assertThrows(RuntimeException.class, () -> bad.call().accept(new Env(be, a, b, ids, sq)), bad.what());
        }
    }

    private static String normalised(Backend be, Throwable t) {
        return t.getClass().getSimpleName() + ": " + t.getMessage().replace("@" + be.name(), "@BACKEND")
                .replace("backend " + be.name() + " ", "backend BACKEND ");
    }

    @ParameterizedTest
    @MethodSource(BackendContractTest.SRC)
    void badCallsFailLikeTheCpuReference(Supplier<Backend> f) {
        try (Backend ref = new CpuBackend(); Backend be = f.get()) {
            for (Bad bad : cases()) {
                assertEquals(normalised(ref, failure(ref, bad)), normalised(be, failure(be, bad)), bad.what());
            }
        }
        Backend ref = new CpuBackend();
        Backend be = f.get();
        ref.close();
        be.close();
        assertEquals(normalised(ref, assertThrows(RuntimeException.class, () -> ref.zeros(DType.F32, 2))),
                normalised(be, assertThrows(RuntimeException.class, () -> be.zeros(DType.F32, 2))), "closed backend");
    }
}
