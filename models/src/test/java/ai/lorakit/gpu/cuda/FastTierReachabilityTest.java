package ai.lorakit.gpu.cuda;

import ai.lorakit.cli.Method;
import ai.lorakit.gpu.KernelSources;
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
import java.util.Set;
import java.util.TreeSet;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * Proves which hand-written kernels (cuda-kernels/cuda/*.cu) a bf16 training step of each --method reaches on the
 * CUDA backend, as {@code lorakit train --precision bf16} builds it, for GPT-2's Conv1D layout (W [in,out]): a tiny
 * GPT-2 (every width a multiple of 8, as the kernels require) trains {@value #STEPS} steps on the fake driver (kernels
 * recorded, not run) and the fast-tier kernels launched during step 3 (Delta-LoRA's first W update; the steady state
 * of the others) must be exactly the method's set. For the staged LoRA family it also checks that the portable
 * shrink/expand twins did not run; for every method, that steps 2..4 allocate no device memory (stages are made once). The
 * Linear layout is checked layer by layer in {@link FastTierLayerTest}.
 */
class FastTierReachabilityTest {
    static final int STEPS = 5;
    /** The step whose launches are checked (0-based): Delta-LoRA snapshots at step 1 and first updates W at step 2. */
    static final int CHECKED = 2;
    /**
     * The portable kernels (cuda-kernels/portable/*.kc); every other kernel launched is a fast-tier one
     * (cuda-kernels/cuda/*.cu), so a new fast kernel on the path shows up here without a list to update.
     */
    static final Set<String> PORTABLE = KernelSources.portable().kernelNames();

    /** Whether {@code kernel} is a hand-written fast-tier kernel rather than a portable one. */
    static boolean fast(String kernel) {
        return !PORTABLE.contains(kernel);
    }
    static final Set<String> LORA = Set.of("lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2",
            "lora_linear_bwd_x_kernel1", "adamw_multi_fwd_kernel2");

    @TempDir
    Path dir;

    /**
     * The fast-tier kernels one bf16 step runs, per method. vera, dora and adalora run LoRA's staged K-concat path too
     * (VeRA on A_l and λb ∘ B_l ∘ λd; DoRA's LoRA branch with dy = g ∘ k, plus the column-norm kernel of GPT-2's
     * [in,out] layout and the rescale's two kernels; AdaLoRA on A∘E), but AdaLoRA's default init_r = 12 is not a multiple of 8, so its backward
     * takes the portable composition of the same K-concat; AdaLoRA's sensitivity stays portable.
     */
    static Set<String> expected(Method m) {
        return switch (m) {
            case LORA, LORA_PLUS, LORA_FA, LORA_DROP, VERA -> LORA;
            case DELTA_LORA -> union(LORA, Set.of("delta_lora_update_fwd_kernel1"));
            case DORA -> union(LORA, Set.of("dora_norm_fifo_fwd_kernel1", "dora_scale_fwd_kernel1",
                    "dora_scale_bwd_x_kernel1"));
            case ADALORA -> Set.of("lora_margin_fwd_kernel1", "lora_shrink_fwd_kernel2", "adamw_multi_fwd_kernel2");
            case FULL -> Set.of("adamw_multi_fwd_kernel2");
        };
    }

    private static Set<String> union(Set<String> a, Set<String> b) {
        Set<String> u = new TreeSet<>(a);
        u.addAll(b);
        return u;
    }

    /** The kernel names launched during each step. */
    private static final class Steps implements TrainListener {
        final FakeDriver driver;
        final List<List<String>> steps = new ArrayList<>();
        /** cuMemAlloc* calls seen at the end of each step. */
        final List<Long> allocs = new ArrayList<>();
        int from;

        Steps(FakeDriver driver) {
            this.driver = driver;
        }

        @Override
        public void started(int fromStep, int totalSteps, long tokensPerStep, double elapsedS) {
            steps.clear();
            from = driver.launches.size();
        }

        @Override
        public void stepDone(StepMetrics m, boolean logged) {
            int to = driver.launches.size();
            steps.add(driver.launches.subList(from, to).stream().map(FakeDriver.Launch::kernel).toList());
            allocs.add(driver.calls.stream().filter(c -> c.startsWith("cuMemAlloc")).count());
            from = to;
        }
    }

    @ParameterizedTest
    @EnumSource(Method.class)
    void bf16StepReachesTheFastKernels(Method method) throws IOException {
        assumeTrue(KernelSources.fatbin().isPresent(), "the jar has no fatbin (built without nvcc)");
        FakeDriver driver = new FakeDriver();
        Steps steps = new Steps(driver);
        try (CudaBackend be = ModelSteadyStateTest.fakeBackend(driver)) {
            FakeTraining.run(be, method, Precision.BF16, STEPS, 1, dir, steps, null);
        }
        assertEquals(STEPS, steps.steps.size(), "steps recorded");
        List<String> step = steps.steps.get(CHECKED);
        Set<String> fast = new TreeSet<>(step);
        fast.removeIf(k -> !fast(k));
        assertEquals(new TreeSet<>(expected(method)), fast, method.cliName() + ": fast-tier kernels of a bf16 step");
        assertEquals(steps.allocs.get(0), steps.allocs.get(STEPS - 2), method.cliName()
                + ": cuMemAlloc* after step 1 (the bf16 stages are allocated once)");
        if (expected(method).contains("lora_margin_fwd_kernel1") || method == Method.VERA) {
            assertFalse(step.contains("lora_shrink_fwd_kernel1") || step.contains("lora_expand_fwd_kernel1"),
                    method.cliName() + ": the portable shrink/expand ran in a staged step: " + new TreeSet<>(step));
        }
    }
}
