package ai.lorakit.bench.gpu;

import ai.lorakit.gpu.BackendRegistry;
import ai.lorakit.gpu.blas.LibraryLocator;
import ai.lorakit.gpu.cuda.CudaProbe;
import ai.lorakit.gpu.ffm.LorakitNative;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * The Java half of ci/gpu-check.sh (GPU.md): one entry point per step that needs the JVM on the GPU machine.
 * <pre>
 *   GpuCheck probe                                   driver probe + each binding; exit 3 = "no CUDA device"
 *   GpuCheck fast-tier --binding B --out F           every fast-tier kernel vs its twin / the CPU reference
 *   GpuCheck micro     --binding B --out F [--n 16384 --d 4096 --r 16 --vera-r 256 --reps 20]
 *   GpuCheck launch    --binding B --out F [--burst 256 --bursts 40]
 *   GpuCheck gpt2      --binding B --out F [--batch 8 --seq 1024 --warmup 2 --steps 8]
 *   GpuCheck interop-logits --binding B --model DIR --adapter DIR --tokens 1,2,3 --out F
 *   GpuCheck train     --binding B --out F          a few training steps of every method, against cpu (TrainParity)
 * </pre>
 * B is {@code jcuda} or {@code ffm}. Each command writes one JSON object to F (with the device description and a
 * timestamp) and a short summary to stdout. Exit codes: 0 done (and every check passed), 1 a check failed or the
 * step threw, 2 usage, 3 no CUDA device (the dry run's expected answer).
 */
public final class GpuCheck {
    static final int NO_DEVICE = 3;
    /** The commands after {@code probe}; an unknown one is a usage error before any device is probed. */
    static final Set<String> COMMANDS = Set.of("fast-tier", "micro", "launch", "gpt2",
            "interop-logits", "train");

    private GpuCheck() {
    }

    public static void main(String[] args) {
        int rc;
        try {
            rc = run(args, System.out);
        } catch (IllegalArgumentException e) {
            System.err.println("GpuCheck: " + e.getMessage());
            rc = 2;
        } catch (Exception | Error e) {
            System.err.println("GpuCheck: failed: " + e);
            e.printStackTrace(System.err);
            rc = 1;
        }
        System.exit(rc);
    }

    static int run(String[] args, PrintStream out) throws IOException {
        if (args.length == 0) {
            throw new IllegalArgumentException("usage: GpuCheck probe | fast-tier | micro | launch | gpt2 | interop-logits | train"
                    + " [--binding jcuda|ffm] [--out FILE] ...");
        }
        String cmd = args[0];
        Map<String, String> opt = options(args);
        if (cmd.equals("probe")) {
            return probe(out);
        }
        if (!COMMANDS.contains(cmd)) {
            throw new IllegalArgumentException("unknown command '" + cmd + "' (probe, " + String.join(", ",
                    new TreeSet<>(COMMANDS)) + ")");
        }
        String binding = opt.getOrDefault("binding", "ffm");
        Path file = opt.containsKey("out") ? Path.of(opt.get("out")) : null;
        String reason = Harness.unavailableReason(binding);
        if (reason != null) {
            out.println("no CUDA device for " + binding + ": " + reason);
            write(file, Map.of("command", cmd, "binding", binding, "skipped", "no CUDA device: " + reason));
            return NO_DEVICE;
        }
        Map<String, Object> result = new LinkedHashMap<>();
        result.put("command", cmd);
        result.put("binding", binding);
        result.put("time", Instant.now().toString());
        int rc = 0;
        try (Harness h = Harness.open(binding)) {
            result.put("device", h.description());
            switch (cmd) {
                case "fast-tier" -> {
                    List<FastTierCheck.Case> cases = new FastTierCheck(h).run();
                    List<Map<String, Object>> js = new ArrayList<>();
                    int failed = 0;
                    for (FastTierCheck.Case c : cases) {
                        js.add(c.json());
                        out.printf("  %-4s %-32s %-44s%s%n", c.ok() ? "ok" : "FAIL", c.kernel(), c.shape(),
                                c.ok() ? "" : " " + c.detail().lines().findFirst().orElse(""));
                        failed += c.ok() ? 0 : 1;
                    }
                    result.put("cases", js);
                    result.put("failed", failed);
                    out.println("fast tier on " + binding + ": " + (cases.size() - failed) + "/" + cases.size() + " ok");
                    rc = failed == 0 ? 0 : 1;
                }
                case "micro" -> {
                    int n = intOpt(opt, "n", 16384);
                    int d = intOpt(opt, "d", 4096);
                    int r = intOpt(opt, "r", 16);
                    int rv = intOpt(opt, "vera-r", 256);
                    result.put("shape", Map.of("N", n, "d", d, "r", r, "vera_r", rv));
                    List<Map<String, Object>> rows = new LoraMicrobench(h, n, d, r, rv, intOpt(opt, "reps", 20)).run();
                    result.put("rows", rows);
                    for (Map<String, Object> row : rows) {
                        out.println("  " + row);
                    }
                }
                case "launch" -> {
                    Map<String, Object> lo = LaunchOverhead.run(h, intOpt(opt, "burst", 256), intOpt(opt, "bursts", 40));
                    result.putAll(lo);
                    out.println("  " + lo);
                }
                case "gpt2" -> {
                    Map<String, Object> g = Gpt2StepBench.run(h, intOpt(opt, "batch", 8), intOpt(opt, "seq", 1024),
                            intOpt(opt, "warmup", 2), intOpt(opt, "steps", 8));
                    result.putAll(g);
                    out.println("  " + g);
                }
                case "interop-logits" -> {
                    String[] tok = require(opt, "tokens").split(",");
                    int[] tokens = new int[tok.length];
                    for (int i = 0; i < tok.length; i++) {
                        tokens[i] = Integer.parseInt(tok[i].trim());
                    }
                    result.putAll(InteropLogits.run(h.be, Path.of(require(opt, "model")), Path.of(require(opt, "adapter")),
                            tokens));
                    out.println("  logits for " + tokens.length + " tokens written");
                }
                case "train" -> {
                    Path dir = Files.createTempDirectory("lorakit-train-parity");
                    List<Map<String, Object>> rows = TrainParity.run(h.be, dir);
                    result.put("methods", rows);
                    long bad = rows.stream().filter(r -> !Boolean.TRUE.equals(r.get("ok"))).count();
                    for (Map<String, Object> row : rows) {
                        out.printf("  %-4s %-10s %s%n", Boolean.TRUE.equals(row.get("ok")) ? "ok" : "FAIL",
                                row.get("method"), row.getOrDefault("detail", row.get("losses")));
                    }
                    out.println("training on " + binding + " vs cpu: " + (rows.size() - bad) + "/" + rows.size()
                            + " methods ok");
                    rc = bad == 0 ? 0 : 1;
                }
                default -> throw new IllegalArgumentException("unknown command '" + cmd + "'");
            }
        } catch (RuntimeException e) {
            result.put("error", e.toString());
            out.println(cmd + " on " + binding + " failed: " + e);
            rc = 1;
        }
        write(file, result);
        return rc;
    }

    /** Step 1's Java facts; exit 0 when some CUDA binding can open device 0, else 3 ("no CUDA device"). */
    static int probe(PrintStream out) {
        out.println("driver probe: " + Harness.probeSummary());
        int driver = CudaProbe.get().driverVersion();
        out.println("liblorakit.so: " + LorakitNative.describeLoad());
        out.println("cuBLAS: " + LibraryLocator.describe(LibraryLocator.CUBLAS, driver));
        out.println("NCCL: " + LibraryLocator.describe(LibraryLocator.NCCL, driver));
        boolean any = false;
        for (String b : new String[] {"jcuda", "ffm"}) {
            String reason = Harness.unavailableReason(b);
            out.println("binding " + b + ": " + (reason == null ? "available" : "unavailable: " + reason));
            any |= reason == null;
        }
        for (BackendRegistry.Status s : BackendRegistry.list()) {
            out.println("backend " + s);
        }
        if (!any) {
            out.println("no CUDA device");
            return NO_DEVICE;
        }
        return 0;
    }

    private static Map<String, String> options(String[] args) {
        Map<String, String> m = new HashMap<>();
        for (int i = 1; i < args.length; i++) {
            if (!args[i].startsWith("--") || i + 1 >= args.length) {
                throw new IllegalArgumentException("expected --name value, got '" + args[i] + "'");
            }
            m.put(args[i].substring(2), args[++i]);
        }
        return m;
    }

    private static String require(Map<String, String> opt, String name) {
        String v = opt.get(name);
        if (v == null) {
            throw new IllegalArgumentException("--" + name + " is required");
        }
        return v;
    }

    private static int intOpt(Map<String, String> opt, String name, int def) {
        String v = opt.get(name);
        try {
            return v == null ? def : Integer.parseInt(v);
        } catch (NumberFormatException e) {
            throw new IllegalArgumentException("--" + name + " must be an integer, got '" + v + "'");
        }
    }

    private static void write(Path file, Map<String, Object> result) throws IOException {
        if (file == null) {
            return;
        }
        if (file.getParent() != null) {
            Files.createDirectories(file.getParent());
        }
        new ObjectMapper().enable(SerializationFeature.INDENT_OUTPUT).writeValue(file.toFile(), result);
    }
}
