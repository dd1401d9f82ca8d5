package ai.lorakit.gpu.cuda;

import ai.lorakit.adapters.AdaptedLinear;
import ai.lorakit.adapters.AdapterConfig;
import ai.lorakit.adapters.schedule.LoraDrop;
import ai.lorakit.adapters.schedule.LoraDropOptions;
import ai.lorakit.adapters.schedule.LoraDropSelection;
import ai.lorakit.cli.Method;
import ai.lorakit.models.data.TextDataset;
import ai.lorakit.models.decoder.DecoderModel;
import ai.lorakit.models.layers.Precision;
import ai.lorakit.models.tokenizer.ByteTokenizer;
import ai.lorakit.models.train.EnglishText;
import ai.lorakit.models.train.TrainConfig;
import ai.lorakit.models.train.TrainListener;
import ai.lorakit.models.train.Trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.Consumer;
import java.util.function.Function;

import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * The training run the fake-driver step tests share (ModelSteadyStateTest, StepTransferTest,
 * FastTierReachabilityTest): a tiny GPT-2 ({@link ModelSteadyStateTest#CFG}, seed 11) on a CUDA backend of the
 * in-memory driver, a --method attached as {@code lorakit train} configures it (targets c_attn, c_proj, c_fc;
 * LoRA-drop as its stage 2 after {@link #tieLikeStage2}), trained on EnglishText for
 * {@code steps} constant-LR steps of batch 2 x 16 tokens at the method's default LR.
 */
final class FakeTraining {

    private FakeTraining() {
    }

    /** The run's precision for a method under a policy: full fine-tuning trains fp32 weights under bf16. */
    static Precision precision(Method method, Precision policy) {
        return policy == Precision.BF16 && method == Method.FULL ? Precision.BF16.withFp32Weights() : policy;
    }

    /**
     * Trains; {@code runner} (null = the Trainer's own) gets the Trainer and returns its step runner
     * ({@link Trainer#setStepRunner}).
     */
    static void run(CudaBackend be, Method method, Precision policy, int steps, int gradAccum, Path dir,
                    TrainListener listener, Function<Trainer, Consumer<Runnable>> runner) throws IOException {
        try (DecoderModel model = DecoderModel.random(ModelSteadyStateTest.CFG, be, 11, precision(method, policy))) {
            Method.Settings s = Method.Settings.defaults(steps, 5L, List.of("c_attn", "c_proj", "c_fc"));
            AdapterConfig adapter = method.adapterConfig(s);
            if (adapter == null) {
                model.setFullFineTune(true);
            } else {
                model.attachAdapters(adapter, 7);
            }
            TextDataset.Split data = TextDataset.of("english", EnglishText.documents(), new ByteTokenizer())
                    .split(0.25, 3);
            TrainConfig cfg = new TrainConfig(steps, 2, 16, method.defaultLr(), 0, TrainConfig.Schedule.CONSTANT, 0f,
                    0.01f, 1f, gradAccum, 0, 1, 0, 5L, 1);
            LoraDrop drop = method == Method.LORA_DROP ? tieLikeStage2(model) : null;
            try (Trainer t = new Trainer(model, method.policy(s), cfg, data.train(), data.validation(), dir)) {
                t.setListener(listener);
                if (runner != null) {
                    t.setStepRunner(runner.apply(t));
                }
                t.run();
            } finally {
                if (drop != null) {
                    drop.close();
                }
            }
        }
    }

    /**
     * LoRA-drop's stage 2: the selection a stage 1 would make (on the fake driver the importance is meaningless,
     * so block 1 is the more important one), applied as LoraDropTraining applies it: block 0's modules share one
     * adapter per target.
     */
    static LoraDrop tieLikeStage2(DecoderModel model) {
        Map<String, Double> importance = new LinkedHashMap<>();
        for (AdaptedLinear m : model.adaptedModules()) {
            importance.put(m.name(), m.name().contains(".h.1.") ? 10.0 : 0.1);
        }
        LoraDropSelection selection = LoraDropSelection.select(importance, LoraDropOptions.defaults());
        assertTrue(!selection.droppedModules().isEmpty(), "the selection drops modules: " + selection);
        return LoraDrop.apply(selection, model.adaptedModules(), 5L);
    }
}
