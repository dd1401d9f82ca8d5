package ai.lorakit.models.data;

import java.io.EOFException;
import java.io.IOException;
import java.io.InputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.zip.GZIPInputStream;

/**
 * Minimal reader for .tar.gz archives as {@code npm pack} writes them (ustar, with pax or GNU long-name headers
 * tolerated): extracts regular files, ignores links and other entry types, and refuses entries that would land
 * outside the destination.
 */
final class TarGz {

    private static final int BLOCK = 512;

    private TarGz() {
    }

    /** Extracts {@code archive} into {@code dest} (created if needed). */
    static void extract(Path archive, Path dest) throws IOException {
        Files.createDirectories(dest);
        Path root = dest.toAbsolutePath().normalize();
        try (InputStream in = new GZIPInputStream(Files.newInputStream(archive))) {
            String longName = null; // from a pax 'x' or GNU 'L' entry, applies to the next entry
            while (true) {
                byte[] h = in.readNBytes(BLOCK);
                if (h.length == 0 || isZero(h)) {
                    return;
                }
                if (h.length < BLOCK) {
                    throw new EOFException(archive + ": truncated tar header");
                }
                long size = octal(h, 124, 12, archive);
                char type = (char) h[156];
                String name = string(h, 0, 100);
                if (string(h, 257, 5).equals("ustar")) {
                    String prefix = string(h, 345, 155);
                    if (!prefix.isEmpty()) {
                        name = prefix + "/" + name;
                    }
                }
                byte[] data = readData(in, size, archive);
                switch (type) {
                    case 'x' -> longName = paxPath(data);
                    case 'L' -> longName = string(data, 0, data.length);
                    case '0', '\0' -> {
                        Path out = root.resolve(longName != null ? longName : name).normalize();
                        if (!out.startsWith(root) || out.equals(root)) {
                            throw new IOException(archive + ": entry '" + name + "' points outside the folder");
                        }
                        Files.createDirectories(out.getParent());
                        Files.write(out, data);
                        longName = null;
                    }
                    default -> longName = null; // directories (created on demand), links, global headers
                }
            }
        }
    }

    private static byte[] readData(InputStream in, long size, Path archive) throws IOException {
        if (size > Integer.MAX_VALUE - BLOCK) {
            throw new IOException(archive + ": tar entry too large (" + size + " bytes)");
        }
        byte[] data = in.readNBytes((int) size);
        long padding = (BLOCK - size % BLOCK) % BLOCK;
        if (data.length < size || in.readNBytes((int) padding).length < padding) {
            throw new EOFException(archive + ": truncated tar entry");
        }
        return data;
    }

    /** The "path" record of a pax extended header ("LEN path=VALUE\n" records), or null. */
    private static String paxPath(byte[] data) {
        String s = new String(data, StandardCharsets.UTF_8);
        for (String rec : s.split("\n")) {
            int sp = rec.indexOf(' ');
            if (sp > 0 && rec.startsWith("path=", sp + 1)) {
                return rec.substring(sp + 1 + "path=".length());
            }
        }
        return null;
    }

    private static long octal(byte[] h, int off, int len, Path archive) throws IOException {
        String s = string(h, off, len).trim();
        try {
            return s.isEmpty() ? 0 : Long.parseLong(s, 8);
        } catch (NumberFormatException e) {
            throw new IOException(archive + ": bad tar size field '" + s + "'", e);
        }
    }

    private static String string(byte[] b, int off, int len) {
        int end = off;
        while (end < off + len && end < b.length && b[end] != 0) {
            end++;
        }
        return new String(b, off, end - off, StandardCharsets.UTF_8);
    }

    private static boolean isZero(byte[] b) {
        for (byte x : b) {
            if (x != 0) {
                return false;
            }
        }
        return true;
    }
}
