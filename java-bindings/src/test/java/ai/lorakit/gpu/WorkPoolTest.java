package ai.lorakit.gpu;

import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertNotSame;
import static org.junit.jupiter.api.Assertions.assertSame;

/**
 * Proves that a backend's work pool reuses a returned tensor for the next borrow of the same dtype and shape (so a
 * composition borrowing the same shape every step allocates once), hands out distinct tensors to concurrent
 * borrowers, keeps dtypes and shapes apart, and drops closed tensors; on the CpuBackend, which now pools like the
 * kernel backends.
 */
class WorkPoolTest {

    @Test
    void reusesReturnedTensorsByDtypeAndShape() {
        try (CpuBackend be = new CpuBackend(false)) {
            Tensor a = be.borrowWork(DType.BF16, 4, 8);
            Tensor b = be.borrowWork(DType.BF16, 4, 8);
            assertNotSame(a, b, "two borrowers at once get two tensors");
            be.returnWork(a);
            assertSame(a, be.borrowWork(DType.BF16, 4, 8), "a returned tensor is reused");
            be.returnWork(a);
            assertNotSame(a, be.borrowWork(DType.F32, 4, 8), "another dtype is another tensor");
            assertNotSame(a, be.borrowWork(DType.BF16, 8, 4), "another shape is another tensor");
            Tensor c = be.borrowWork(DType.BF16, 4, 8);
            assertSame(a, c);
            c.close();
            be.returnWork(c);
            assertNotSame(c, be.borrowWork(DType.BF16, 4, 8), "a closed tensor is not handed out again");
        }
    }
}
