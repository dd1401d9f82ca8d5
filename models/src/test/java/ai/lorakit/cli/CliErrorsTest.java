package ai.lorakit.cli;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.models.train.TinyGpt2;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves every bad input of the CLI (unknown options, missing files, impossible settings, unavailable
 * methods) ends with exit code 2 and exactly one stderr line that names the problem, never a stack trace.
 */
class CliErrorsTest {

    @TempDir
    static Path tmp;
    static String model;
    static String data;

    @BeforeAll
    static void fixtures() throws IOException {
        try (CpuBackend be = new CpuBackend()) {
            model = TinyGpt2.save(be, tmp.resolve("model"), 1).toString();
        }
        data = TinyGpt2.jsonl(tmp.resolve("text.jsonl")).toString();
    }

    /** Runs a train command on the tiny model and data; {@code extra} options replace the defaults given here. */
    private static CliRun train(String... extra) {
        Map<String, String> opts = new LinkedHashMap<>(Map.of("--model", model, "--data", data, "--backend", "cpu",
                "--steps", "1", "--batch", "1", "--seq-len", "8", "--out", tmp.resolve("run-" + System.nanoTime()).toString()));
        List<String> flags = new ArrayList<>();
        for (int i = 0; i < extra.length; i++) {
            if (i + 1 < extra.length && !extra[i + 1].startsWith("--")) {
                opts.put(extra[i], extra[++i]);
            } else {
                flags.add(extra[i]);
            }
        }
        List<String> a = new ArrayList<>(List.of("train"));
        opts.forEach((k, v) -> {
            a.add(k);
            a.add(v);
        });
        a.addAll(flags);
        return CliRun.of(a.toArray(String[]::new));
    }

    private static void usageError(CliRun r, String... fragments) {
        assertEquals(2, r.code(), r.toString());
        assertEquals(1, r.err().lines().count(), "exactly one stderr line:\n" + r);
        assertFalse(r.err().contains("Exception") || r.err().contains("\tat "), "no stack trace:\n" + r);
        for (String f : fragments) {
            assertTrue(r.err().contains(f), "'" + f + "' missing in:\n" + r);
        }
    }

    @Test
    void unknownOptionsAndBadValues() {
        usageError(train("--bogus"), "Unknown option", "--bogus");
        usageError(train("--steps", "abc"), "--steps", "abc");
        usageError(train("--r", "0"), "--r must be > 0, got 0");
        usageError(train("--batch", "0"), "--batch must be > 0, got 0");
        usageError(train("--steps", "-3"), "--steps must be > 0");
        usageError(train("--alpha", "-1"), "--alpha must be finite and > 0");
        usageError(train("--dropout", "1.5"), "--dropout must be in [0, 1)");
        usageError(train("--lr", "0"), "--lr must be finite and > 0");
        usageError(train("--grad-accum", "0"), "--grad-accum must be > 0");
        usageError(train("--val-fraction", "1.2"), "--val-fraction must be in (0, 1)");
        usageError(train("--schedule", "step"), "--schedule", "cosine, linear, constant");
        usageError(train("--adalora-init-r", "4", "--adalora-target-r", "8"), "--adalora-target-r 8 must be <= --adalora-init-r 4");
    }

    @Test
    void impossibleSettings() {
        usageError(train("--seq-len", "100000"), "--seq-len 100000 exceeds the model's n_positions 64");
        usageError(train("--target", "q_proj"), "q_proj");
        usageError(train("--backend", "nosuch"), "--backend", "nosuch");
        usageError(train("--n-layer", "2"), "need --init random");
        usageError(train("--init", "sideways"), "--init must be pretrained or random");
        usageError(CliRun.of("train", "--init", "random", "--n-embd", "30", "--n-head", "4", "--data", data,
                "--out", tmp.resolve("r2").toString()), "--n-embd 30 must be divisible by --n-head 4");
        usageError(train("--tokenizer", tmp.resolve("nowhere").toString()), "--tokenizer", "nowhere");
    }

    @Test
    void methods() {
        usageError(train("--method", "qlora"), "unknown method 'qlora'", "lora-plus", "delta-lora", "lora-drop");
        usageError(train("--method", "delta-lora", "--dropout", "0.1"), "--method delta-lora refuses --dropout 0.1",
                "use --dropout 0");
        usageError(train("--method", "delta-lora", "--delta-start", "-1"), "--delta-start must be >= 0");
        usageError(train("--method", "delta-lora", "--delta-lambda", "-2"), "--delta-lambda must be finite and >= 0");
        usageError(train("--method", "adalora", "--steps", "10", "--adalora-tinit", "5", "--adalora-tfinal", "5"),
                "--adalora-tinit 5 must be < --steps - --adalora-tfinal = 5");
        usageError(train("--method", "adalora", "--adalora-delta-t", "0"), "--adalora-delta-t must be > 0");
        usageError(train("--method", "lora-drop", "--drop-grouping", "layer"), "--drop-grouping must be block or module");
        usageError(train("--method", "lora-drop", "--drop-stage2", "maybe"), "--drop-stage2 must be restart or continue");
        usageError(train("--method", "lora-drop", "--drop-sample-fraction", "0"), "--drop-sample-fraction must be in (0, 1]");
        usageError(train("--method", "lora-drop", "--drop-threshold", "1.5"), "--drop-threshold must be in (0, 1]");
        usageError(train("--method", "lora-drop", "--drop-stage1-steps", "0"), "--drop-stage1-steps must be > 0");
    }

    @Test
    void missingFiles() {
        usageError(train("--model", tmp.resolve("no-model").toString()), "--model: no such folder");
        usageError(train("--data", tmp.resolve("no-data.txt").toString()), "--data: no such file or folder");
        usageError(CliRun.of("eval", "--model", model, "--adapter", tmp.resolve("no-adapter").toString(), "--data", data),
                "no-adapter");
        usageError(CliRun.of("merge", "--model", model, "--out", tmp.resolve("m").toString()), "Missing required option", "--adapter");
        usageError(CliRun.of("export-peft", tmp.resolve("no-run").toString(), "--out", tmp.resolve("e").toString()),
                "no such run or checkpoint folder");
        usageError(CliRun.of("import-peft", tmp.resolve("no-adapter").toString(), "--model", model), "no-adapter");
        usageError(CliRun.of("train", "--model", model, "--out", tmp.resolve("never-ran").toString(), "--resume"),
                "--resume: no checkpoint in");
        usageError(CliRun.of("train", "--resume"), "--resume needs --out");
    }

    @Test
    void aFileWhereAFolderBelongs() throws IOException {
        Path f = Files.writeString(tmp.resolve("plain.txt"), "x");
        usageError(train("--model", f.toString()), "is a file");
    }
}
