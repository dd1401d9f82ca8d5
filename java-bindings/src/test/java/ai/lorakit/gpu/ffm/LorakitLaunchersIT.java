package ai.lorakit.gpu.ffm;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.Ref;
import ai.lorakit.gpu.cuda.CudaBackend;
import org.junit.jupiter.api.Test;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * GPU: proves liblorakit.so's C launchers run on the FFM device's primary context and stream, on tensors lorakit
 * allocated (shared allocations), matching the fp64 reference, and that the C launch loop (the per-launch overhead
 * baseline) runs and leaves correct results. Skipped without a GPU.
 */
class LorakitLaunchersIT {

    @Test
    void cLaunchersShareContextStreamAndMemory() {
        assumeTrue(FfmCudaDevice.unavailableReason() == null, () -> "cuda-ffm unavailable: " + FfmCudaDevice.unavailableReason());
        int n = 37, in = 70, r = 5, out = 29;
        try (CudaBackend be = CudaBackend.open(FfmCudaDevice.open(0), "cuda-ffm")) {
            FfmCudaDevice d = (FfmCudaDevice) be.cudaDevice();
            float[] xs = Ref.random(1, n * in);
            float[] as = Ref.random(2, r * in);
            float[] bs = Ref.random(3, out * r);
            Tensor x = be.upload(xs, n, in);
            Tensor a = be.upload(as, r, in);
            Tensor b = be.upload(bs, out, r);
            Tensor u = be.zeros(DType.F32, n, r);
            Tensor y = be.zeros(DType.F32, n, out);
            d.lorakit().loraShrinkF32(be.address("t", x), be.address("t", a), be.address("t", u), n, in, r, be.stream());
            d.lorakit().loraExpandF32(be.address("t", u), be.address("t", b), be.address("t", y), n, r, out, 0.5f,
                    be.stream());
            double[] uRef = Ref.matmul(xs, false, as, true, n, r, in);
            Ref.assertClose(Tolerance.F32, "C shrink", be.download(u), uRef);
            float[] uf = new float[uRef.length];
            for (int i = 0; i < uf.length; i++) {
                uf[i] = (float) uRef[i];
            }
            double[] yRef = Ref.matmul(uf, false, bs, true, n, out, r);
            for (int i = 0; i < yRef.length; i++) {
                yRef[i] *= 0.5;
            }
            Ref.assertClose(Tolerance.F32, "C expand", be.download(y), yRef);
            long ns = d.lorakit().benchLaunchShrinkF32(1000, be.address("t", x), be.address("t", a), be.address("t", u),
                    n, in, r, be.stream());
            assertTrue(ns > 0, "C launch loop took " + ns + " ns");
            Ref.assertClose(Tolerance.F32, "shrink after the C loop", be.download(u), uRef);
        }
    }
}
