package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.contract.Ref;
import ai.lorakit.gpu.cuda.CudaBackend;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

import java.util.function.Supplier;

import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * GPU: proves cuBLAS is found and bound on each binding (FFM over libcublas.so.13/.12, or JCublas2) and that lorakit's
 * row-major GEMM through it matches the fp64 reference: fp32 with every transpose, a strided batch, offsets, and bf16
 * inputs with fp32 accumulation into an fp32 output. Skipped without a GPU.
 */
class CublasIT {

    @ParameterizedTest(name = "{0}")
    @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#backends")
    void gemmThroughCublasMatchesTheReference(Supplier<CudaBackend> open) {
        try (CudaBackend be = open.get()) {
            assertNotNull(be.blas(), "no cuBLAS: " + be.description());
            assertTrue(be.description().contains("cuBLAS"), be.description());
            int m = 67, n = 45, k = 129;
            for (boolean ta : new boolean[] {false, true}) {
                for (boolean tb : new boolean[] {false, true}) {
                    float[] a = Ref.random(21, m * k);
                    float[] b = Ref.random(22, k * n);
                    try (Tensor at = be.upload(a, ta ? k : m, ta ? m : k);
                         Tensor bt = be.upload(b, tb ? n : k, tb ? k : n);
                         Tensor c = be.zeros(DType.F32, m, n)) {
                        be.matmul(at, ta, bt, tb, c, 1.25f, 0f);
                        double[] ref = Ref.matmul(a, ta, b, tb, m, n, k);
                        for (int i = 0; i < ref.length; i++) {
                            ref[i] *= 1.25;
                        }
                        Ref.assertClose(Tolerance.F32, "cuBLAS fp32 ta=" + ta + " tb=" + tb, be.download(c), ref);
                    }
                }
            }
            int batch = 3;
            float[] a = Ref.random(31, batch * m * k + 5);
            float[] b = Ref.random(32, batch * k * n);
            try (Tensor at = be.upload(a, a.length); Tensor bt = be.upload(b, b.length);
                 Tensor c = be.zeros(DType.F32, batch * m * n)) {
                be.gemmBatched(batch, false, false, m, n, k, 1f, at, 5, k, (long) m * k, bt, 0, n, (long) k * n,
                        0f, c, 0, n, (long) m * n);
                double[] ref = Ref.gemmBatched(batch, false, false, m, n, k, 1, a, 5, k, (long) m * k, b, 0, n,
                        (long) k * n, 0, new float[batch * m * n], 0, n, (long) m * n);
                Ref.assertClose(Tolerance.F32, "cuBLAS strided batch", be.download(c), ref);
            }
            float[] a16 = Ref.random(41, m * k);
            float[] b16 = Ref.random(42, n * k);
            try (Tensor at = be.upload(a16, DType.BF16, m, k); Tensor bt = be.upload(b16, DType.BF16, n, k);
                 Tensor c = be.zeros(DType.F32, m, n)) {
                be.matmul(at, false, bt, true, c, 1f, 0f);
                float[] ar = new float[a16.length];
                float[] br = new float[b16.length];
                for (int i = 0; i < ar.length; i++) {
                    ar[i] = DType.BF16.round(a16[i]);
                }
                for (int i = 0; i < br.length; i++) {
                    br[i] = DType.BF16.round(b16[i]);
                }
                Ref.assertClose(Tolerance.F32, "cuBLAS bf16 x bf16 -> fp32", be.download(c),
                        Ref.matmul(ar, false, br, true, m, n, k));
            }
        }
    }
}
