package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import org.junit.jupiter.api.Named;

import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The backends every contract test runs on. Each entry is a factory (a test opens and closes its own
 * instances). To put another backend under contract, add one line here, e.g.
 * {@code Named.of("opencl", OpenClBackend::open)}; a backend that cannot load on this machine should be
 * left out of the stream (or its factory should abort the test through an assumption).
 *
 * <p>Use as {@code @MethodSource("ai.lorakit.gpu.contract.ContractBackends#all")}.
 */
public final class ContractBackends {
    private ContractBackends() {
    }

    public static Stream<Named<Supplier<Backend>>> all() {
        return Stream.of(
                Named.<Supplier<Backend>>of("cpu", () -> new CpuBackend(false)),
                Named.<Supplier<Backend>>of("cpu-naive", () -> new CpuBackend(true)));
    }
}
