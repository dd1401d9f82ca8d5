package ai.lorakit.adapters.io;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves that {@link SafetensorsFile#open} rejects every kind of malformed file listed in VARIANTS.md section 9
 * (and the safetensors Rust reader's checks) before returning, with a message naming the file, the tensor and
 * the problem.
 */
class SafetensorsMalformedTest {

    @TempDir
    Path dir;

    private Path file(byte[] bytes) throws IOException {
        Path p = dir.resolve("bad.safetensors");
        Files.write(p, bytes);
        return p;
    }

    /** 8-byte length + header (as given, unpadded) + dataLen zero bytes. */
    private static byte[] build(byte[] header, long declaredLength, int dataLen) {
        ByteBuffer b = ByteBuffer.allocate(8 + header.length + dataLen).order(ByteOrder.LITTLE_ENDIAN);
        b.putLong(declaredLength).put(header);
        return b.array();
    }

    private static byte[] build(String header, int dataLen) {
        byte[] h = header.getBytes(StandardCharsets.UTF_8);
        return build(h, h.length, dataLen);
    }

    private void assertRejected(byte[] bytes, String... fragments) throws IOException {
        Path p = file(bytes);
        SafetensorsException e = assertThrows(SafetensorsException.class, () -> SafetensorsFile.open(p).close());
        String m = e.getMessage();
        assertTrue(m.contains(p.toString()), "message names the file: " + m);
        for (String f : fragments) {
            assertTrue(m.contains(f), "message should contain <" + f + ">: " + m);
        }
    }

    private static String t(String name, String dtype, String shape, String offsets) {
        return "\"" + name + "\":{\"dtype\":\"" + dtype + "\",\"shape\":" + shape + ",\"data_offsets\":" + offsets + "}";
    }

    @Test
    void tooShortFiles() throws IOException {
        assertRejected(new byte[0], "0 bytes, shorter than the 8-byte header");
        assertRejected(new byte[7], "7 bytes, shorter than the 8-byte header");
    }

    @Test
    void headerTooLong() throws IOException {
        assertRejected(build(new byte[]{'{', '}'}, 100_000_001L, 0), "header too long", "100000001");
        assertRejected(build(new byte[]{'{', '}'}, 3, 0), "header too long", "8 + 3", "only 10 bytes");
        assertRejected(build(new byte[]{'{', '}'}, -1L, 0), "header too long", "18446744073709551615");
    }

    @Test
    void headerNotUtf8() throws IOException {
        byte[] h = {'{', '"', (byte) 0xc3, (byte) 0x28, '"', ':', '1', '}'};
        assertRejected(build(h, h.length, 0), "not valid UTF-8");
    }

    @Test
    void headerNotAJsonObject() throws IOException {
        assertRejected(build("hello   ", 0), "not valid JSON");
        assertRejected(build("[1,2]   ", 0), "not a JSON object");
        assertRejected(build("\"str\"   ", 0), "not a JSON object");
        assertRejected(build("{} {}   ", 0), "not valid JSON");
        assertRejected(build("        ", 0), "not a JSON object");
        assertRejected(build("{\"a\":   ", 0), "not valid JSON");
    }

    @Test
    void duplicateKeys() throws IOException {
        assertRejected(build("{" + t("a", "F32", "[1]", "[0,4]") + "," + t("a", "F32", "[1]", "[4,8]") + "}", 8),
                "duplicate key", "a");
        assertRejected(build("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0), "duplicate key", "k");
    }

    @Test
    void metadataMustBeStringToString() throws IOException {
        assertRejected(build("{\"__metadata__\":\"pt\"}", 0), "__metadata__ must be a JSON object");
        assertRejected(build("{\"__metadata__\":[\"a\"]}", 0), "__metadata__ must be a JSON object");
        assertRejected(build("{\"__metadata__\":{\"format\":3}}", 0), "__metadata__ must map strings to strings",
                "'format'");
        assertRejected(build("{\"__metadata__\":{\"format\":{\"x\":\"y\"}}}", 0), "'format'");
    }

    static Stream<Arguments> badEntries() {
        return Stream.of(
                Arguments.of("{\"w\":3}", 0, new String[]{"'w'", "entry must be a JSON object"}),
                Arguments.of("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, new String[]{"'w'", "missing 'dtype'"}),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, new String[]{"'w'", "missing 'shape'"}),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, new String[]{"'w'", "missing 'data_offsets'"}),
                Arguments.of("{\"w\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4,
                        new String[]{"'w'", "'dtype' must be a string"}),
                Arguments.of("{" + t("w", "F32", "\"1\"", "[0,4]") + "}", 4, new String[]{"'w'", "'shape' must be an array"}),
                Arguments.of("{" + t("w", "F32", "[1.5]", "[0,4]") + "}", 4, new String[]{"'w'", "'shape' must be an array"}),
                Arguments.of("{" + t("w", "F32", "[null]", "[0,4]") + "}", 4, new String[]{"'w'", "'shape' must be an array"}),
                Arguments.of("{" + t("w", "F32", "[99999999999999999999]", "[0,4]") + "}", 4,
                        new String[]{"'w'", "'shape' must be an array"}),
                Arguments.of("{" + t("w", "F32", "[1]", "[0]") + "}", 4, new String[]{"'w'", "'data_offsets' must be [begin, end]"}),
                Arguments.of("{" + t("w", "F32", "[1]", "[0,4,8]") + "}", 4, new String[]{"'w'", "'data_offsets' must be [begin, end]"}),
                Arguments.of("{" + t("w", "F32", "[1]", "[0,\"4\"]") + "}", 4, new String[]{"'w'", "'data_offsets' must be [begin, end]"}),
                Arguments.of("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"strides\":[1]}}", 4,
                        new String[]{"'w'", "unexpected key 'strides'"}),
                Arguments.of("{" + t("w", "F4", "[2]", "[0,1]") + "}", 1, new String[]{"'w'", "unknown dtype 'F4'"}),
                Arguments.of("{" + t("w", "f32", "[1]", "[0,4]") + "}", 4, new String[]{"'w'", "unknown dtype 'f32'"}),
                Arguments.of("{" + t("w", "F32", "[2,-1]", "[0,0]") + "}", 0, new String[]{"'w'", "negative dimension -1", "[2, -1]"}),
                Arguments.of("{" + t("w", "F32", "[1]", "[8,4]") + "}", 8, new String[]{"'w'", "0 <= begin <= end", "[8, 4]"}),
                Arguments.of("{" + t("w", "F32", "[1]", "[-4,0]") + "}", 0, new String[]{"'w'", "0 <= begin <= end"}),
                Arguments.of("{" + t("w", "F32", "[2,3]", "[0,20]") + "}", 20,
                        new String[]{"'w'", "shape/offset mismatch", "[2, 3]", "F32", "needs 24 bytes", "[0, 20]", "hold 20 bytes"}),
                Arguments.of("{" + t("w", "BF16", "[4611686018427387904,4]", "[0,0]") + "}", 0,
                        new String[]{"'w'", "more than 2^63 bytes"}));
    }

    @ParameterizedTest
    @MethodSource("badEntries")
    void badEntriesAreRejected(String header, int dataLen, String[] fragments) throws IOException {
        assertRejected(build(header, dataLen), fragments);
    }

    @Test
    void overlappingTensors() throws IOException {
        assertRejected(build("{" + t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[2]", "[4,12]") + "}", 12),
                "overlapping tensors", "'b' [4, 12)", "'a' [0, 8)");
        assertRejected(build("{" + t("a", "F32", "[2]", "[0,8]") + "," + t("b", "F32", "[2]", "[0,8]") + "}", 8),
                "overlapping tensors");
    }

    @Test
    void offsetsMustCoverTheBufferExactly() throws IOException {
        // gap between tensors
        assertRejected(build("{" + t("a", "F32", "[1]", "[0,4]") + "," + t("b", "F32", "[1]", "[8,12]") + "}", 12),
                "offsets do not cover the data buffer exactly", "'b'", "[4, 8)");
        // first tensor not at 0
        assertRejected(build("{" + t("a", "F32", "[1]", "[4,8]") + "}", 8),
                "offsets do not cover the data buffer exactly", "'a'", "[0, 4)");
        // buffer longer than the tensors
        assertRejected(build("{" + t("a", "F32", "[1]", "[0,4]") + "}", 5),
                "offsets do not cover the data buffer exactly", "end at 4", "has 5 bytes");
        // buffer shorter than the tensors (truncated file)
        assertRejected(build("{" + t("a", "F32", "[2]", "[0,8]") + "}", 6),
                "offsets do not cover the data buffer exactly", "'a'", "ends at 8", "only 6 bytes");
        // no tensors but trailing bytes
        assertRejected(build("{}", 3), "offsets do not cover the data buffer exactly");
    }

    @Test
    void truncatedWriterOutputIsRejected() throws IOException {
        Path good = dir.resolve("good.safetensors");
        Safetensors.write(good, java.util.Map.of("x", TensorData.f32(new float[]{1f, 2f, 3f}, 3)), null);
        byte[] all = Files.readAllBytes(good);
        assertRejected(java.util.Arrays.copyOf(all, all.length - 1), "offsets do not cover", "'x'");
        assertRejected(java.util.Arrays.copyOf(all, 20), "header too long");
    }

    @Test
    void zeroSizeTensorsMayShareAnOffset() throws IOException {
        Path p = file(build("{" + t("a", "F32", "[0]", "[0,0]") + "," + t("b", "F32", "[1]", "[0,4]") + ","
                + t("c", "U8", "[0,3]", "[4,4]") + "}", 4));
        try (SafetensorsFile sf = SafetensorsFile.open(p)) {
            assertTrue(sf.floats("a").length == 0 && sf.floats("c").length == 0 && sf.floats("b").length == 1);
        }
    }
}
