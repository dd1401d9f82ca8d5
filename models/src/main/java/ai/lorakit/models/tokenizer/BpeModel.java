package ai.lorakit.models.tokenizer;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.Arrays;
import java.util.HashMap;
import java.util.Map;
import java.util.concurrent.ConcurrentHashMap;

/**
 * The BPE {@code model} of tokenizer.json (Sennrich et al. 2016, as HF's tokenizers run it): each word starts as
 * its code points; the adjacent pair with the lowest merge rank is merged (the leftmost on ties), again and
 * again, until no adjacent pair has a rank. Byte-level vocabularies (Llama 3, Qwen, GPT-2) see words already
 * written as {@link ByteUnicode} symbols. SentencePiece-style ones (Llama 2, Mistral) see raw text: a symbol left
 * outside the vocabulary becomes its UTF-8 bytes as {@code <0xNN>} tokens ({@code byte_fallback}), or
 * {@code unk_token} if some byte token is missing or there is no fallback; {@code fuse_unk} merges runs of unk.
 * {@code ignore_merges} (Llama 3) takes a word that is itself in the vocabulary as one token without merging.
 *
 * <p>The merge loop is a heap of (rank, position) over a linked list of symbols: O(n log n) per word, which
 * matters for Llama 2, whose words are whole lines.
 */
final class BpeModel {

    static final String SUPPORTED = "BPE (no dropout, no continuing_subword_prefix or end_of_word_suffix)";

    /** Words up to this many chars are cached (the JS reference caches below 256 too). */
    private static final int MAX_CACHED_WORD = 256;
    private static final int MAX_CACHE = 1 << 17;

    private final Map<String, Integer> vocab;   // token -> id, added tokens included
    private final MergeTable merges;            // (left id, right id) -> (rank, merged id)
    private final int unkId;                    // -1: none
    private final int[] byteIds;                // [256] id of "<0xNN>", or null without byte_fallback
    private final boolean fuseUnk;
    private final boolean ignoreMerges;
    private final Map<Integer, Integer> codePointIds = new HashMap<>(); // single code point -> id, vocab only
    private final Map<String, int[]> cache = new ConcurrentHashMap<>();

    private BpeModel(Map<String, Integer> vocab, MergeTable merges, int unkId, int[] byteIds, boolean fuseUnk,
                     boolean ignoreMerges) {
        this.vocab = vocab;
        this.merges = merges;
        this.unkId = unkId;
        this.byteIds = byteIds;
        this.fuseUnk = fuseUnk;
        this.ignoreMerges = ignoreMerges;
        for (var e : vocab.entrySet()) {
            String t = e.getKey();
            if (!t.isEmpty() && t.codePointCount(0, t.length()) == 1) {
                codePointIds.put(t.codePointAt(0), e.getValue());
            }
        }
    }

    /**
     * Reads {@code model} of tokenizer.json; {@code vocab} already holds model.vocab plus the added tokens (their
     * ids win on a clash, as in HF).
     */
    static BpeModel of(JsonNode model, Map<String, Integer> vocab) {
        String where = "model BPE";
        JsonNode dropout = model.get("dropout");
        if (dropout != null && !dropout.isNull() && dropout.asDouble() != 0) {
            throw HfJson.unsupported("model BPE", "dropout " + dropout, SUPPORTED);
        }
        for (String affix : new String[]{"continuing_subword_prefix", "end_of_word_suffix"}) {
            String v = HfJson.optionalString(model, affix, where);
            if (v != null && !v.isEmpty()) {
                throw HfJson.unsupported("model BPE", affix + " '" + v + "'", SUPPORTED);
            }
        }
        String unk = HfJson.optionalString(model, "unk_token", where);
        int unkId = -1;
        if (unk != null) {
            Integer id = vocab.get(unk);
            if (id == null) {
                throw new IllegalArgumentException(where + ": unk_token '" + unk + "' is not in the vocabulary");
            }
            unkId = id;
        }
        int[] byteIds = null;
        if (HfJson.bool(model, "byte_fallback", false, where)) {
            byteIds = new int[256];
            for (int b = 0; b < 256; b++) {
                Integer id = vocab.get(byteToken(b));
                byteIds[b] = id == null ? -1 : id;
            }
        }
        MergeTable merges = readMerges(HfJson.array(model, "merges", where), vocab);
        return new BpeModel(vocab, merges, unkId, byteIds, HfJson.bool(model, "fuse_unk", false, where),
                HfJson.bool(model, "ignore_merges", false, where));
    }

    /** "&lt;0x0A&gt;": the byte-fallback token of byte {@code b}. */
    static String byteToken(int b) {
        return String.format("<0x%02X>", b);
    }

    /**
     * Merges as "left right" strings (tokenizers &lt; 0.20) or [left, right] pairs; rank = index in the list. A
     * pair listed twice keeps its last rank, as a map built in list order does in HF's Rust and the JS reference.
     */
    private static MergeTable readMerges(JsonNode list, Map<String, Integer> vocab) {
        MergeTable table = new MergeTable(list.size());
        for (int rank = list.size() - 1; rank >= 0; rank--) { // MergeTable keeps the first put: walk backwards
            JsonNode m = list.get(rank);
            String left;
            String right;
            if (m.isTextual()) {
                String s = m.asText();
                int space = s.indexOf(' ');
                if (space < 0 || s.indexOf(' ', space + 1) >= 0) {
                    throw new IllegalArgumentException("model BPE: merge " + rank + " '" + s + "' is not 'left right'");
                }
                left = s.substring(0, space);
                right = s.substring(space + 1);
            } else if (m.isArray() && m.size() == 2 && m.get(0).isTextual() && m.get(1).isTextual()) {
                left = m.get(0).asText();
                right = m.get(1).asText();
            } else {
                throw new IllegalArgumentException("model BPE: merge " + rank + " is neither 'left right' nor"
                        + " [left, right]: " + m);
            }
            Integer l = vocab.get(left);
            Integer r = vocab.get(right);
            Integer merged = vocab.get(left + right);
            if (l == null || r == null || merged == null) {
                throw new IllegalArgumentException("model BPE: merge " + rank + " ('" + left + "', '" + right
                        + "') uses or makes a token that the vocabulary lacks");
            }
            table.put(l, r, rank, merged);
        }
        return table;
    }

    /** Appends the ids of {@code words} (the pre-tokens of one section) to {@code out}. */
    void encode(Iterable<String> words, IntList out) {
        int sectionStart = out.size();
        for (String word : words) {
            if (word.isEmpty()) {
                continue;
            }
            Integer whole = ignoreMerges ? vocab.get(word) : null;
            if (whole != null) {
                out.add(whole);
            } else {
                out.addAll(bpe(word));
            }
        }
        if (fuseUnk && unkId >= 0) {
            out.fuseRuns(sectionStart, unkId);
        }
    }

    /** Ids of one word (class comment). */
    private int[] bpe(String word) {
        int[] cached = cache.get(word);
        if (cached != null) {
            return cached;
        }
        int[] cps = word.codePoints().toArray();
        int n = cps.length;
        int[] id = new int[n];      // [n] symbol id, -1: a code point outside the vocabulary
        int[] next = new int[n];    // [n] index of the next live symbol, -1 at the end
        int[] prev = new int[n];    // [n] index of the previous live symbol, -1 at the start
        boolean[] dead = new boolean[n];
        for (int i = 0; i < n; i++) {
            Integer v = codePointIds.get(cps[i]);
            id[i] = v == null ? -1 : v;
            next[i] = i + 1 < n ? i + 1 : -1;
            prev[i] = i - 1;
        }
        LongHeap heap = new LongHeap(n);
        for (int i = 0; i + 1 < n; i++) {
            push(heap, id, i, i + 1);
        }
        while (!heap.isEmpty()) {
            long key = heap.pop(); // rank << 32 | left position
            int left = (int) key;
            int right = next[left];
            if (dead[left] || right < 0) {
                continue;
            }
            long v = pairValue(id[left], id[right]);
            if (v == MergeTable.ABSENT || (v >>> 32) != (key >>> 32)) {
                continue; // stale: this position now holds another pair
            }
            id[left] = (int) v;
            dead[right] = true;
            next[left] = next[right];
            if (next[left] >= 0) {
                prev[next[left]] = left;
                push(heap, id, left, next[left]);
            }
            if (prev[left] >= 0) {
                push(heap, id, prev[left], left);
            }
        }
        IntList out = new IntList(n);
        for (int i = 0; i >= 0; i = next[i]) {
            if (id[i] >= 0) {
                out.add(id[i]);
            } else {
                unknown(cps[i], out);
            }
        }
        int[] ids = out.toArray();
        if (word.length() < MAX_CACHED_WORD && cache.size() < MAX_CACHE) {
            cache.put(word, ids);
        }
        return ids;
    }

    private long pairValue(int left, int right) {
        return left < 0 || right < 0 ? MergeTable.ABSENT : merges.get(left, right);
    }

    private void push(LongHeap heap, int[] id, int left, int right) {
        long v = pairValue(id[left], id[right]);
        if (v != MergeTable.ABSENT) {
            heap.push((v & 0xFFFFFFFF00000000L) | left);
        }
    }

    /** A code point without a token: its bytes as {@code <0xNN>} if all exist, else unk. */
    private void unknown(int codePoint, IntList out) {
        if (byteIds != null) {
            byte[] bytes = Utf8.encodeReplacing(new String(Character.toChars(codePoint)));
            boolean all = true;
            for (byte b : bytes) {
                all &= byteIds[b & 0xFF] >= 0;
            }
            if (all) {
                for (byte b : bytes) {
                    out.add(byteIds[b & 0xFF]);
                }
                return;
            }
        }
        if (unkId < 0) {
            throw new IllegalArgumentException("character U+" + Integer.toHexString(codePoint).toUpperCase()
                    + " has no token and the BPE model has neither byte_fallback nor unk_token");
        }
        out.add(unkId);
    }

    /** Min-heap of longs (keys rank << 32 | position). */
    private static final class LongHeap {
        private long[] a;
        private int n;

        LongHeap(int capacity) {
            a = new long[Math.max(4, capacity)];
        }

        boolean isEmpty() {
            return n == 0;
        }

        void push(long v) {
            if (n == a.length) {
                a = Arrays.copyOf(a, 2 * n);
            }
            int i = n++;
            while (i > 0) {
                int p = (i - 1) >>> 1;
                if (a[p] <= v) {
                    break;
                }
                a[i] = a[p];
                i = p;
            }
            a[i] = v;
        }

        long pop() {
            long top = a[0];
            long last = a[--n];
            int i = 0;
            while (true) {
                int c = 2 * i + 1;
                if (c >= n) {
                    break;
                }
                if (c + 1 < n && a[c + 1] < a[c]) {
                    c++;
                }
                if (last <= a[c]) {
                    break;
                }
                a[i] = a[c];
                i = c;
            }
            a[i] = last;
            return top;
        }
    }
}
