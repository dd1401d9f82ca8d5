package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.cpu.CpuBackend;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.ByteArrayOutputStream;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves, without a GPU, that the correctness pass's training check can pass and can fail: every method trains on
 * the cpu backend against itself with a moving loss (so the GPU run compares something real), a run whose loss
 * drifts beyond the bf16 tolerance or whose weights did not move is reported, and GpuCheck rejects an unknown
 * command before probing any device (a typo must not read as "no CUDA device").
 */
class TrainParityTest {

    @Test
    void everyMethodTrainsAndMatchesOnTheSameBackend(@TempDir Path dir) throws Exception {
        try (CpuBackend cpu = new CpuBackend()) {
            List<Map<String, Object>> rows = TrainParity.run(cpu, dir);
            assertEquals(List.of("lora", "lora-plus", "lora-fa", "dora", "vera", "adalora", "full"),
                    rows.stream().map(r -> r.get("method")).toList());
            for (Map<String, Object> r : rows) {
                assertEquals(Boolean.TRUE, r.get("ok"), r.toString());
                @SuppressWarnings("unchecked")
                List<Double> l = (List<Double>) r.get("losses");
                assertEquals(TrainParity.STEPS, l.size(), r.toString());
            }
        }
    }

    @Test
    void aLossBeyondTheToleranceOrStillWeightsFail() {
        ObjectMapper om = new ObjectMapper();
        List<JsonNode> ref = new ArrayList<>();
        List<JsonNode> drift = new ArrayList<>();
        for (int s = 0; s < 3; s++) {
            ObjectNode a = om.createObjectNode().put("loss", 5.0 - s);
            ref.add(a);
            drift.add(a.deepCopy().put("loss", s == 2 ? 3.2 : 5.0 - s));   // 3.0 vs 3.2: beyond 1e-2 + 1e-2 * 3
        }
        Map<String, float[]> before = Map.of("000:w", new float[] {1f, 2f});
        Map<String, float[]> after = Map.of("000:w", new float[] {1.5f, 2f});
        TrainParity.Run r = new TrainParity.Run(ref, before, after);
        assertNull(TrainParity.compare("m", r, new TrainParity.Run(ref, before, after)));
        String why = TrainParity.compare("m", r, new TrainParity.Run(drift, before, after));
        assertNotNull(why);
        assertTrue(why.contains("m loss"), why);
        TrainParity.Run still = new TrainParity.Run(ref, before, before);
        assertTrue(String.valueOf(TrainParity.compare("m", still, still)).contains("changed no trainable parameter"));
    }

    @Test
    void anUnknownCommandIsAUsageErrorBeforeAnyProbe() {
        PrintStream out = new PrintStream(new ByteArrayOutputStream(), true, StandardCharsets.UTF_8);
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> GpuCheck.run(new String[] {"trian", "--binding", "ffm"}, out));
        assertTrue(e.getMessage().contains("unknown command 'trian'"), e.getMessage());
    }
}
