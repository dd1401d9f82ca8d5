package ai.lorakit.gpu.cuda;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.LoraConfig;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.Tensor;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

import java.util.List;
import java.util.Map;
import java.util.Random;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on java-bindings' in-memory CUDA driver (FakeDriver: kernels recorded, not run), that a DoRA layer's training
 * forward and backward move nothing between host and device: no cuMemcpyHtoD* / cuMemcpyDtoH* call from the first
 * forward to the end of the second backward, in both weight layouts (Linear [out,in] and GPT-2 Conv1D [in,out]), with
 * and without dropout, with the policy's dtypes (bf16 W, x, y, dy, dx; fp32 adapter). The launch log shows the path
 * taken: the fast tier's norm kernel of the layout, k = m / n as a device op (divide), and without dropout the fused
 * rescale kernels (dora_scale fwd/bwd) of the staged path. The
 * class sits in ai.lorakit.gpu.cuda to reach the package-private fake driver.
 */
class DoraNoHostTransferTest {
    static final int N = 16;
    static final int IN = 32;
    static final int OUT = 48;
    static final int R = 4;

    @ParameterizedTest(name = "fanInFanOut={0} dropout={1}")
    @CsvSource({"false, 0", "true, 0", "false, 0.25", "true, 0.25"})
    void forwardAndBackwardMakeNoHostTransfer(boolean fifo, float dropout) {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        try (CudaBackend be = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true,
                true, false)) {
            Random rnd = new Random(5);
            Tensor w = be.upload(uniform(rnd, OUT * IN), DType.BF16, fifo ? IN : OUT, fifo ? OUT : IN);
            Tensor bias = be.upload(uniform(rnd, OUT), DType.F32, OUT);
            LoraConfig cfg = new LoraConfig(R, 8f, dropout, false, LoraConfig.Init.KAIMING, true, List.of("c_attn"),
                    Map.of(), Map.of());
            try (AdaptedLinear layer = AdaptedLinear.create("h.0.attn.c_attn", w, bias, fifo, cfg, null, 7);
                 Tensor x = be.upload(uniform(rnd, N * IN), DType.BF16, N, IN);
                 Tensor dy = be.upload(uniform(rnd, N * OUT), DType.BF16, N, OUT);
                 Tensor y = be.zeros(DType.BF16, N, OUT);
                 Tensor dx = be.zeros(DType.BF16, N, IN)) {
                layer.setTraining(true);
                int calls = driver.calls.size();
                int launches = driver.launches.size();
                for (int step = 0; step < 2; step++) {
                    layer.forward(x, y);
                    layer.backward(dy, dx);
                }
                List<String> since = driver.calls.subList(calls, driver.calls.size());
                List<String> transfers = since.stream()
                        .filter(c -> c.startsWith("cuMemcpyHtoD") || c.startsWith("cuMemcpyDtoH")).toList();
                assertEquals(List.of(), transfers, "host transfers in two DoRA forward + backward passes");
                List<String> kernels = driver.launches.subList(launches, driver.launches.size()).stream()
                        .map(FakeDriver.Launch::kernel).toList();
                String norm = fifo ? "dora_norm_fifo_fwd_kernel1" : "dora_norm_fwd_kernel2";
                assertEquals(2, kernels.stream().filter(norm::equals).count(), norm + " once per forward: " + kernels);
                // without dropout the staged path: the rescale and its backward (dm's / n inside) are fused kernels;
                // with dropout the default composition also divides by n for dm in each backward
                boolean staged = dropout == 0f;
                assertEquals(staged ? 2 : 4, kernels.stream().filter("divide_fwd_kernel1"::equals).count(),
                        "k = m / n per forward (and dm's / n per unstaged backward): " + kernels);
                for (String k : new String[] {"dora_scale_fwd_kernel1", "dora_scale_bwd_x_kernel1"}) {
                    assertEquals(staged ? 2 : 0, kernels.stream().filter(k::equals).count(), k + ": " + kernels);
                }
                assertTrue(since.stream().anyMatch(c -> c.startsWith("cuLaunchKernel")), "the log sees launches");
            } finally {
                w.close();
                bias.close();
            }
        }
    }

    private static float[] uniform(Random rnd, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = rnd.nextFloat() * 2 - 1;
        }
        return v;
    }
}
