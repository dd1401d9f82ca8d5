package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.AdamW;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.Ref;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPU: proves a whole LoRA training step (restaging of the adapter, the staged K-concat forward of the bf16 policy,
 * a squared-error gradient, backward into A and B, AdamW on both) captured once as a CUDA graph and replayed gives
 * the same parameters as running the same steps eagerly, on each binding, with temporaries created inside the step
 * becoming graph memory nodes.
 * Skipped without a GPU.
 */
class CudaGraphIT {
    private static final int N = 64;
    private static final int IN = 96;
    private static final int OUT = 80;
    private static final int R = 8;
    private static final float S = 2f;

    /**
     * Parameters and buffers of one adapted layer in the bf16 policy's staged form: x, W bf16, A, B fp32 masters, the
     * bf16 stages and the margin buffers Wm, Xm of {@link LoraMargins}.
     */
    private record Layer(LoraMargins g, Tensor x, Tensor w, Tensor a, Tensor b, Tensor aStage, Tensor sbStage,
                         Tensor wm, Tensor xm, Tensor y, Tensor target,
                         Tensor ma, Tensor va, Tensor mb, Tensor vb) {
        /** A layer with W staged into Wm once (W is frozen), as an adapted layer does at its first step. */
        static Layer create(CudaBackend be) {
            LoraMargins g = new LoraMargins(IN, OUT, R, false, false);
            Layer l = new Layer(g, be.upload(Ref.random(1, N * IN), DType.BF16, N, IN),
                    be.upload(Ref.random(2, OUT * IN), DType.BF16, OUT, IN),
                    be.upload(Ref.random(3, R * IN), R, IN), be.upload(Ref.random(4, OUT * R), OUT, R),
                    be.zeros(DType.BF16, R, IN), be.zeros(DType.BF16, OUT, R),
                    be.zeros(DType.BF16, g.wmRows(), g.ldw()), be.zeros(DType.BF16, N, g.ldx()),
                    be.zeros(DType.F32, N, OUT), be.upload(Ref.random(5, N * OUT), N, OUT),
                    be.zeros(DType.F32, R, IN), be.zeros(DType.F32, R, IN), be.zeros(DType.F32, OUT, R),
                    be.zeros(DType.F32, OUT, R));
            be.loraStage(l.a(), l.b(), S, g, l.w(), null, l.aStage(), l.sbStage(), l.wm());
            return l;
        }
    }

    /**
     * Restage A and s B into Wm's margins (after the last step's AdamW; W stays), the staged forward, dY = y - target,
     * dB = s dY^T S (S read from Xm), dU = s dY B, dA = dU^T x, AdamW(A), AdamW(B).
     */
    private static void step(CudaBackend be, Layer l) {
        AdamW hp = new AdamW(1e-2f, 0.9f, 0.999f, 1e-8f, 0f, 1);
        be.loraStage(l.a(), l.b(), S, l.g(), null, null, l.aStage(), l.sbStage(), l.wm());
        be.loraLinearForwardStaged(l.x(), l.a(), l.g(), l.aStage(), l.wm(), l.xm(), l.y());
        try (Tensor dy = be.zeros(DType.F32, N, OUT);
             Tensor du = be.zeros(DType.F32, N, R);
             Tensor da = be.zeros(DType.F32, R, IN);
             Tensor db = be.zeros(DType.F32, OUT, R)) {
            be.copy(l.y(), dy);
            be.axpby(-1f, l.target(), 1f, dy);
            l.g().adapterBGradGemm(be, N, dy, S, l.xm(), db);              // db is zero: = s dY^T S
            be.matmul(dy, false, l.b(), false, du, S, 0f);
            be.matmul(du, true, l.x(), false, da, 1f, 0f);
            be.adamw(l.a(), da, l.ma(), l.va(), hp);
            be.adamw(l.b(), db, l.mb(), l.vb(), hp);
        }
    }

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#backends")
    void replayedStepsMatchEagerSteps(Supplier<CudaBackend> open) {
        try (CudaBackend be = open.get()) {
            Layer eager = Layer.create(be);
            Layer graphed = Layer.create(be);
            step(be, eager);
            step(be, graphed);                       // warm-up: scratch space and kernels exist before capture
            int live = be.cudaDevice().liveBuffers();
            try (CudaGraph g = be.capture(() -> step(be, graphed))) {
                for (int i = 0; i < 5; i++) {
                    step(be, eager);
                    g.replay();
                }
            }
            be.synchronize();
            assertTrue(be.cudaDevice().liveBuffers() == live, "temporaries of the step stay inside the graph");
            for (String name : new String[] {"A", "B"}) {
                Tensor e = name.equals("A") ? eager.a() : eager.b();
                Tensor g = name.equals("A") ? graphed.a() : graphed.b();
                Tolerance.Result r = Tolerance.F32.compare(be.name() + " graph vs eager " + name, be.download(g),
                        be.download(e));
                assertTrue(r.ok(), r.describe());
            }
        }
    }
}
