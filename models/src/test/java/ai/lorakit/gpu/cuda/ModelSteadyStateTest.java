package ai.lorakit.gpu.cuda;

import ai.lorakit.cli.Method;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.models.gpt2.Gpt2Config;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.train.StepMetrics;
import ai.lorakit.models.train.TrainListener;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.EnumSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on java-bindings' in-memory CUDA driver (FakeDriver: kernels are recorded, not run), that a Trainer step of
 * a tiny GPT-2 allocates and frees no device memory once the first step has run, for every --method as {@code lorakit
 * train} configures it: the activations (Buffers), the token ids (written in place), the adapters' outputs and scratch,
 * the optimizer and the method's schedule (AdaLoRA's allocator, Delta-LoRA's W update, LoRA-drop's tied stage 2,
 * trained after the selection is applied) all reuse what step 1 made. Counted per step: cuMemAlloc* and cuMemFree* calls between the end of step 1 and the
 * end of step {@value #STEPS} - 1 (the last step runs the final validation and checkpoint, outside the training
 * step). The class sits in ai.lorakit.gpu.cuda to reach the package-private fake driver; it lives in models because it
 * needs DecoderModel and the Trainer.
 */
class ModelSteadyStateTest {
    /** Steps 2 .. 50 are the steady state checked. */
    static final int STEPS = 51;
    static final Gpt2Config CFG = Gpt2Config.of(257, 16, 32, 2, 2);

    @TempDir
    Path dir;

    /** The cuMemAlloc* / cuMemFree* count and the host transfers seen at the end of each step of each Trainer run. */
    private static final class Counter implements TrainListener {
        final FakeDriver driver;
        final List<List<long[]>> runs = new ArrayList<>();

        Counter(FakeDriver driver) {
            this.driver = driver;
        }

        @Override
        public void started(int fromStep, int totalSteps, long tokensPerStep, double elapsedS) {
            runs.add(new ArrayList<>());
        }

        @Override
        public void stepDone(StepMetrics m, boolean logged) {
            long mem = driver.calls.stream().filter(c -> c.startsWith("cuMemAlloc") || c.startsWith("cuMemFree"))
                    .count();
            long transfers = driver.calls.stream().filter(c -> c.startsWith("cuMemcpyHtoD")
                    || c.startsWith("cuMemcpyDtoH")).count();
            runs.getLast().add(new long[] {mem, transfers});
        }
    }

    @ParameterizedTest
    @EnumSource(Method.class)
    void noDeviceAllocationAfterTheFirstStep(Method method) throws IOException {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        Counter counter = new Counter(driver);
        try (CudaBackend be = fakeBackend(driver)) {
            FakeTraining.run(be, method, Precision.FP32, STEPS, 1, dir, counter, null);
        }
        List<long[]> steps = counter.runs.getLast();
        assertEquals(STEPS, steps.size(), method.cliName() + " steps recorded");
        long[] first = steps.getFirst();
        long[] last = steps.get(STEPS - 2);
        assertTrue(first[0] > 0, "step 1 allocates (the check can see allocations)");
        assertEquals(0, last[0] - first[0], method.cliName() + ": cuMemAlloc*/cuMemFree* calls in steps 2.." + (STEPS - 1)
                + " (per step " + (last[0] - first[0]) / (STEPS - 2.0) + "; host transfers per step "
                + (last[1] - first[1]) / (STEPS - 2.0) + ")");
    }

    /**
     * CudaBackend on the fake driver. Its kernels do not run, so the values the host reads back (the validation
     * loss sums, any dot product or non-finite count) are whatever the reused scratch holds: they are read (the
     * transfer is counted) and replaced by 0, so the Trainer's finiteness checks see a well-behaved run. A training
     * step's own results (Trainer's stats tensor) stay as the zeros they were made with: finite.
     */
    static CudaBackend fakeBackend(FakeDriver driver) {
        return new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true, true,
                false) {
            @Override
            public double sum(Tensor a) {
                super.sum(a);
                return 0;
            }

            @Override
            public double dot(Tensor a, Tensor b) {
                super.dot(a, b);
                return 0;
            }

            @Override
            public long countNonFinite(Tensor a) {
                super.countNonFinite(a);
                return 0;
            }
        };
    }
}
