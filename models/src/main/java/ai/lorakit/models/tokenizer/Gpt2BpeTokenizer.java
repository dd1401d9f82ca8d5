package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.core.type.TypeReference;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.concurrent.ConcurrentHashMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * GPT-2's byte-level BPE (Radford et al. 2019, §2.2), loaded from Hugging Face's {@code vocab.json} +
 * {@code merges.txt} (the same files as OpenAI's {@code encoder.json} + {@code vocab.bpe}).
 *
 * <p>Encoding: (1) split out the literal {@code <|endoftext|>}, which becomes its id (50256 for GPT-2);
 * (2) split the rest into pre-tokens with GPT-2's regex {@link #PRETOKEN}; (3) write each pre-token's UTF-8
 * bytes as {@link ByteUnicode} symbols, one id per byte; (4) repeatedly merge the adjacent pair with the lowest
 * rank in merges.txt (every occurrence of that pair, left to right) until no adjacent pair has a rank.
 * Results per pre-token are cached. Decoding maps ids to symbol strings, symbols to bytes, and bytes to text
 * with invalid UTF-8 replaced by U+FFFD.
 *
 * <p>{@code \s} in the regex is Unicode whitespace (the White_Space property, as in Python's {@code regex}
 * module that GPT-2's encoder uses). Unpaired surrogates in a Java string are encoded as '?' by UTF-8.
 */
public final class Gpt2BpeTokenizer implements Tokenizer {

    /** GPT-2's pre-tokenisation: contractions, letter runs, digit runs, other runs, each with one optional leading
     *  space; whitespace runs leave their last space to the next word. */
    static final Pattern PRETOKEN = Pattern.compile(
            "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
            Pattern.UNICODE_CHARACTER_CLASS);

    /** Pre-tokens cached at most; beyond this, new pre-tokens are merged each time (bounded memory). */
    private static final int MAX_CACHE = 1 << 18;

    private final String[] idToSymbol;      // [V] symbol string of each id (null for ids absent from vocab.json)
    private final int[] byteToId;           // [256] id of the single-byte symbol
    private final MergeTable merges;        // pair -> (rank, merged id)
    private final int endOfTextId;          // -1 if vocab.json has no <|endoftext|>
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private Gpt2BpeTokenizer(String[] idToSymbol, int[] byteToId, MergeTable merges, int endOfTextId) {
        this.idToSymbol = idToSymbol;
        this.byteToId = byteToId;
        this.merges = merges;
        this.endOfTextId = endOfTextId;
    }

    /** Loads {@code vocab.json} (symbol -> id) and {@code merges.txt} (one "left right" pair per line, by rank). */
    public static Gpt2BpeTokenizer load(Path vocabJson, Path mergesTxt) throws IOException {
        Map<String, Integer> vocab = readVocab(vocabJson);
        int maxId = -1;
        for (var e : vocab.entrySet()) {
            if (e.getValue() == null || e.getValue() < 0) {
                throw new IOException(vocabJson + ": token " + quote(e.getKey()) + " has id " + e.getValue()
                        + " (ids must be >= 0)");
            }
            maxId = Math.max(maxId, e.getValue());
        }
        String[] idToSymbol = new String[maxId + 1];
        for (var e : vocab.entrySet()) {
            if (idToSymbol[e.getValue()] != null) {
                throw new IOException(vocabJson + ": id " + e.getValue() + " is used by both "
                        + quote(idToSymbol[e.getValue()]) + " and " + quote(e.getKey()));
            }
            idToSymbol[e.getValue()] = e.getKey();
        }
        int[] byteToId = new int[256];
        for (int b = 0; b < 256; b++) {
            Integer id = vocab.get(String.valueOf(ByteUnicode.charOf(b)));
            if (id == null) {
                throw new IOException(vocabJson + ": no token for byte 0x" + Integer.toHexString(b) + " (symbol "
                        + quote(String.valueOf(ByteUnicode.charOf(b))) + "); not a byte-level BPE vocabulary");
            }
            byteToId[b] = id;
        }
        MergeTable merges = readMerges(mergesTxt, vocab);
        Integer eot = vocab.get(END_OF_TEXT);
        return new Gpt2BpeTokenizer(idToSymbol, byteToId, merges, eot == null ? -1 : eot);
    }

    /** Loads {@code vocab.json} + {@code merges.txt} from a folder (a Hugging Face checkpoint folder). */
    public static Gpt2BpeTokenizer loadDirectory(Path dir) throws IOException {
        return load(dir.resolve("vocab.json"), dir.resolve("merges.txt"));
    }

    @Override
    public int[] encode(String text) {
        if (endOfTextId < 0) {
            return encodeOrdinary(text);
        }
        IntList out = new IntList(text.length() / 3 + 4);
        int from = 0;
        for (int at = text.indexOf(END_OF_TEXT); at >= 0; at = text.indexOf(END_OF_TEXT, from)) {
            encodeOrdinary(text.substring(from, at), out);
            out.add(endOfTextId);
            from = at + END_OF_TEXT.length();
        }
        encodeOrdinary(text.substring(from), out);
        return out.toArray();
    }

    /** Encodes {@code text} with {@code <|endoftext|>} treated as plain text (as OpenAI's reference encoder does). */
    public int[] encodeOrdinary(String text) {
        IntList out = new IntList(text.length() / 3 + 4);
        encodeOrdinary(text, out);
        return out.toArray();
    }

    private void encodeOrdinary(String text, IntList out) {
        Matcher m = PRETOKEN.matcher(text);
        while (m.find()) {
            out.addAll(bpe(m.group()));
        }
    }

    /** Ids of one pre-token: its bytes merged by rank (step 4 of the class comment). */
    private int[] bpe(String pretoken) {
        int[] cached = cache.get(pretoken);
        if (cached != null) {
            return cached;
        }
        byte[] bytes = pretoken.getBytes(StandardCharsets.UTF_8);
        int[] word = new int[bytes.length]; // current symbols as ids; the first n are live
        for (int i = 0; i < bytes.length; i++) {
            word[i] = byteToId[bytes[i] & 0xFF];
        }
        int n = word.length;
        while (n > 1) {
            long best = Long.MAX_VALUE;
            int left = -1;
            int right = -1;
            for (int i = 0; i + 1 < n; i++) {
                long v = merges.get(word[i], word[i + 1]);
                if (v != MergeTable.ABSENT && v < best) { // rank sits in the high 32 bits: smaller v, smaller rank
                    best = v;
                    left = word[i];
                    right = word[i + 1];
                }
            }
            if (left < 0) {
                break;
            }
            int merged = (int) best;
            int w = 0;
            for (int i = 0; i < n; ) {
                if (i + 1 < n && word[i] == left && word[i + 1] == right) {
                    word[w++] = merged;
                    i += 2;
                } else {
                    word[w++] = word[i++];
                }
            }
            n = w;
        }
        int[] ids = Arrays.copyOf(word, n);
        if (cache.size() < MAX_CACHE) {
            cache.put(pretoken, ids);
        }
        return ids;
    }

    @Override
    public String decode(int[] ids) {
        ByteArrayOutputStream bytes = new ByteArrayOutputStream(ids.length * 4);
        for (int id : ids) {
            String s = symbol(id);
            for (int k = 0; k < s.length(); k++) {
                int b = ByteUnicode.byteOf(s.charAt(k));
                if (b >= 0) {
                    bytes.write(b);
                } else { // a symbol outside the byte map (hand-added token): its own UTF-8
                    bytes.writeBytes(String.valueOf(s.charAt(k)).getBytes(StandardCharsets.UTF_8));
                }
            }
        }
        return Utf8.decodeReplacing(bytes.toByteArray(), bytes.size());
    }

    private String symbol(int id) {
        if (id < 0 || id >= idToSymbol.length || idToSymbol[id] == null) {
            throw new IllegalArgumentException("token id " + id + " is not in the GPT-2 vocabulary [0, "
                    + idToSymbol.length + ")");
        }
        return idToSymbol[id];
    }

    @Override
    public int vocabSize() {
        return idToSymbol.length;
    }

    @Override
    public OptionalInt endOfTextId() {
        return endOfTextId < 0 ? OptionalInt.empty() : OptionalInt.of(endOfTextId);
    }

    @Override
    public String toString() {
        return "Gpt2BpeTokenizer[vocab=" + vocabSize() + "]";
    }

    private static Map<String, Integer> readVocab(Path vocabJson) throws IOException {
        if (!Files.isRegularFile(vocabJson)) {
            throw new NoSuchFileException(vocabJson.toString(), null, "GPT-2 vocabulary (vocab.json) not found");
        }
        try {
            return new ObjectMapper().readValue(vocabJson.toFile(),
                    new TypeReference<LinkedHashMap<String, Integer>>() {
                    });
        } catch (IOException e) {
            throw new IOException(vocabJson + ": not a JSON object of token -> id: " + e.getMessage(), e);
        }
    }

    private static MergeTable readMerges(Path mergesTxt, Map<String, Integer> vocab) throws IOException {
        if (!Files.isRegularFile(mergesTxt)) {
            throw new NoSuchFileException(mergesTxt.toString(), null, "GPT-2 merges (merges.txt) not found");
        }
        List<String> lines = Files.readAllLines(mergesTxt, StandardCharsets.UTF_8);
        MergeTable table = new MergeTable(lines.size());
        int rank = 0;
        for (int i = 0; i < lines.size(); i++) {
            String line = lines.get(i);
            if (line.isEmpty() || (i == 0 && line.startsWith("#version"))) {
                continue;
            }
            String[] parts = line.split(" ", -1);
            if (parts.length != 2 || parts[0].isEmpty() || parts[1].isEmpty()) {
                throw new IOException(mergesTxt + ":" + (i + 1) + ": expected 'left right', got " + quote(line));
            }
            Integer left = vocab.get(parts[0]);
            Integer right = vocab.get(parts[1]);
            Integer merged = vocab.get(parts[0] + parts[1]);
            if (left == null || right == null || merged == null) {
                throw new IOException(mergesTxt + ":" + (i + 1) + ": merge " + quote(line) + " uses or makes a symbol"
                        + " that vocab.json lacks");
            }
            if (table.put(left, right, rank, merged)) { // a repeated pair keeps its first rank
                rank++;
            }
        }
        return table;
    }

    private static String quote(String s) {
        return "'" + s + "'";
    }
}
