package ai.lorakit.adapters.reference;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.AfterEach;
import org.junit.jupiter.api.BeforeEach;

import java.util.ArrayList;
import java.util.List;

/**
 * The fixture the reference tests share: a fresh {@link CpuBackend} per test, and {@link #keep} for everything a
 * test opens (reference files, tensors, layers), closed in reverse order after the test, then the backend.
 */
abstract class ReferenceTestBase {

    protected Backend backend;
    private final List<AutoCloseable> open = new ArrayList<>();

    @BeforeEach
    void openBackend() {
        backend = new CpuBackend();
    }

    @AfterEach
    void closeAll() throws Exception {
        for (int i = open.size() - 1; i >= 0; i--) {
            open.get(i).close();
        }
        open.clear();
        backend.close();
    }

    /** Registers {@code t} to be closed after the test; returns it. */
    protected <T extends AutoCloseable> T keep(T t) {
        open.add(t);
        return t;
    }
}
