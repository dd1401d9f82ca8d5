package ai.lorakit.gpu.cuda;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.List;
import java.util.Map;

/**
 * A {@link CudaBackend} (no fast tier, no cuBLAS) on the in-memory {@link FakeDriver}, for tests outside this package
 * (the test-jar; e.g. models' NCCL gradient reducer): the driver calls so far, and device memory read and written
 * the way a stub collective would, without a driver call. Needs the fatbin ({@link #available}).
 */
public final class FakeCuda implements AutoCloseable {
    private final FakeDriver driver = new FakeDriver();
    private final CudaBackend backend;

    public FakeCuda() {
        backend = new CudaBackend(new FakeDriver.Device(driver, 0), "cuda-fake", true, false, false);
    }

    /** Whether the build has the fatbin a CudaBackend loads (nvcc built it). */
    public static boolean available() {
        return ai.lorakit.gpu.KernelSources.fatbin().isPresent();
    }

    public CudaBackend backend() {
        return backend;
    }

    /** Every driver call so far by name ("cuMemcpyHtoD", "cuMemcpyDtoDAsync", ...), live. */
    public List<String> calls() {
        return driver.calls;
    }

    /** {@code count} floats of device memory at {@code address} (no driver call). */
    public float[] read(long address, int count) {
        float[] out = new float[count];
        at(address, 4L * count).asFloatBuffer().get(out);
        return out;
    }

    /** Device memory at {@code address} = {@code v} (no driver call). */
    public void write(long address, float[] v) {
        at(address, 4L * v.length).asFloatBuffer().put(v);
    }

    private ByteBuffer at(long address, long bytes) {
        for (Map.Entry<Long, byte[]> e : driver.memory.entrySet()) {
            long base = e.getKey();
            if (address >= base && address + bytes <= base + e.getValue().length) {
                return ByteBuffer.wrap(e.getValue()).order(ByteOrder.LITTLE_ENDIAN).position((int) (address - base))
                        .slice().order(ByteOrder.LITTLE_ENDIAN);
            }
        }
        throw new AssertionError("fake device: no allocation holds [0x" + Long.toHexString(address) + ", +" + bytes
                + ")");
    }

    @Override
    public void close() {
        backend.close();
    }
}
