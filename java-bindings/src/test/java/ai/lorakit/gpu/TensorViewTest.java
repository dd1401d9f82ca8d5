package ai.lorakit.gpu;

import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves {@link Tensor#view}: a [B,T,H*D] tensor seen as [B*T*H, D] shares its storage both ways (an op on the
 * view, here rmsNorm per row of D, writes what the base then reads), a view of another element count is refused,
 * closing a view leaves the base usable, and closing the base makes its views unusable.
 */
class TensorViewTest {

    @Test
    void viewSharesStorageAndOwnsNothing() {
        try (Backend be = new CpuBackend()) {
            float[] x = {1, 2, 3, 4, -1, 0, 2, 2, 5, 5, 5, 5};      // [1,1,3*4]: 3 heads of D=4
            Tensor t = be.upload(x, 1, 1, 12);
            Tensor heads = t.view(3, 4);
            assertArrayEquals(new int[] {3, 4}, heads.shape());
            assertThrows(ShapeException.class, () -> t.view(5, 2));
            Tensor out = be.zeros(DType.F32, 1, 1, 12);
            Tensor rstd = be.zeros(DType.F32, 3);
            try (Tensor gamma = be.upload(new float[] {1, 1, 1, 1}, 4)) {
                be.rmsNormForward(heads, gamma, 0f, out.view(3, 4), rstd);
            }
            float[] got = be.download(out);                          // each head normalised on its own
            for (int h = 0; h < 3; h++) {
                double ms = 0;
                for (int i = 0; i < 4; i++) {
                    ms += x[h * 4 + i] * x[h * 4 + i] / 4.0;
                }
                for (int i = 0; i < 4; i++) {
                    assertTrue(Math.abs(got[h * 4 + i] - x[h * 4 + i] / Math.sqrt(ms)) < 1e-6, "head " + h);
                }
            }
            heads.close();
            assertFalse(t.isClosed(), "closing a view releases nothing");
            assertArrayEquals(x, be.download(t));
            Tensor v2 = t.view(12);
            t.close();
            assertTrue(v2.isClosed(), "a view dies with its base");
            assertThrows(GpuException.class, v2::handle);
        }
    }
}
