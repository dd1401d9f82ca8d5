package ai.lorakit.gpu;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assertions.fail;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.io.IOException;
import java.io.InputStream;
import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

/**
 * Proves that the device binaries nvcc built are real and usable without a GPU: the fatbin resource is a fatbin
 * (magic 0xBA55ED50) holding the portable kernels by name, and liblorakit.so loads through FFM, reports the ABI
 * version {@link NativeAbi} expects, rejects null pointers and non-positive dimensions before touching CUDA
 * (naming the call and the argument), and reports "no device" (non-zero status, count 0) without crashing.
 * When nvcc is on the PATH the build must have produced both resources (a missing one fails); only without
 * nvcc are these tests skipped.
 */
class DeviceBinariesTest {

    private static final Linker LINKER = Linker.nativeLinker();

    private static Arena arena;
    private static Path libFile;
    private static MethodHandle abiVersion;
    private static MethodHandle lastError;
    private static MethodHandle deviceCount;
    private static MethodHandle shrink;
    private static MethodHandle expand;

    @BeforeAll
    static void loadLibrary() throws IOException {
        byte[] so = resource(NativeAbi.NATIVE_RESOURCE);
        libFile = Files.createTempFile("liblorakit", ".so");
        Files.write(libFile, so);
        arena = Arena.ofShared();
        SymbolLookup lib = SymbolLookup.libraryLookup(libFile, arena);
        abiVersion = downcall(lib, "lorakit_abi_version", FunctionDescriptor.of(JAVA_INT));
        lastError = downcall(lib, "lorakit_last_error", FunctionDescriptor.of(ADDRESS));
        deviceCount = downcall(lib, "lorakit_cuda_device_count", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // (x, A, u, N, in, r, stream) and (u, B, y, N, r, out, s, stream)
        shrink = downcall(lib, "lorakit_lora_shrink_f32", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, ADDRESS));
        expand = downcall(lib, "lorakit_lora_expand_f32", FunctionDescriptor.of(JAVA_INT,
                ADDRESS, ADDRESS, ADDRESS, JAVA_INT, JAVA_INT, JAVA_INT, JAVA_FLOAT, ADDRESS));
    }

    @AfterAll
    static void unloadLibrary() throws IOException {
        if (arena != null) {
            arena.close();
        }
        if (libFile != null) {
            Files.deleteIfExists(libFile);
        }
    }

    @Test
    void fatbinHasMagicAndKernelNames() {
        byte[] fatbin = resource(NativeAbi.FATBIN_RESOURCE);
        assertTrue(fatbin.length > 16, "fatbin too short: " + fatbin.length + " bytes");
        int magic = ByteBuffer.wrap(fatbin, 0, 4).order(ByteOrder.LITTLE_ENDIAN).getInt();
        assertEquals(NativeAbi.FATBIN_MAGIC, magic,
                () -> "fatbin magic: got 0x" + Integer.toHexString(magic) + ", want 0xba55ed50");
        for (String kernel : new String[] {"lora_shrink_fwd_kernel1", "lora_expand_fwd_kernel1"}) {
            assertTrue(contains(fatbin, kernel.getBytes(StandardCharsets.US_ASCII)),
                    () -> "kernel " + kernel + " not found in " + NativeAbi.FATBIN_RESOURCE);
        }
    }

    @Test
    void abiVersionMatchesJava() throws Throwable {
        assertEquals(NativeAbi.ABI_VERSION, (int) abiVersion.invokeExact(),
                "lorakit_abi_version() of liblorakit.so vs NativeAbi.ABI_VERSION: bump both sides together");
    }

    @Test
    void launchersRejectNullPointersNamingTheArgument() throws Throwable {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment p = local.allocate(JAVA_FLOAT, 64);
            MemorySegment n = MemorySegment.NULL;
            assertInvalid("lorakit_lora_shrink_f32", "x is NULL", (int) shrink.invokeExact(n, p, p, 4, 4, 4, n));
            assertInvalid("lorakit_lora_shrink_f32", "A is NULL", (int) shrink.invokeExact(p, n, p, 4, 4, 4, n));
            assertInvalid("lorakit_lora_shrink_f32", "u is NULL", (int) shrink.invokeExact(p, p, n, 4, 4, 4, n));
            assertInvalid("lorakit_lora_expand_f32", "u is NULL",
                    (int) expand.invokeExact(n, p, p, 4, 4, 4, 1.0f, n));
            assertInvalid("lorakit_lora_expand_f32", "B is NULL",
                    (int) expand.invokeExact(p, n, p, 4, 4, 4, 1.0f, n));
            assertInvalid("lorakit_lora_expand_f32", "y is NULL",
                    (int) expand.invokeExact(p, p, n, 4, 4, 4, 1.0f, n));
        }
    }

    @Test
    void launchersRejectNonPositiveAndHugeDimensions() throws Throwable {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment p = local.allocate(JAVA_FLOAT, 64);
            MemorySegment n = MemorySegment.NULL;
            assertInvalid("lorakit_lora_shrink_f32", "N = 0", (int) shrink.invokeExact(p, p, p, 0, 4, 4, n));
            assertInvalid("lorakit_lora_shrink_f32", "in = -3", (int) shrink.invokeExact(p, p, p, 4, -3, 4, n));
            assertInvalid("lorakit_lora_shrink_f32", "r = 0", (int) shrink.invokeExact(p, p, p, 4, 4, 0, n));
            assertInvalid("lorakit_lora_expand_f32", "N = -1",
                    (int) expand.invokeExact(p, p, p, -1, 4, 4, 1.0f, n));
            assertInvalid("lorakit_lora_expand_f32", "r = 0",
                    (int) expand.invokeExact(p, p, p, 4, 0, 4, 1.0f, n));
            assertInvalid("lorakit_lora_expand_f32", "out = 0",
                    (int) expand.invokeExact(p, p, p, 4, 4, 0, 1.0f, n));
            // 65535 column tiles of 16 is CUDA's grid-y limit
            assertInvalid("lorakit_lora_expand_f32", "out = 2000000 is too large",
                    (int) expand.invokeExact(p, p, p, 4, 4, 2_000_000, 1.0f, n));
        }
    }

    @Test
    void deviceCountReportsNoDeviceWithoutCrashing() throws Throwable {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment count = local.allocate(JAVA_INT);
            count.set(JAVA_INT, 0, 12345);
            int rc = (int) deviceCount.invokeExact(count);
            int n = count.get(JAVA_INT, 0);
            if (rc == 0) {
                // a machine with a driver and a GPU (the GPU check)
                assertTrue(n > 0, "cudaGetDeviceCount succeeded but reported " + n + " devices");
            } else {
                // here: rc 35 (no driver); 100 where a driver has no device
                assertEquals(0, n, "count must be 0 when cudaGetDeviceCount fails (rc " + rc + ")");
                String msg = lastError();
                assertTrue(msg.contains("lorakit_cuda_device_count") && msg.contains("cudaGetDeviceCount")
                        && msg.contains("(" + rc + ")"), "last error: " + msg);
            }
            assertInvalid("lorakit_cuda_device_count", "count is NULL",
                    (int) deviceCount.invokeExact(MemorySegment.NULL));
        }
    }

    @Test
    void launchWithoutDeviceFailsWithTheCudaError() throws Throwable {
        try (Arena local = Arena.ofConfined()) {
            MemorySegment count = local.allocate(JAVA_INT);
            int rc = (int) deviceCount.invokeExact(count);
            assumeTrue(rc != 0, "a CUDA device is present: launching on host pointers would fault it");
            MemorySegment p = local.allocate(JAVA_FLOAT, 64);
            int status = (int) shrink.invokeExact(p, p, p, 4, 4, 4, MemorySegment.NULL);
            assertEquals(NativeAbi.ERR_CUDA, status, "shrink without a device: " + lastError());
            String msg = lastError();
            assertTrue(msg.startsWith("lorakit_lora_shrink_f32: launch of lora_shrink_fwd_kernel1 failed: cuda"),
                    "last error: " + msg);
            status = (int) expand.invokeExact(p, p, p, 4, 4, 4, 0.5f, MemorySegment.NULL);
            assertEquals(NativeAbi.ERR_CUDA, status, "expand without a device: " + lastError());
            assertTrue(lastError().contains("lora_expand_fwd_kernel1"), "last error: " + lastError());
        }
    }

    private static void assertInvalid(String fn, String detail, int status) throws Throwable {
        String msg = lastError();
        assertEquals(NativeAbi.ERR_INVALID, status, () -> fn + " (" + detail + "): status, last error: " + msg);
        assertTrue(msg.startsWith(fn + ": ") && msg.contains(detail), () -> "last error of " + fn + ": " + msg);
    }

    private static String lastError() throws Throwable {
        MemorySegment s = (MemorySegment) lastError.invokeExact();
        assertNotEquals(MemorySegment.NULL, s, "lorakit_last_error() returned NULL");
        return s.reinterpret(Long.MAX_VALUE).getString(0);
    }

    private static MethodHandle downcall(SymbolLookup lib, String name, FunctionDescriptor fd) {
        MemorySegment symbol = lib.find(name)
                .orElseThrow(() -> new AssertionError(NativeAbi.NATIVE_RESOURCE + " does not export " + name));
        return LINKER.downcallHandle(symbol, fd);
    }

    /** The resource's bytes; fails when nvcc is on the PATH (the build must have made it), else skips. */
    private static byte[] resource(String name) {
        try (InputStream in = DeviceBinariesTest.class.getResourceAsStream(name)) {
            if (in != null) {
                return in.readAllBytes();
            }
        } catch (IOException e) {
            fail("reading " + name + ": " + e);
        }
        if (nvccOnPath()) {
            fail(name + " is missing from the classpath although nvcc is on the PATH: cuda-kernels/build.sh or "
                    + "native/build.sh did not produce it (or java-bindings was built with another lorakit.buildDir)");
        }
        assumeTrue(false, "nvcc is not on the PATH, so the build skipped " + name);
        throw new AssertionError("unreachable");
    }

    private static boolean nvccOnPath() {
        String path = System.getenv("PATH");
        return path != null && Arrays.stream(path.split(java.io.File.pathSeparator))
                .filter(d -> !d.isEmpty())
                .anyMatch(d -> Files.isExecutable(Path.of(d, "nvcc")));
    }

    private static boolean contains(byte[] haystack, byte[] needle) {
        outer:
        for (int i = 0; i + needle.length <= haystack.length; i++) {
            for (int j = 0; j < needle.length; j++) {
                if (haystack[i + j] != needle[j]) {
                    continue outer;
                }
            }
            return true;
        }
        return false;
    }
}
