package ai.lorakit.cli;

import ai.lorakit.models.data.InstructionData;
import ai.lorakit.models.data.InstructionEncoder;
import ai.lorakit.models.data.InstructionExample;
import ai.lorakit.models.data.InstructionFormatException;
import ai.lorakit.models.data.InstructionWindows;
import ai.lorakit.models.tokenizer.Tokenizer;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.BufferedReader;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.InvalidPathException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

/**
 * {@code --data X.jsonl} as instruction data: a JSONL file whose first example line holds {@code "prompt"} /
 * {@code "completion"} or {@code "messages"} ({@link InstructionData}; a {@code {"text"}} JSONL stays plain text,
 * {@link DataSource}). The examples are encoded with the tokenizer folder's {@code tokenizer_config.json} (BOS/EOS
 * and the chat template, which {@code messages} need), split by example with the seed, and made one row each of T
 * tokens ({@link InstructionWindows}): the loss is taken on the completion / assistant tokens only.
 */
final class InstructionSource {

    /** The training and validation rows and what the cut to T did. */
    record Split(InstructionWindows train, InstructionWindows validation, int examples, int truncated, int dropped) {
    }

    private InstructionSource() {
    }

    /** True when {@code spec} is a file whose first non-blank line is a JSON object with prompt/completion/messages. */
    static boolean detect(String spec) throws IOException {
        Path p;
        try {
            p = Path.of(spec);
        } catch (InvalidPathException e) {
            return false;
        }
        if (!Files.isRegularFile(p)) {
            return false;
        }
        try (BufferedReader r = Files.newBufferedReader(p, StandardCharsets.UTF_8)) {
            for (String line = r.readLine(); line != null; line = r.readLine()) {
                if (!line.isBlank()) {
                    if (!line.stripLeading().startsWith("{")) {
                        return false;
                    }
                    JsonNode n;
                    try {
                        n = new ObjectMapper().readTree(line);
                    } catch (IOException e) {
                        return false;
                    }
                    return n.has("prompt") || n.has("completion") || n.has("messages");
                }
            }
        } catch (java.nio.charset.CharacterCodingException e) {
            return false;
        }
        return false;
    }

    /** The folder the --tokenizer spec takes its files from: the model folder (auto), DIR, or null (bytes). */
    static Path tokenizerDir(String tokenizerSpec, Path modelDir) {
        return switch (tokenizerSpec) {
            case "bytes" -> null;
            case "auto" -> modelDir;
            default -> Path.of(tokenizerSpec);
        };
    }

    /**
     * The training and validation rows: the examples shuffled with {@code seed}, the first
     * round(n·valFraction) (at least 1) held out.
     *
     * @param tokenizerDir the folder the tokenizer came from (its tokenizer_config.json is read when present), or
     *                     null (byte tokenizer: no BOS/EOS, no chat template)
     * @throws UsageException fewer than 2 examples, or a side of the split without a trained token in the window
     */
    static Split load(String spec, Tokenizer tok, Path tokenizerDir, int t, double valFraction, long seed)
            throws IOException {
        List<InstructionExample> all = examples(spec, tok, tokenizerDir);
        if (all.size() < 2) {
            throw new UsageException("--data " + spec + ": " + all.size() + " example; a train/validation split needs"
                    + " at least 2");
        }
        Collections.shuffle(all, new Random(seed));
        int nVal = Math.max(1, Math.min(all.size() - 1, (int) Math.round(all.size() * valFraction)));
        int pad = tok.endOfTextId().orElse(0);
        InstructionWindows val = InstructionWindows.of(all.subList(0, nVal), t, pad);
        InstructionWindows train = InstructionWindows.of(all.subList(nVal, all.size()), t, pad);
        nonEmpty(spec, train, "training", t);
        nonEmpty(spec, val, "validation", t);
        return new Split(train, val, all.size(), train.truncated() + val.truncated(), train.dropped() + val.dropped());
    }

    /** Every example as one row of T tokens (eval --split all). */
    static InstructionWindows all(String spec, Tokenizer tok, Path tokenizerDir, int t) throws IOException {
        InstructionWindows w = InstructionWindows.of(examples(spec, tok, tokenizerDir), t, tok.endOfTextId().orElse(0));
        return nonEmpty(spec, w, "", t);
    }

    private static List<InstructionExample> examples(String spec, Tokenizer tok, Path tokenizerDir)
            throws IOException {
        boolean config = tokenizerDir != null && Files.isRegularFile(tokenizerDir.resolve("tokenizer_config.json"));
        InstructionEncoder enc = config ? InstructionEncoder.forTokenizerDir(tok, tokenizerDir)
                : new InstructionEncoder(tok, null, null, null, List.of());
        try {
            return new ArrayList<>(InstructionData.read(Path.of(spec), enc));
        } catch (InstructionFormatException e) {
            throw config ? e : new UsageException(e.getMessage() + " (" + (tokenizerDir == null ? "the byte"
                    + " tokenizer has no tokenizer_config.json" : tokenizerDir + " has no tokenizer_config.json") + ")",
                    e);
        }
    }

    private static InstructionWindows nonEmpty(String spec, InstructionWindows w, String which, int t) {
        if (w.inputs().length == 0) {
            throw new UsageException("--data " + spec + ": the " + which + (which.isEmpty() ? "" : " ")
                    + "examples have no completion token within --seq-len " + t + " (prompts too long?); use a"
                    + " longer --seq-len or shorter prompts");
        }
        return w;
    }
}
