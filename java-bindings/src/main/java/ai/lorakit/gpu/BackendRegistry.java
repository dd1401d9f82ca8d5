package ai.lorakit.gpu;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.ffm.FfmCudaDevice;
import ai.lorakit.gpu.jcuda.JCudaDevice;
import ai.lorakit.gpu.opencl.OpenClBackend;
import ai.lorakit.gpu.opencl.OpenClDevice;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Every backend lorakit knows, in {@code auto} preference order (cuda-ffm, cuda-jcuda, opencl, cpu), with its
 * status and, when it cannot be used, the exact reason. Probing never throws and never crashes: a missing
 * driver or runtime is a reason, not an error. {@code lorakit info} prints {@link #list()}.
 *
 * <p>{@code opencl} is available when an OpenCL runtime lists a usable device (the system property
 * {@code lorakit.opencl.device} picks one; default: prefer a GPU, else a CPU such as PoCL). {@code auto} passes
 * over an OpenCL device that is not a GPU (PoCL on the host CPU): the pure-Java cpu backend is faster there;
 * {@code --backend opencl} still opens it.
 */
public final class BackendRegistry {

    /** One backend's status: available, or the reason it is not. */
    public record Status(String name, boolean available, String reason, String description) {
        @Override
        public String toString() {
            return String.format("%-11s %-13s %s", name, available ? "available" : "unavailable",
                    available ? description : reason);
        }
    }

    private record Entry(String name, String description, Supplier<String> unavailableReason, Supplier<Backend> open,
                         Supplier<Boolean> inAuto) {
    }

    /** System property: the CUDA device ordinal the cuda-* backends open (default 0). */
    public static final String CUDA_DEVICE_PROPERTY = "lorakit.cuda.device";

    private static List<Entry> entries() {
        return List.of(
                new Entry("cuda-ffm", "CUDA through Panama FFM (libcuda + liblorakit.so), cuBLAS, fast tier",
                        BackendRegistry::ffmReason,
                        () -> CudaBackend.open(FfmCudaDevice.open(cudaOrdinal()), "cuda-ffm"), () -> true),
                new Entry("cuda-jcuda", "CUDA through JCuda (driver API), cuBLAS, fast tier",
                        BackendRegistry::jcudaReason,
                        () -> CudaBackend.open(JCudaDevice.open(cudaOrdinal()), "cuda-jcuda"), () -> true),
                new Entry("opencl", "OpenCL through LWJGL, portable kernels (auto takes it only on a GPU device)",
                        () -> openClReason(), OpenClBackend::open, BackendRegistry::openClInAuto),
                new Entry("cpu", "pure-Java reference backend (fp32, Vector API, "
                        + Runtime.getRuntime().availableProcessors() + " threads)",
                        () -> null, CpuBackend::new, () -> true));
    }

    private BackendRegistry() {
    }

    /** Status of every backend, in auto order. */
    public static List<Status> list() {
        List<Status> out = new ArrayList<>();
        for (Entry e : entries()) {
            String reason = e.unavailableReason().get();
            out.add(new Status(e.name(), reason == null, reason == null ? "" : reason, e.description()));
        }
        return out;
    }

    /** Names accepted by {@link #open}: every backend plus {@code auto}. */
    public static List<String> names() {
        List<String> n = new ArrayList<>(List.of("auto"));
        entries().forEach(e -> n.add(e.name()));
        return n;
    }

    /**
     * Opens a backend by name ({@code auto} = the first available in preference order that is complete). An
     * unknown name or an unavailable backend throws {@link GpuException} with the reason and the choices.
     */
    public static Backend open(String name) {
        for (Entry e : entries()) {
            if ((name.equals("auto") && e.inAuto().get()) || e.name().equals(name)) {
                String reason = e.unavailableReason().get();
                if (reason == null && e.open() != null) {
                    return e.open().get();
                }
                if (!name.equals("auto")) {
                    throw new GpuException("backend '" + name + "' is unavailable: " + reason
                            + ". Use --backend cpu, or see 'lorakit info'.");
                }
            }
        }
        throw new GpuException("unknown backend '" + name + "'; choose one of " + names());
    }

    private static int cudaOrdinal() {
        return Integer.getInteger(CUDA_DEVICE_PROPERTY, 0);
    }

    /**
     * cuda-ffm: available iff the device opens (CudaProbe first: no libcuda, no device, driver too old, fatbin
     * missing; then liblorakit.so and its ABI; then device 0 opens and loads the fatbin). Never throws.
     */
    private static String ffmReason() {
        try {
            return FfmCudaDevice.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            return "CUDA probe through FFM failed: " + e;
        }
    }

    /** cuda-jcuda: as cuda-ffm, with "JCuda natives failed to load" when JCuda's JNI library cannot load. */
    private static String jcudaReason() {
        try {
            return JCudaDevice.unavailableReason();
        } catch (RuntimeException | LinkageError e) {
            return "JCuda natives failed to load: " + e;
        }
    }

    /** auto takes opencl only when the device it would open is a GPU. */
    private static boolean openClInAuto() {
        if (openClReason() != null) {
            return false;
        }
        try {
            return "GPU".equals(OpenClDevice.selected(OpenClBackend.selector()).type());
        } catch (RuntimeException | LinkageError e) {
            return false;
        }
    }

    /** The FFM probe first (no LWJGL class is touched without an ICD loader), then LWJGL's device listing. */
    private static String openClReason() {
        NativeProbe.Result r = NativeProbe.openCl();
        return r.ok() ? OpenClBackend.unavailableReason() : r.detail();
    }
}
