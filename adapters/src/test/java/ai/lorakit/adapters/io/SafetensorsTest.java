package ai.lorakit.adapters.io;

import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.Tolerance;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

/**
 * Proves the safetensors writer and reader agree with each other and with the format (VARIANTS.md section 9):
 * round trips of every dtype incl. 0-rank and zero-size tensors, the Rust writer's exact bytes (header padding,
 * layout order), exact bf16/f16 rounding, decoding of a file assembled by hand, and the writer's atomicity.
 */
class SafetensorsTest {

    @TempDir
    Path dir;

    private static byte[] randomBytes(Random rnd, int n) {
        byte[] b = new byte[n];
        rnd.nextBytes(b);
        return b;
    }

    @Test
    void roundTripEveryDtypeWithScalarsAndEmptyTensors() throws IOException {
        Random rnd = new Random(1);
        Map<String, TensorData> in = new LinkedHashMap<>();
        for (SafeDType t : SafeDType.values()) {
            in.put("m." + t + ".w", new TensorData(t, new long[]{2, 3}, randomBytes(rnd, 6 * t.bytes())));
            in.put("m." + t + ".scalar", new TensorData(t, new long[]{}, randomBytes(rnd, t.bytes())));
            in.put("m." + t + ".empty", new TensorData(t, new long[]{0, 4}, new byte[0]));
        }
        Map<String, String> meta = Map.of("format", "pt", "note", "ünïcode ✓");
        Path f = dir.resolve("all.safetensors");
        Safetensors.write(f, in, meta);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertEquals(meta, sf.metadata());
            assertEquals(in.keySet().stream().sorted().toList(), sf.names().stream().sorted().toList());
            for (Map.Entry<String, TensorData> e : in.entrySet()) {
                TensorInfo info = sf.info(e.getKey());
                assertEquals(e.getValue().dtype(), info.dtype(), e.getKey());
                assertArrayEquals(e.getValue().shape(), info.shape(), e.getKey());
                ByteBuffer b = sf.bytes(e.getKey());
                assertTrue(b.isReadOnly());
                assertEquals(ByteOrder.LITTLE_ENDIAN, b.order());
                byte[] got = new byte[b.remaining()];
                b.get(got);
                assertArrayEquals(e.getValue().data(), got, e.getKey());
                assertEquals(info.numel(), sf.floats(e.getKey()).length);
            }
            assertEquals(0, sf.floats("m.F32.empty").length);
            assertEquals(1, sf.floats("m.BF16.scalar").length);
            assertEquals(0, sf.info("m.I64.scalar").rank());
        }
    }

    @Test
    void emptyFileWithoutMetadataRoundTrips() throws IOException {
        Path f = dir.resolve("empty.safetensors");
        Safetensors.write(f, Map.of(), null);
        byte[] raw = Files.readAllBytes(f);
        assertEquals(16, raw.length);
        assertEquals("{}      ", new String(raw, 8, 8, StandardCharsets.UTF_8));
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertTrue(sf.names().isEmpty());
            assertTrue(sf.metadata().isEmpty());
        }
    }

    /** The writer's bytes equal those of huggingface/safetensors' Rust writer for the same input. */
    @Test
    void writerMatchesRustByteLayout() throws IOException {
        Map<String, TensorData> in = new LinkedHashMap<>();
        in.put("b", TensorData.f32(new float[]{1f, 2f}, 2));
        in.put("a", TensorData.bf16(new float[]{1f}, 1));
        in.put("c", TensorData.i64(new long[]{7}));
        in.put("aa", TensorData.f32(new float[]{3f}, 1, 1));
        Path f = dir.resolve("x.safetensors");
        Safetensors.write(f, in, Map.of("format", "pt"));
        // descending dtype order (I64 > F32 > BF16), then name: c, aa, b, a
        String json = "{\"__metadata__\":{\"format\":\"pt\"},"
                + "\"c\":{\"dtype\":\"I64\",\"shape\":[],\"data_offsets\":[0,8]},"
                + "\"aa\":{\"dtype\":\"F32\",\"shape\":[1,1],\"data_offsets\":[8,12]},"
                + "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[12,20]},"
                + "\"a\":{\"dtype\":\"BF16\",\"shape\":[1],\"data_offsets\":[20,22]}}";
        int n = (json.length() + 7) / 8 * 8;
        ByteBuffer want = ByteBuffer.allocate(8 + n + 22).order(ByteOrder.LITTLE_ENDIAN);
        want.putLong(n).put(json.getBytes(StandardCharsets.UTF_8));
        while (want.position() < 8 + n) {
            want.put((byte) ' ');
        }
        want.putLong(7).putFloat(3f).putFloat(1f).putFloat(2f).putShort((short) 0x3f80);
        assertArrayEquals(want.array(), Files.readAllBytes(f));
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertEquals(List.of("c", "aa", "b", "a"), sf.names());
            assertArrayEquals(new float[]{1f, 2f}, sf.floats("b"));
            assertArrayEquals(new long[]{7}, sf.longs("c"));
            assertArrayEquals(new int[]{7}, sf.ints("c"));
        }
    }

    @Test
    void headerLengthIsMultipleOfEightAndPaddedWithSpaces() throws IOException {
        for (int len = 1; len <= 9; len++) {
            Path f = dir.resolve("p" + len + ".safetensors");
            Safetensors.write(f, Map.of("x".repeat(len), TensorData.f32(new float[]{1f}, 1)), Map.of("format", "pt"));
            byte[] raw = Files.readAllBytes(f);
            long n = ByteBuffer.wrap(raw, 0, 8).order(ByteOrder.LITTLE_ENDIAN).getLong();
            assertEquals(0, n % 8, "N for name length " + len);
            assertEquals(8 + n + 4, raw.length);
            String header = new String(raw, 8, (int) n, StandardCharsets.UTF_8);
            String trimmed = header.stripTrailing();
            assertTrue(trimmed.endsWith("}"), header);
            assertTrue(n - trimmed.length() < 8, "at most 7 padding bytes: " + header);
            assertTrue(header.substring(trimmed.length()).chars().allMatch(c -> c == ' '), "padding is spaces");
            assertTrue(header.startsWith("{\"__metadata__\":"), "metadata first: " + header);
        }
    }

    @Test
    void layoutIsDescendingAlignmentThenName() throws IOException {
        Map<String, TensorData> in = new LinkedHashMap<>();
        String[] names = {"z", "m", "a"};
        SafeDType[] types = {SafeDType.U8, SafeDType.F16, SafeDType.F64, SafeDType.F32};
        Random rnd = new Random(2);
        for (SafeDType t : types) {
            for (String n : names) {
                in.put(n + t, new TensorData(t, new long[]{3}, randomBytes(rnd, 3 * t.bytes())));
            }
        }
        Path f = dir.resolve("order.safetensors");
        Safetensors.write(f, in, null);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            List<TensorInfo> byOffset = new ArrayList<>(sf.tensors().values());
            byOffset.sort((x, y) -> Long.compare(x.begin(), y.begin()));
            List<String> expected = Stream.of(SafeDType.F64, SafeDType.F32, SafeDType.F16, SafeDType.U8)
                    .flatMap(t -> Stream.of("a" + t, "m" + t, "z" + t)).toList();
            assertEquals(expected, byOffset.stream().map(TensorInfo::name).toList());
            assertEquals(sf.names(), expected, "header order is the layout order");
            long base = 8 + sf.headerLength();
            for (TensorInfo t : byOffset) {
                assertEquals(0, (base + t.begin()) % t.dtype().bytes(), "tensor " + t + " is aligned in the file");
            }
        }
    }

    @Test
    void bf16AndF16ValuesAreExactAfterRoundTrip() throws IOException {
        float[] v = new float[1000];
        Random rnd = new Random(3);
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (rnd.nextGaussian() * Math.pow(2, rnd.nextInt(20) - 10));
        }
        // ties for round-to-nearest-even: 1 + 2^-8 is halfway between bf16 1 and 1 + 2^-7 -> 1;
        // 1 + 3*2^-8 is halfway between 1 + 2^-7 and 1 + 2^-6 -> 1 + 2^-6 (even mantissa)
        v[0] = 1f + 0x1p-8f;
        v[1] = 1f + 3 * 0x1p-8f;
        v[2] = Float.NaN;
        v[3] = Float.NEGATIVE_INFINITY;
        v[4] = -0f;
        Path f = dir.resolve("half.safetensors");
        Safetensors.write(f, Map.of("bf", TensorData.bf16(v, 10, 100), "h", TensorData.f16(v, 1000)), null);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            float[] bf = sf.floats("bf");
            float[] h = sf.floats("h");
            for (int i = 0; i < v.length; i++) {
                assertEquals(Float.floatToIntBits(DType.BF16.round(v[i])), Float.floatToIntBits(bf[i]), "bf16[" + i + "]");
                assertEquals(Float.floatToIntBits(DType.F16.round(v[i])), Float.floatToIntBits(h[i]), "f16[" + i + "]");
            }
            assertEquals(1f, bf[0]);
            assertEquals(1f + 0x1p-6f, bf[1]);
            assertTrue(Float.isNaN(bf[2]) && Float.isNaN(h[2]));
            assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(bf[4]));
            Tolerance.Result r = Tolerance.BF16.compare("bf16 vs fp32", Arrays.copyOfRange(bf, 5, 1000),
                    Arrays.copyOfRange(v, 5, 1000));
            assertTrue(r.ok(), r.describe());
        }
    }

    @Test
    void f32F64AndIntegerFactoriesRoundTripExactly() throws IOException {
        float[] f = {0f, -1.5f, Float.MIN_VALUE, Float.MAX_VALUE, 3.1415927f, 1e-30f};
        double[] d = {1.0 / 3, -2.5};
        int[] i = {Integer.MIN_VALUE, -1, 0, Integer.MAX_VALUE};
        long[] l = {Long.MIN_VALUE, 1L << 40, -5};
        Path p = dir.resolve("f.safetensors");
        Safetensors.write(p, Map.of("f", TensorData.f32(f, 2, 3), "d", TensorData.f64(d, 2),
                "i", TensorData.i32(i, 2, 2), "l", TensorData.i64(l, 3)), Map.of());
        try (SafetensorsFile sf = SafetensorsFile.open(p)) {
            assertTrue(sf.metadata().isEmpty());
            assertArrayEquals(f, sf.floats("f"));
            assertArrayEquals(new float[]{(float) (1.0 / 3), -2.5f}, sf.floats("d"));
            assertArrayEquals(i, sf.ints("i"));
            assertArrayEquals(l, sf.longs("l"));
            assertEquals((float) (1L << 40), sf.floats("l")[1]);
            ArithmeticException e = assertThrows(ArithmeticException.class, () -> sf.ints("l"));
            assertTrue(e.getMessage().contains("'l'") && e.getMessage().contains("does not fit"), e.getMessage());
            IllegalArgumentException e2 = assertThrows(IllegalArgumentException.class, () -> sf.ints("f"));
            assertTrue(e2.getMessage().contains("F32") && e2.getMessage().contains("not an integer"), e2.getMessage());
            IllegalArgumentException e3 = assertThrows(IllegalArgumentException.class, () -> sf.info("nope"));
            assertTrue(e3.getMessage().contains("nope") && e3.getMessage().contains(p.toString()), e3.getMessage());
        }
    }

    /** A file assembled byte by byte here (not by the writer), with the header in non-canonical order. */
    @Test
    void readsHandBuiltFile() throws IOException {
        ByteBuffer data = ByteBuffer.allocate(64).order(ByteOrder.LITTLE_ENDIAN);
        data.putFloat(0.5f).putFloat(-2f).putFloat(8f);                     // w  F32 [3]      [0,12)
        data.putShort((short) 0x3f80).putShort((short) 0xc040);             // h  BF16 [2]     [12,16)
        data.putShort((short) 0x3c00).putShort((short) 0xc000);             // g  F16 [2]      [16,20)
        data.put((byte) 0x38).put((byte) 0x7e).put((byte) 0x01).put((byte) 0xb8); // e4 F8_E4M3 [4] [20,24)
        data.put((byte) 0x3c).put((byte) 0x7c).put((byte) 0x7b).put((byte) 0xc0); // e5 F8_E5M2 [2,2] [24,28)
        data.put((byte) 1).put((byte) 0xff).put((byte) 0xff).put((byte) 0x80);       // b BOOL [1]; u U8 [1]; i I8 [1]; z E8M0 [1] [28,32)
        data.putLong(-1L);                                                  // q  U64 []       [32,40)
        data.putDouble(0.25);                                               // d  F64 [1]      [40,48)
        data.putShort((short) -2).putShort((short) 0xffff);                 // s  I16 [1]; us U16 [1] [48,52)
        data.putInt(-7).putInt(0xffffffff);                                 // n  I32 [1]; un U32 [1] [52,60)
        data.put(new byte[4]);                                              // pad F32 [1] = 0 [60,64)
        String header = "{\"w\":{\"shape\":[3],\"data_offsets\":[0,12],\"dtype\":\"F32\"},"
                + "\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"},"
                + "\"h\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[12,16]},"
                + "\"g\":{\"dtype\":\"F16\",\"shape\":[2],\"data_offsets\":[16,20]},"
                + "\"e4\":{\"dtype\":\"F8_E4M3\",\"shape\":[4],\"data_offsets\":[20,24]},"
                + "\"e5\":{\"dtype\":\"F8_E5M2\",\"shape\":[2,2],\"data_offsets\":[24,28]},"
                + "\"b\":{\"dtype\":\"BOOL\",\"shape\":[1],\"data_offsets\":[28,29]},"
                + "\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[29,30]},"
                + "\"i\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[30,31]},"
                + "\"z\":{\"dtype\":\"F8_E8M0\",\"shape\":[1],\"data_offsets\":[31,32]},"
                + "\"q\":{\"dtype\":\"U64\",\"shape\":[],\"data_offsets\":[32,40]},"
                + "\"d\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[40,48]},"
                + "\"s\":{\"dtype\":\"I16\",\"shape\":[1],\"data_offsets\":[48,50]},"
                + "\"us\":{\"dtype\":\"U16\",\"shape\":[1],\"data_offsets\":[50,52]},"
                + "\"n\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[52,56]},"
                + "\"un\":{\"dtype\":\"U32\",\"shape\":[1],\"data_offsets\":[56,60]},"
                + "\"pad\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[60,64]}}";
        byte[] h = header.getBytes(StandardCharsets.UTF_8);   // deliberately not padded to 8
        ByteBuffer file = ByteBuffer.allocate(8 + h.length + 64).order(ByteOrder.LITTLE_ENDIAN);
        file.putLong(h.length).put(h).put(data.array());
        Path p = dir.resolve("hand.safetensors");
        Files.write(p, file.array());
        try (SafetensorsFile sf = SafetensorsFile.open(p)) {
            assertEquals(List.of("w", "h", "g", "e4", "e5", "b", "u", "i", "z", "q", "d", "s", "us", "n", "un", "pad"),
                    sf.names());
            assertEquals(Map.of("format", "pt", "k", "v"), sf.metadata());
            assertArrayEquals(new float[]{0.5f, -2f, 8f}, sf.floats("w"));
            assertEquals(new TensorInfo("w", SafeDType.F32, new long[]{3}, 0, 12), sf.info("w"));
            assertArrayEquals(new float[]{1f, -3f}, sf.floats("h"));
            assertArrayEquals(new float[]{1f, -2f}, sf.floats("g"));
            assertArrayEquals(new float[]{1f, 448f, 0x1p-9f, -1f}, sf.floats("e4"));
            assertArrayEquals(new float[]{1f, Float.POSITIVE_INFINITY, 57344f, -2f}, sf.floats("e5"));
            assertArrayEquals(new long[]{2, 2}, sf.info("e5").shape());
            assertArrayEquals(new int[]{1}, sf.ints("b"));
            assertArrayEquals(new int[]{255}, sf.ints("u"));
            assertArrayEquals(new int[]{-1}, sf.ints("i"));
            assertArrayEquals(new float[]{2f}, sf.floats("z"));
            assertArrayEquals(new float[]{0x1p64f}, sf.floats("q"));
            assertThrows(ArithmeticException.class, () -> sf.longs("q"));
            assertArrayEquals(new float[]{0.25f}, sf.floats("d"));
            assertArrayEquals(new int[]{-2}, sf.ints("s"));
            assertArrayEquals(new int[]{65535}, sf.ints("us"));
            assertArrayEquals(new int[]{-7}, sf.ints("n"));
            assertArrayEquals(new long[]{0xffffffffL}, sf.longs("un"));
            assertThrows(ArithmeticException.class, () -> sf.ints("un"));
            assertEquals(-2f, sf.bytes("w").getFloat(4));
            assertEquals(12, sf.bytes("w").remaining());
        }
    }

    @Test
    void fp8DecodingCoversSpecialCodes() {
        assertTrue(Float.isNaN(ElementCodec.e4m3ToFloat(0x7f)));
        assertTrue(Float.isNaN(ElementCodec.e4m3ToFloat(0xff)));
        assertEquals(-448f, ElementCodec.e4m3ToFloat(0xfe));
        assertEquals(0x1p-6f, ElementCodec.e4m3ToFloat(0x08));      // smallest normal
        assertEquals(7 * 0x1p-9f, ElementCodec.e4m3ToFloat(0x07));  // largest subnormal
        assertEquals(Float.floatToIntBits(-0f), Float.floatToIntBits(ElementCodec.e4m3ToFloat(0x80)));
        assertEquals(0x1p64f, ElementCodec.unsignedToFloat(-1L));
        assertEquals(0x1p63f, ElementCodec.unsignedToFloat(Long.MIN_VALUE));
    }

    @Test
    void writerRejectsBadInput() {
        Path f = dir.resolve("bad.safetensors");
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> Safetensors.write(f, Map.of("", TensorData.f32(new float[]{1f}, 1)), null));
        assertTrue(e.getMessage().contains("non-empty"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class,
                () -> Safetensors.write(f, Map.of("__metadata__", TensorData.f32(new float[]{1f}, 1)), null));
        assertTrue(e.getMessage().contains("reserved"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> TensorData.f32(new float[]{1f, 2f, 3f}, 2, 2));
        assertTrue(e.getMessage().contains("3 values for shape [2, 2]"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TensorData(SafeDType.BF16, new long[]{3}, new byte[4]));
        assertTrue(e.getMessage().contains("needs 6 bytes, got 4"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> new TensorData(SafeDType.U8, new long[]{-1}, new byte[0]));
        assertTrue(e.getMessage().contains("negative dimension"), e.getMessage());
        assertFalse(Files.exists(f));
    }

    @Test
    void failedWriteLeavesOldFileIntactAndNoTempFiles() throws IOException {
        Path f = dir.resolve("keep.safetensors");
        Safetensors.write(f, Map.of("a", TensorData.f32(new float[]{1f, 2f}, 2)), Map.of("format", "pt"));
        byte[] before = Files.readAllBytes(f);
        // rejected input: nothing is written
        assertThrows(IllegalArgumentException.class,
                () -> Safetensors.write(f, Map.of("", TensorData.f32(new float[]{9f}, 1)), null));
        // a failure while the body is being written (after the temp file exists)
        IOException boom = assertThrows(IOException.class, () -> AtomicFiles.write(f, ch -> {
            AtomicFiles.writeFully(ch, ByteBuffer.wrap(new byte[100]));
            throw new IOException("disk full (simulated)");
        }));
        assertEquals("disk full (simulated)", boom.getMessage());
        assertArrayEquals(before, Files.readAllBytes(f));
        // a failure of the final rename: the target is a non-empty directory
        Path d = dir.resolve("target.safetensors");
        Files.createDirectories(d.resolve("inside"));
        assertThrows(IOException.class, () -> Safetensors.write(d, Map.of("a", TensorData.f32(new float[]{1f}, 1)), null));
        assertTrue(Files.isDirectory(d.resolve("inside")));
        try (Stream<Path> s = Files.list(dir)) {
            List<String> names = s.map(p -> p.getFileName().toString()).sorted().toList();
            assertEquals(List.of("keep.safetensors", "target.safetensors"), names, "no temp files left behind");
        }
        // and a successful rewrite replaces the content
        Safetensors.write(f, Map.of("b", TensorData.f32(new float[]{3f}, 1)), null);
        try (SafetensorsFile sf = SafetensorsFile.open(f)) {
            assertEquals(List.of("b"), sf.names());
        }
    }

    @Test
    void closedFileRefusesAccess() throws IOException {
        Path f = dir.resolve("c.safetensors");
        Safetensors.write(f, Map.of("a", TensorData.f32(new float[]{1f}, 1)), null);
        SafetensorsFile sf = SafetensorsFile.open(f);
        ByteBuffer b = sf.bytes("a");
        sf.close();
        sf.close();
        assertThrows(IllegalStateException.class, () -> sf.floats("a"));
        assertThrows(IllegalStateException.class, () -> b.get(0));
    }
}
