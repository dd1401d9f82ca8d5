package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Iterator;
import java.util.List;
import java.util.Map;
import java.util.OptionalInt;
import java.util.Set;
import java.util.function.UnaryOperator;

/**
 * A Hugging Face tokenizer read from {@code tokenizer.json} (plus {@code tokenizer_config.json} for the EOS
 * token): byte-level BPE (Llama 3, Qwen2/3, GPT-2) and SentencePiece-style BPE with byte fallback (Llama 2,
 * Mistral). Ids are checked equal to the JS reference ({@code @lenml/tokenizers}, a port of transformers.js) on
 * the Brown corpus and on adversarial text.
 *
 * <p>Encoding, as HF does it: (1) cut out the added tokens ({@link AddedTokens}: leftmost-longest, special ones
 * included, so {@code "<|eot_id|>"} typed in plain text is the special id); (2) for each stretch of ordinary text,
 * {@link Normalizers normalize}, {@link PreTokenizers pre-tokenize} into words, and run the {@link BpeModel}; (3)
 * with {@code addSpecialTokens}, wrap in the post-processor's template (Llama 2: BOS {@code <s>} first; Llama 3's
 * and Qwen's files add nothing: their post-processor is ByteLevel). {@link #encode(String)} is HF's
 * {@code add_special_tokens=False}. Decoding runs the {@link Decoders decoder} chain; decode(encode(s)) == s
 * holds for well-formed text when the normalizer is the identity (Llama 3) or leaves s unchanged (Qwen's NFC on
 * NFC text; Llama 2 on text without added-token strings, whose stretches each get a "▁" prepended, and without
 * a literal "▁", which decodes as a space).
 *
 * <p>Components outside that subset are refused at load time, naming the component (see
 * {@link Normalizers#SUPPORTED}, {@link PreTokenizers#SUPPORTED}, {@link BpeModel#SUPPORTED},
 * {@link PostProcessors#SUPPORTED}, {@link Decoders#SUPPORTED}).
 */
public final class HfTokenizer implements Tokenizer {

    private final AddedTokens added;
    private final UnaryOperator<String> normalizer;
    private final PreTokenizers.PreTokenizer preTokenizer;
    private final BpeModel model;
    private final int[] prefix;          // template ids before the text (--special)
    private final int[] suffix;          // template ids after the text
    private final Decoders.Decoder decoder;
    private final String[] idToToken;    // [V] token string of each id (null where no token has the id)
    private final int endOfTextId;       // -1: none

    private HfTokenizer(AddedTokens added, UnaryOperator<String> normalizer, PreTokenizers.PreTokenizer preTokenizer,
                        BpeModel model, int[] prefix, int[] suffix, Decoders.Decoder decoder, String[] idToToken,
                        int endOfTextId) {
        this.added = added;
        this.normalizer = normalizer;
        this.preTokenizer = preTokenizer;
        this.model = model;
        this.prefix = prefix;
        this.suffix = suffix;
        this.decoder = decoder;
        this.idToToken = idToToken;
        this.endOfTextId = endOfTextId;
    }

    /** Loads {@code dir/tokenizer.json} and, if present, {@code dir/tokenizer_config.json}. */
    public static HfTokenizer load(Path dir) throws IOException {
        if (!Files.isDirectory(dir)) {
            throw new NoSuchFileException(dir.toString(), null, "tokenizer folder not found");
        }
        Path config = dir.resolve("tokenizer_config.json");
        return load(dir.resolve("tokenizer.json"), Files.isRegularFile(config) ? config : null);
    }

    /** Loads {@code tokenizerJson}; {@code tokenizerConfig} (may be null) only supplies {@code eos_token}. */
    public static HfTokenizer load(Path tokenizerJson, Path tokenizerConfig) throws IOException {
        JsonNode root = readJson(tokenizerJson);
        String eos = tokenizerConfig == null ? null : eosToken(readJson(tokenizerConfig), tokenizerConfig);
        try {
            return build(root, eos);
        } catch (IllegalArgumentException e) {
            throw new TokenizerFormatException(tokenizerJson + ": " + e.getMessage(), e);
        }
    }

    private static JsonNode readJson(Path file) throws IOException {
        if (!Files.isRegularFile(file)) {
            throw new NoSuchFileException(file.toString(), null, "tokenizer file not found");
        }
        JsonNode root;
        try {
            root = new ObjectMapper().readTree(file.toFile());
        } catch (IOException e) {
            throw new TokenizerFormatException(file + ": not valid JSON: " + firstLine(e), e);
        }
        if (root == null || !root.isObject()) {
            throw new TokenizerFormatException(file + ": expected a JSON object");
        }
        return root;
    }

    private static String firstLine(IOException e) {
        String m = String.valueOf(e instanceof com.fasterxml.jackson.core.JsonProcessingException j
                ? j.getOriginalMessage() + " at line " + (j.getLocation() == null ? "?" : j.getLocation().getLineNr())
                : e.getMessage());
        return m.lines().findFirst().orElse(m);
    }

    /** tokenizer_config.json's eos_token: a string, an AddedToken object {content: ...}, or absent. */
    private static String eosToken(JsonNode config, Path file) throws TokenizerFormatException {
        JsonNode eos = config.get("eos_token");
        if (eos == null || eos.isNull()) {
            return null;
        }
        if (eos.isTextual()) {
            return eos.asText();
        }
        if (eos.isObject() && eos.path("content").isTextual()) {
            return eos.get("content").asText();
        }
        throw new TokenizerFormatException(file + ": eos_token must be a string or {\"content\": ...}, got " + eos);
    }

    private static HfTokenizer build(JsonNode root, String eosToken) {
        JsonNode modelNode = HfJson.object(root, "model", "tokenizer.json");
        String modelType = modelNode.has("type") ? HfJson.string(modelNode, "type", "model") : "(no type)";
        if (!modelType.equals("BPE")) {
            throw HfJson.unsupported("model", modelType, BpeModel.SUPPORTED);
        }
        Map<String, Integer> vocab = new HashMap<>();
        JsonNode vocabNode = HfJson.object(modelNode, "vocab", "model BPE");
        for (Iterator<Map.Entry<String, JsonNode>> it = vocabNode.fields(); it.hasNext(); ) {
            var e = it.next();
            if (!e.getValue().isIntegralNumber() || !e.getValue().canConvertToInt() || e.getValue().asInt() < 0) {
                throw new IllegalArgumentException("model BPE: token '" + e.getKey() + "' has id " + e.getValue()
                        + " (ids must be integers >= 0)");
            }
            vocab.put(e.getKey(), e.getValue().asInt());
        }
        List<AddedTokens.Token> addedTokens = new ArrayList<>();
        JsonNode addedNode = root.get("added_tokens");
        if (addedNode != null && !addedNode.isNull()) {
            for (JsonNode a : HfJson.array(root, "added_tokens", "tokenizer.json")) {
                String where = "added_tokens";
                if (HfJson.bool(a, "single_word", false, where)) {
                    throw HfJson.unsupported("added token option", "single_word: true (token '"
                            + HfJson.string(a, "content", where) + "')", "lstrip, rstrip");
                }
                AddedTokens.Token t = new AddedTokens.Token(HfJson.string(a, "content", where),
                        HfJson.integer(a, "id", where), HfJson.bool(a, "special", false, where),
                        HfJson.bool(a, "lstrip", false, where), HfJson.bool(a, "rstrip", false, where));
                if (t.id() < 0) {
                    throw new IllegalArgumentException(where + ": token '" + t.content() + "' has id " + t.id());
                }
                addedTokens.add(t);
                vocab.put(t.content(), t.id());
            }
        }
        int maxId = -1;
        for (int id : vocab.values()) {
            maxId = Math.max(maxId, id);
        }
        int distinct = new HashSet<>(vocab.values()).size();
        if (maxId >= 2L * distinct + 1024) {   // real vocabularies number their tokens 0..V-1
            throw new IllegalArgumentException("token ids must be dense: the largest is " + maxId + " but there are "
                    + distinct + " distinct ids");
        }
        String[] idToToken = new String[maxId + 1];
        vocab.forEach((token, id) -> idToToken[id] = token);
        for (AddedTokens.Token t : addedTokens) { // an added token owns its id
            idToToken[t.id()] = t.content();
        }
        BpeModel model = BpeModel.of(modelNode, vocab);
        PostProcessors.Template template = PostProcessors.of(root.get("post_processor"), vocab);
        Set<String> addedContents = new HashSet<>();
        addedTokens.forEach(t -> addedContents.add(t.content()));
        int eosId = -1;
        String eos = eosToken != null ? eosToken : vocab.containsKey(END_OF_TEXT) ? END_OF_TEXT : null;
        if (eos != null) {
            Integer id = vocab.get(eos);
            if (id == null) {
                throw new IllegalArgumentException("eos_token '" + eos + "' of tokenizer_config.json is not a token");
            }
            eosId = id;
        }
        return new HfTokenizer(new AddedTokens(addedTokens), Normalizers.of(root.get("normalizer")),
                PreTokenizers.of(root.get("pre_tokenizer")), model, template.prefix(), template.suffix(),
                Decoders.of(root.get("decoder"), addedContents), idToToken, eosId);
    }

    /** Ids of {@code text} without BOS/EOS (HF's {@code add_special_tokens=False}). */
    @Override
    public int[] encode(String text) {
        return encode(text, false);
    }

    /**
     * Ids of {@code text}; with {@code addSpecialTokens}, wrapped in the post-processor's template.
     *
     * @throws IllegalArgumentException a character has no token and the BPE model has neither byte_fallback nor an
     *                                  unk_token (the message names the character)
     */
    public int[] encode(String text, boolean addSpecialTokens) {
        IntList out = new IntList(text.length() / 3 + 4);
        if (addSpecialTokens) {
            out.addAll(prefix);
        }
        List<AddedTokens.Section> sections = added.split(text);
        List<String> words = new ArrayList<>();
        for (int i = 0; i < sections.size(); i++) {
            AddedTokens.Section s = sections.get(i);
            if (s.token() != null) {
                out.add(s.token().id());
                continue;
            }
            if (s.text().isEmpty()) {
                continue;
            }
            String normalized = normalizer.apply(s.text());
            if (normalized.isEmpty()) {
                continue;
            }
            words.clear();
            preTokenizer.split(normalized, i, words);
            model.encode(words, out);
        }
        if (addSpecialTokens) {
            out.addAll(suffix);
        }
        return out.toArray();
    }

    @Override
    public String decode(int[] ids) {
        List<String> tokens = new ArrayList<>(ids.length);
        for (int id : ids) {
            if (id < 0 || id >= idToToken.length || idToToken[id] == null) {
                throw new IllegalArgumentException("token id " + id + " is not in the vocabulary [0, "
                        + idToToken.length + ")");
            }
            tokens.add(idToToken[id]);
        }
        return String.join("", decoder.decode(tokens));
    }

    @Override
    public int vocabSize() {
        return idToToken.length;
    }

    /** The EOS token of tokenizer_config.json, else {@code <|endoftext|>} if it is a token. */
    @Override
    public OptionalInt endOfTextId() {
        return endOfTextId < 0 ? OptionalInt.empty() : OptionalInt.of(endOfTextId);
    }

    @Override
    public String toString() {
        return "HfTokenizer[vocab=" + vocabSize() + "]";
    }
}
