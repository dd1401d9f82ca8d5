package ai.lorakit.gpu.cuda;

import ai.lorakit.cli.Method;
import ai.lorakit.gpu.KernelSources;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.train.TrainListener;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves, on the in-memory CUDA driver, that a Trainer step makes no host transfer (cuMemcpyHtoD / cuMemcpyDtoH)
 * between the upload of its batch ({@link TrainListener#stepUploaded}) and the read of its results ({@link
 * TrainListener#stepResultsRead}), for steps 2 .. {@value #STEPS} of every --method as {@code lorakit train}
 * configures it (FakeTraining's run with gradAccum 2), under the fp32 and the bf16 policy, and that the window holds
 * the step's kernels (so the check sees a real step), among them exactly one optimizer launch, the fused
 * multi-tensor AdamW (adamw_multi_fwd_kernel2). The loss sums and the gradient norm stay on the device, the
 * multi-tensor AdamW clips by the norm on the device, and the token-id range checks use the host's copy of the
 * ids. Then the whole step (between upload and read) is captured as one CUDA graph (a transfer during capture is
 * refused, CudaDeviceLogicTest). AdaLoRA's masking to the budget, which sorts on the host, runs between steps
 * (TrainingHook.afterStep).
 */
class StepTransferTest {
    static final int STEPS = 6;


    @TempDir
    Path dir;

    /** The transfers (with their call sites) inside each step's window, by step. */
    private static final class Window implements TrainListener {
        final FakeDriver driver;
        final List<List<String>> inside = new ArrayList<>();
        final List<Integer> launches = new ArrayList<>();
        final List<List<String>> optimizerKernels = new ArrayList<>();
        int openCalls;
        int openLaunches;
        int openSites;

        Window(FakeDriver driver) {
            this.driver = driver;
        }

        @Override
        public void stepUploaded(int step) {
            openCalls = driver.calls.size();
            openLaunches = driver.launches.size();
            openSites = driver.transferSites.size();
        }

        @Override
        public void stepResultsRead(int step) {
            long transfers = driver.calls.subList(openCalls, driver.calls.size()).stream()
                    .filter(c -> c.startsWith("cuMemcpyHtoD") || c.startsWith("cuMemcpyDtoH")).count();
            List<String> sites = new ArrayList<>(driver.transferSites.subList(openSites, driver.transferSites.size()));
            assertEquals(transfers, sites.size(), "every transfer has its call site");
            inside.add(sites);
            launches.add(driver.launches.size() - openLaunches);
            optimizerKernels.add(driver.launches.subList(openLaunches, driver.launches.size()).stream()
                    .map(FakeDriver.Launch::kernel).filter(k -> k.startsWith("adamw")).toList());
        }
    }

    /** Every method under both precision policies (fp32; bf16, the CUDA default, whose layers run staged kernels). */
    static Stream<Arguments> runs() {
        return Stream.of(Precision.FP32, Precision.BF16)
                .flatMap(p -> Arrays.stream(Method.values()).map(m -> Arguments.of(m, p)));
    }

    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("runs")
    void noHostTransferInsideAStep(Method method, Precision precision) throws IOException {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        Window window = new Window(driver);
        try (CudaBackend be = ModelSteadyStateTest.fakeBackend(driver)) {   // gradAccum 2: both micro-batches
            FakeTraining.run(be, method, precision, STEPS, 2, dir, window, null);   // are uploaded first
        }
        assertEquals(STEPS, window.inside.size(), method.cliName() + ": every step opened and closed its window");
        for (int step = 2; step <= STEPS; step++) {
            assertTrue(window.launches.get(step - 1) > 10, method.cliName() + " step " + step
                    + ": the window holds the step's kernels (" + window.launches.get(step - 1) + " launches)");
            assertEquals(List.of("adamw_multi_fwd_kernel2"), window.optimizerKernels.get(step - 1),
                    method.cliName() + " step " + step + ": the whole optimizer step is one multi-tensor AdamW launch");
            List<String> sites = window.inside.get(step - 1);
            assertEquals(List.of(), summary(sites), method.cliName() + " step " + step
                    + ": host transfers between the batch upload and the result read");
        }
    }

    /**
     * Steps 2 .. {@value #STEPS} run as captured CUDA graphs (Trainer.setStepRunner with CudaBackend.capture, then
     * one replay): the capture refuses any host transfer or synchronisation and any allocation left in the graph,
     * so a method whose step crosses fails here.
     * Step 1 runs eagerly (it makes the persistent buffers).
     */
    @ParameterizedTest(name = "{0} {1}")
    @MethodSource("runs")
    void aWholeStepIsCapturedAsOneGraph(Method method, Precision precision) throws IOException {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        int[] captured = {0};
        try (CudaBackend be = ModelSteadyStateTest.fakeBackend(driver)) {
            FakeTraining.run(be, method, precision, STEPS, 2, dir, new TrainListener() { }, t -> kernels -> {
                if (t.step() == 0) {
                    kernels.run();
                    return;
                }
                try (CudaGraph g = be.capture(kernels)) {
                    g.replay();
                    captured[0]++;
                }
            });
        }
        assertEquals(STEPS - 1, captured[0], method.cliName() + ": steps captured and replayed");
        assertEquals(STEPS - 1, driver.calls.stream().filter(c -> c.equals("cuGraphLaunch")).count(),
                method.cliName() + ": one graph launch per captured step");
    }

    /** "count site" lines, sorted. */
    private static List<String> summary(List<String> sites) {
        Map<String, Integer> h = new TreeMap<>();
        sites.forEach(x -> h.merge(x, 1, Integer::sum));
        List<String> out = new ArrayList<>();
        h.forEach((k, v) -> out.add(v + " " + k));
        return out;
    }
}
