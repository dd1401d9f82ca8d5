package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.ffm.FfmCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaDevice;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Named;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;
import java.util.stream.Stream;

/**
 * The CUDA bindings the GPU tests (*IT) run on: cuda-ffm and cuda-jcuda, each only where its device opens. Without a
 * GPU the stream is empty and the tests are skipped, unless {@code -Dlorakit.test.requireCuda=true} (ci/gpu-check.sh)
 * makes an unavailable binding fail with its reason.
 */
public final class CudaBindings {
    public static final String REQUIRE_CUDA = "lorakit.test.requireCuda";

    private CudaBindings() {
    }

    /** Use as {@code @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#devices")}. */
    public static Stream<Named<Supplier<CudaDevice>>> devices() {
        List<Named<Supplier<CudaDevice>>> out = new ArrayList<>();
        add(out, "cuda-ffm", FfmCudaDevice::unavailableReason, () -> FfmCudaDevice.open(0));
        add(out, "cuda-jcuda", JCudaDevice::unavailableReason, () -> JCudaDevice.open(0));
        if (out.isEmpty()) {
            // JUnit reports an empty source as an error; one skipped case reads better in the log
            out.add(Named.of("no CUDA device", () -> {
                Assumptions.abort("no CUDA binding is available here: " + FfmCudaDevice.unavailableReason());
                return null;
            }));
        }
        return out.stream();
    }

    /** Use as {@code @MethodSource("ai.lorakit.gpu.cuda.CudaBindings#backends")}: a CudaBackend owning its device. */
    public static Stream<Named<Supplier<CudaBackend>>> backends() {
        return devices().map(n -> Named.of(n.getName(), () -> {
            CudaDevice d = n.getPayload().get();
            return CudaBackend.open(d, d.name().substring(0, d.name().indexOf(':')));
        }));
    }

    private static void add(List<Named<Supplier<CudaDevice>>> out, String name, Supplier<String> reasonOf,
                            Supplier<CudaDevice> open) {
        String reason;
        try {
            reason = reasonOf.get();
        } catch (RuntimeException | LinkageError e) {
            reason = e.toString();
        }
        String why = reason;
        if (why == null || Boolean.getBoolean(REQUIRE_CUDA)) {
            out.add(Named.of(name, () -> {
                if (why != null) {
                    throw new AssertionError(REQUIRE_CUDA + " is set but " + name + " is unavailable: " + why);
                }
                return open.get();
            }));
        }
    }
}
