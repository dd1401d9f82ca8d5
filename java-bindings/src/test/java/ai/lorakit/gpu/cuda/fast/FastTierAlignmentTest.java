package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.LoraMargins;
import ai.lorakit.gpu.ShapeException;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;

import java.util.List;

import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves on the in-memory CUDA driver that the fast tier chooses a 16-byte-vector kernel only for aligned operands:
 * tensors wrapped at an element offset that is not a multiple of 16 bytes (x for the staged LoRA forward's and VeRA's
 * shrinks, W for the DoRA norm, dY for the staged LoRA backward's lora_linear_bwd_x_kernel1) run the portable kernels instead, the same
 * calls at a 16-byte offset run the fast kernels (so the check is what decides), and an address that is not even
 * element-aligned is refused by wrap with a message.
 */
class FastTierAlignmentTest {
    private FakeCuda fake;
    private CudaBackend be;
    private Tensor arena;   // device memory the wrapped tensors live in

    @BeforeEach
    void open() {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        fake = new FakeCuda(true);
        be = fake.backend;
        arena = be.zeros(DType.BF16, 64 * 1024);
    }

    @AfterEach
    void close() {
        if (be != null) {
            be.close();
        }
    }

    /** A bf16 tensor over the arena at {@code byteOffset} from its (256-byte aligned) base. */
    private Tensor wrapped(long byteOffset, int... shape) {
        return be.wrap(be.address("test", arena) + byteOffset, DType.BF16, shape);
    }

    /** The kernels of the staged LoRA forward on x [24,32] (out 16, r 4), the layer staged beforehand. */
    private List<String> lora(Tensor x) {
        StagedLora l = StagedLora.of(be, 24, 32, 16, 4, 1f);
        int from = fake.launches().size();
        l.forward(x);
        return fake.kernelsSince(from);
    }

    @Test
    void loraShrinkNeedsAnAlignedX() {
        List<String> odd = lora(wrapped(2, 24, 32));        // one bf16 element past an aligned base
        assertFalse(odd.contains(FusedKernelsTier.LORA_SHRINK), odd.toString());
        assertTrue(odd.contains("gemm_fwd_kernel1"), "the portable composition ran: " + odd);
        List<String> odd8 = lora(wrapped(8, 24, 32));       // 8 bytes: aligned for fp32 loads, not for vectors
        assertFalse(odd8.contains(FusedKernelsTier.LORA_SHRINK), odd8.toString());
        List<String> aligned = lora(wrapped(16, 24, 32));
        assertTrue(aligned.contains(FusedKernelsTier.LORA_SHRINK), aligned.toString());
    }

    @Test
    void stagedLoraBackwardNeedsAnAlignedDy() {
        // dY [24,16] bf16, in = 32, r = 8: out and r multiples of 8; only dY's offset varies
        LoraMargins g = new LoraMargins(32, 16, 8, false, false);
        for (long off : new long[] {2, 8, 16}) {
            int from = fake.launches().size();
            be.loraLinearBackward(wrapped(off, 24, 16), be.zeros(DType.F32, 16, 8), 2f, g,
                    be.zeros(DType.BF16, 16, 8), be.zeros(DType.BF16, g.wmRows(), g.ldw()),
                    be.zeros(DType.BF16, 24, g.ldx()), be.zeros(DType.BF16, 24, g.ldy()), be.zeros(DType.F32, 24, 32),
                    be.zeros(DType.F32, 8, 32), be.zeros(DType.F32, 16, 8));
            List<String> k = fake.kernelsSince(from);
            assertTrue(k.contains(FusedKernelsTier.LORA_BWD) == (off % 16 == 0), "offset " + off + ": " + k);
        }
    }

    @Test
    void veraShrinkNeedsAnAlignedX() {
        for (long off : new long[] {6, 16}) {
            int from = fake.launches().size();
            be.veraForward(wrapped(off, 20, 16), be.zeros(DType.F32, 8, 32), be.zeros(DType.F32, 24, 8),
                    be.zeros(DType.F32, 8), be.zeros(DType.F32, 12), be.zeros(DType.F32, 20, 8),
                    be.zeros(DType.F32, 20, 8), be.zeros(DType.F32, 20, 12));
            List<String> k = fake.kernelsSince(from);
            assertTrue(k.contains(FusedKernelsTier.VERA_SHRINK) == (off % 16 == 0), "offset " + off + ": " + k);
        }
    }

    @Test
    void doraNormNeedsAnAlignedW() {
        for (long off : new long[] {2, 32}) {
            int from = fake.launches().size();
            be.doraWeightNorm(wrapped(off, 40, 32), false, be.zeros(DType.F32, 8, 32), be.zeros(DType.F32, 40, 8), 2f,
                    be.zeros(DType.F32, 40));
            List<String> k = fake.kernelsSince(from);
            assertTrue(k.contains(FusedKernelsTier.DORA_NORM) == (off % 16 == 0), "offset " + off + ": " + k);
        }
    }

    @Test
    void wrapRefusesAnAddressThatIsNotElementAligned() {
        ShapeException e = assertThrows(ShapeException.class, () -> wrapped(1, 8, 8));
        assertTrue(e.getMessage().contains("not a multiple of 2 bytes"), e.getMessage());
    }
}
