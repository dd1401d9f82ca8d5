package ai.lorakit.cli;

import ai.lorakit.gpu.Tolerance;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;
import ai.lorakit.models.llama.LlamaFamily;
import ai.lorakit.models.llama.TinyLlama;
import ai.lorakit.models.train.MetricsLog;
import ai.lorakit.models.train.TinyGpt2;
import com.fasterxml.jackson.databind.JsonNode;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The Llama families train on OpenCL as on the CPU, through the CLI: every method (lora, lora-plus, lora-fa, dora,
 * vera, adalora, delta-lora, lora-drop, full) on each of a tiny Llama (GQA, llama3 RoPE), Mistral, Qwen2 (q/k/v
 * biases) and Qwen3 (q/k norm), 3 steps each on cpu and on opencl: the logged training and validation
 * losses agree within {@link Tolerance#F32} and training moved the loss. Runs where an OpenCL device opens
 * ({@code -Dlorakit.test.requireOpenCl=true} turns its absence into a failure).
 */
class LlamaOpenClCliTest {

    @TempDir
    static Path tmp;
    static String data;
    static String unavailable;

    @BeforeAll
    static void fixtures() throws IOException {
        unavailable = OpenClBackend.unavailableReason();
        if (Boolean.getBoolean("lorakit.test.requireOpenCl")) {
            assertEquals(null, unavailable, "OpenCL required but unavailable");
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    @Test
    void everyMethodAndFamilyTrainsOnOpenClLikeOnCpu() throws IOException {
        assumeTrue(unavailable == null, () -> "no OpenCL device: " + unavailable);
        List<Object[]> runs = new ArrayList<>();
        try (CpuBackend be = new CpuBackend()) {
            for (LlamaFamily f : new LlamaFamily[] {LlamaFamily.LLAMA, LlamaFamily.MISTRAL, LlamaFamily.QWEN2,
                LlamaFamily.QWEN3}) {
                Path model = TinyLlama.save(be, tmp.resolve(f.modelType()), f, 2, Long.MAX_VALUE);
                for (String m : new String[] {"lora", "lora-plus", "lora-fa", "dora", "vera", "adalora", "delta-lora",
                    "lora-drop", "full"}) {
                    runs.add(new Object[] {model, m});
                }
            }
        }
        for (Object[] r : runs) {
            Path model = (Path) r[0];
            String method = (String) r[1];
            String what = model.getFileName() + " " + method;
            List<JsonNode> mc = train(model, method, "cpu");
            List<JsonNode> mo = train(model, method, "opencl");
            assertEquals(mc.size(), mo.size(), what + ": metrics lines");
            for (String key : new String[] {"loss", "val_loss"}) {
                float[] rc = series(mc, key);
                float[] ro = series(mo, key);
                assertTrue(rc.length >= 2, what + ": " + key + " logged");
                Tolerance.Result res = Tolerance.F32.compare(what + " opencl vs cpu " + key, ro, rc);
                assertTrue(res.ok(), res.describe());
            }
            float[] loss = series(mo, "loss");
            assertNotEquals(loss[0], loss[loss.length - 1], what + ": training moved the loss");
        }
    }

    private static List<JsonNode> train(Path model, String method, String backend) throws IOException {
        Path out = tmp.resolve("run-" + model.getFileName() + "-" + method + "-" + backend);
        CliRun r = CliRun.of("train", "--model", model.toString(), "--data", data, "--method", method, "--steps", "3",
                "--batch", "2", "--seq-len", "16", "--eval-batches", "2", "--eval-every", "3", "--log-every", "1",
                "--lr", "1e-2", "--backend", backend, "--out", out.toString());
        assertEquals(0, r.code(), method + " on " + backend + ": " + r);
        return MetricsLog.read(out);
    }

    private static float[] series(List<JsonNode> lines, String key) {
        List<Float> v = new ArrayList<>();
        for (JsonNode l : lines) {
            if (l.has(key) && !l.get(key).isNull()) {
                v.add((float) l.get(key).asDouble());
            }
        }
        float[] out = new float[v.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = v.get(i);
        }
        return out;
    }
}
