package ai.lorakit.gpu.contract;

import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.ffm.FfmCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaDevice;
import ai.lorakit.gpu.opencl.OpenClBackend;
import org.junit.jupiter.api.Named;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The backends every contract test runs on. Each entry is a factory (a test opens and closes its own
 * instances). To put another backend under contract, add one line here. A device backend that cannot load on
 * this machine is left out of the stream, unless the system property {@value #REQUIRE_OPENCL} is true (CI,
 * where PoCL is installed): then its absence fails every test instead of passing silently.
 *
 * <p>Use as {@code @MethodSource("ai.lorakit.gpu.contract.ContractBackends#all")}.
 */
public final class ContractBackends {
    /** System property: fail instead of skipping when the OpenCL backend cannot open. */
    public static final String REQUIRE_OPENCL = "lorakit.test.requireOpenCl";
    /** System property: fail instead of skipping when a CUDA backend (cuda-ffm, cuda-jcuda) cannot open (GPU check). */
    public static final String REQUIRE_CUDA = "lorakit.test.requireCuda";

    private ContractBackends() {
    }

    public static Stream<Named<Supplier<Backend>>> all() {
        List<Named<Supplier<Backend>>> out = new ArrayList<>(List.of(
                Named.<Supplier<Backend>>of("cpu", () -> new CpuBackend(false)),
                Named.<Supplier<Backend>>of("cpu-naive", () -> new CpuBackend(true))));
        String reason = OpenClBackend.unavailableReason();
        if (reason == null || Boolean.getBoolean(REQUIRE_OPENCL)) {
            out.add(Named.<Supplier<Backend>>of("opencl", () -> {
                if (reason != null) {
                    throw new AssertionError(REQUIRE_OPENCL + " is set but OpenCL is unavailable: " + reason);
                }
                return OpenClBackend.open();
            }));
        }
        addCuda(out, "cuda-ffm", FfmCudaDevice::unavailableReason,
                () -> CudaBackend.open(FfmCudaDevice.open(0), "cuda-ffm"));
        addCuda(out, "cuda-jcuda", JCudaDevice::unavailableReason,
                () -> CudaBackend.open(JCudaDevice.open(0), "cuda-jcuda"));
        return out.stream();
    }

    /**
     * A CUDA backend joins the contract suite when its device opens here (the GPU check), or fails every test when
     * {@value #REQUIRE_CUDA} is true and it cannot (so a broken GPU machine does not pass silently).
     */
    private static void addCuda(List<Named<Supplier<Backend>>> out, String name, Supplier<String> reasonOf,
                                Supplier<Backend> open) {
        String reason;
        try {
            reason = reasonOf.get();
        } catch (RuntimeException | LinkageError e) {
            reason = e.toString();
        }
        String why = reason;
        if (why == null || Boolean.getBoolean(REQUIRE_CUDA)) {
            out.add(Named.<Supplier<Backend>>of(name, () -> {
                if (why != null) {
                    throw new AssertionError(REQUIRE_CUDA + " is set but " + name + " is unavailable: " + why);
                }
                return open.get();
            }));
        }
    }
}
