package ai.lorakit.gpu;

import ai.lorakit.gpu.cpu.CpuBackend;
import ai.lorakit.gpu.kernel.KernelBackend;
import ai.lorakit.gpu.opencl.OpenClBackend;

import java.util.ArrayList;
import java.util.List;
import java.util.function.Supplier;

/**
 * Every backend lorakit knows, in {@code auto} preference order (cuda-ffm, cuda-jcuda, opencl, cpu), with its
 * status and, when it cannot be used, the exact reason. Probing never throws and never crashes: a missing
 * driver or runtime is a reason, not an error. {@code lorakit info} prints {@link #list()}.
 *
 * <p>{@code opencl} is available when an OpenCL runtime lists a usable device (the system property
 * {@code lorakit.opencl.device} picks one; default: prefer a GPU, else a CPU such as PoCL). While
 * {@link KernelBackend#PENDING_OPS} is not empty it opens by name but {@code auto} passes over it, so that
 * training never lands on a backend that lacks an op.
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
                         boolean inAuto) {
    }

    private static final String CUDA_NOT_YET = "the CUDA backends are not implemented in this build yet "
            + "(CUDA kernels are compiled into the jar; the JCuda/FFM devices arrive with the CUDA issue)";

    private static List<Entry> entries() {
        return List.of(
                new Entry("cuda-ffm", "CUDA through Panama FFM (libcuda + liblorakit.so)",
                        () -> cudaReason(), null, true),
                new Entry("cuda-jcuda", "CUDA through JCuda (driver API)",
                        () -> cudaReason(), null, true),
                new Entry("opencl", "OpenCL through LWJGL, portable kernels" + (KernelBackend.PENDING_OPS.isEmpty() ? ""
                        : " (" + KernelBackend.PENDING_OPS.size() + " ops pending; not chosen by auto)"),
                        () -> openClReason(), OpenClBackend::open, KernelBackend.PENDING_OPS.isEmpty()),
                new Entry("cpu", "pure-Java reference backend (fp32, Vector API, "
                        + Runtime.getRuntime().availableProcessors() + " threads)",
                        () -> null, CpuBackend::new, true));
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
            if ((name.equals("auto") && e.inAuto()) || e.name().equals(name)) {
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

    private static String cudaReason() {
        NativeProbe.Result r = NativeProbe.cuda();
        return r.ok() ? r.detail() + "; but " + CUDA_NOT_YET : r.detail();
    }

    /** The FFM probe first (no LWJGL class is touched without an ICD loader), then LWJGL's device listing. */
    private static String openClReason() {
        NativeProbe.Result r = NativeProbe.openCl();
        return r.ok() ? OpenClBackend.unavailableReason() : r.detail();
    }
}
