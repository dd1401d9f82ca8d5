package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.cuda.CudaDevice;
import ai.lorakit.gpu.cuda.CudaDriver;

import java.lang.reflect.Constructor;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.util.ArrayList;
import java.util.List;

/**
 * Reaches the package-private in-memory driver of ai.lorakit.gpu.cuda's tests (FakeDriver, shared with
 * CudaDeviceLogicTest / CudaBackendFakeTest) from this package by reflection, and reads its recorded launches.
 */
final class FakeCuda {
    /** One recorded launch: kernel name, grid, block, raw 8-byte parameter slots. */
    record Launch(String kernel, int[] grid, int[] block, long[] slots) {
        int slotInt(int i) {
            return (int) slots[i];
        }

        float slotFloat(int i) {
            return Float.intBitsToFloat((int) slots[i]);
        }
    }

    final CudaDriver driver;
    final CudaBackend backend;
    private final Field launches;
    private final Field calls;
    private final Field memory;

    /** A backend on a fresh fake driver, without cuBLAS, with the fast tier on or off. */
    FakeCuda(boolean fastTier) {
        try {
            Class<?> fd = Class.forName("ai.lorakit.gpu.cuda.FakeDriver");
            Constructor<?> c = fd.getDeclaredConstructor();
            c.setAccessible(true);
            driver = (CudaDriver) c.newInstance();
            Class<?> dev = Class.forName("ai.lorakit.gpu.cuda.FakeDriver$Device");
            Constructor<?> dc = dev.getDeclaredConstructor(fd, long.class);
            dc.setAccessible(true);
            CudaDevice device = (CudaDevice) dc.newInstance(driver, 0L);
            launches = fd.getDeclaredField("launches");
            launches.setAccessible(true);
            calls = fd.getDeclaredField("calls");
            calls.setAccessible(true);
            memory = fd.getDeclaredField("memory");
            memory.setAccessible(true);
            backend = new CudaBackend(device, "cuda-fake", true, fastTier, false);
        } catch (ReflectiveOperationException e) {
            throw new AssertionError("the fake CUDA driver of ai.lorakit.gpu.cuda's tests is not reachable", e);
        }
    }

    /** Every launch so far, in order. */
    List<Launch> launches() {
        try {
            List<Launch> out = new ArrayList<>();
            for (Object l : (List<?>) launches.get(driver)) {
                out.add(new Launch((String) call(l, "kernel"), (int[]) call(l, "grid"), (int[]) call(l, "block"),
                        (long[]) call(l, "slots")));
            }
            return out;
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** Every driver call so far by name ("cuMemAlloc", "cuLaunchKernel(name)", ...), in order. */
    @SuppressWarnings("unchecked")
    List<String> calls() {
        try {
            return List.copyOf((List<String>) calls.get(driver));
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** How many of the driver calls so far allocate or free device memory (cuMemAlloc*, cuMemFree*). */
    long allocsAndFrees() {
        return calls().stream().filter(c -> c.startsWith("cuMemAlloc") || c.startsWith("cuMemFree")).count();
    }

    /** Live fake device allocations. */
    int liveAllocations() {
        try {
            return ((java.util.Map<?, ?>) memory.get(driver)).size();
        } catch (ReflectiveOperationException e) {
            throw new AssertionError(e);
        }
    }

    /** Names of the launches after the first {@code from}. */
    List<String> kernelsSince(int from) {
        return launches().subList(from, launches().size()).stream().map(Launch::kernel).toList();
    }

    private static Object call(Object o, String name) throws ReflectiveOperationException {
        Method m = o.getClass().getDeclaredMethod(name);
        m.setAccessible(true);
        return m.invoke(o);
    }
}
