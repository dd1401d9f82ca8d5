package ai.lorakit.gpu.blas;

import ai.lorakit.gpu.GpuException;

import java.util.ArrayList;
import java.util.List;

/**
 * Picks the cuBLAS binding for a CUDA device: for the JCuda device JCublas2 first (where it loads), then FFM over
 * each {@link LibraryLocator} candidate in order; for the FFM device FFM only. The first that creates a handle wins;
 * when none does, {@link Result#blas()} is null and {@link Result#note()} lists what was tried, so the backend can
 * fall back to the portable GEMM kernel and say why.
 */
public final class Blases {

    /** The chosen binding (or null) and a one-line note for descriptions and {@code lorakit info}. */
    public record Result(Blas blas, String note) {
    }

    private Blases() {
    }

    /**
     * Opens cuBLAS in the CUDA context current on this thread. {@code jcuda}: also try JCublas2. Never throws for a
     * missing library: the reasons end up in the note.
     */
    public static Result open(boolean jcuda, int driverVersion) {
        LibraryLocator.Library lib = LibraryLocator.CUBLAS;
        if (LibraryLocator.disabled(lib)) {
            return new Result(null, "cuBLAS disabled (-D" + lib.property() + "=" + System.getProperty(lib.property()) + ")");
        }
        List<LibraryLocator.Candidate> candidates = LibraryLocator.candidates(lib, LibraryLocator.Env.system(lib),
                driverVersion);
        List<String> failures = new ArrayList<>();
        if (jcuda) {
            LibraryLocator.Candidate preload = candidates.stream()
                    .filter(c -> c.major() == 12 && c.path() != null).findFirst().orElse(null);
            try {
                Blas b = JCublas2Blas.open(preload);
                return new Result(b, b.description());
            } catch (GpuException | LinkageError e) {
                failures.add("JCublas2: " + e.getMessage());
            }
        }
        for (LibraryLocator.Candidate c : candidates) {
            try {
                Blas b = FfmCublas.open(c);
                return new Result(b, b.description());
            } catch (GpuException | LinkageError e) {
                failures.add(c + ": " + e.getMessage());
            }
        }
        return new Result(null, "cuBLAS not found" + (failures.isEmpty() ? " (no candidate)" : " (tried: "
                + String.join("; ", failures) + ")"));
    }
}
