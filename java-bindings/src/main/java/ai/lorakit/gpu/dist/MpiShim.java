package ai.lorakit.gpu.dist;

import ai.lorakit.gpu.NativeResources;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.nio.file.Path;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * liblorakit_mpi.so (native/include/lorakit_mpi.h) through Panama FFM: extracted from the jar once per JVM and
 * loaded; its libmpi.so dependency is resolved by the system loader then, so a machine without an MPI runtime gets
 * the loader's message ("libmpi.so.40: cannot open shared object file") in a {@link DistributedException} with the
 * remedy. Only ints, longs and host addresses cross: no MPI handle (they differ between Open MPI and MPICH).
 */
final class MpiShim {
    /** Must equal {@code LORAKIT_MPI_ABI_VERSION} of the library in the same jar. */
    static final int ABI_VERSION = 1;
    /** Where native/build-mpi.sh puts the library (absent when the build had no mpicc). */
    static final String RESOURCE = "/ai/lorakit/native/linux-x86_64/liblorakit_mpi.so";
    /** What to install where libmpi is missing. */
    static final String REMEDY = "install an MPI runtime (Debian: apt-get install openmpi-bin libopenmpi-dev)";

    private static final Linker LINKER = Linker.nativeLinker();
    private static volatile MpiShim instance;

    final MethodHandle lastError;
    final MethodHandle libraryVersion;
    final MethodHandle init;
    final MethodHandle finalizeMpi;
    final MethodHandle allReduceF32;
    final MethodHandle allReduceF64;
    final MethodHandle bcast;
    final MethodHandle barrier;
    final MethodHandle abort;

    private MpiShim(SymbolLookup lib, Path file) {
        MethodHandle abi = find(lib, "lorakit_mpi_abi_version", FunctionDescriptor.of(JAVA_INT));
        int v;
        try {
            v = (int) abi.invokeExact();
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_abi_version() failed: " + t, t);
        }
        if (v != ABI_VERSION) {
            throw new DistributedException("liblorakit_mpi.so ABI mismatch: " + file + " reports " + v + " but this"
                    + " jar expects " + ABI_VERSION + "; rebuild both halves (mvn package)");
        }
        lastError = find(lib, "lorakit_mpi_last_error", FunctionDescriptor.of(ADDRESS));
        libraryVersion = find(lib, "lorakit_mpi_library_version", FunctionDescriptor.of(ADDRESS));
        init = find(lib, "lorakit_mpi_init", FunctionDescriptor.of(JAVA_INT, ADDRESS, ADDRESS));
        finalizeMpi = find(lib, "lorakit_mpi_finalize", FunctionDescriptor.of(JAVA_INT));
        allReduceF32 = find(lib, "lorakit_mpi_allreduce_sum_f32", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        allReduceF64 = find(lib, "lorakit_mpi_allreduce_sum_f64", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG));
        bcast = find(lib, "lorakit_mpi_bcast", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_LONG, JAVA_INT));
        barrier = find(lib, "lorakit_mpi_barrier", FunctionDescriptor.of(JAVA_INT));
        abort = find(lib, "lorakit_mpi_abort", FunctionDescriptor.of(JAVA_INT, JAVA_INT));
    }

    /** The shim of this JVM, loaded on first use. */
    static MpiShim get() {
        MpiShim s = instance;
        if (s == null) {
            synchronized (MpiShim.class) {
                s = instance;
                if (s == null) {
                    s = load();
                    instance = s;
                }
            }
        }
        return s;
    }

    private static MpiShim load() {
        Path file;
        try {
            file = NativeResources.extract(RESOURCE, "this lorakit was built without mpicc; " + REMEDY + " and rebuild");
        } catch (RuntimeException e) {
            throw new DistributedException(e.getMessage(), e);
        }
        return load(file);
    }

    /** Loads the shim from {@code file} (package-private: tests load a copy whose libmpi cannot be found). */
    static MpiShim load(Path file) {
        try {
            return new MpiShim(SymbolLookup.libraryLookup(file, Arena.global()), file);
        } catch (IllegalArgumentException e) {
            String why = NativeResources.loaderError(file);
            throw new DistributedException("liblorakit_mpi.so cannot load: " + (why != null ? why : e.getMessage())
                    + " (its libmpi is missing or not on the loader path; " + REMEDY + ")", e);
        }
    }

    private static MethodHandle find(SymbolLookup lib, String name, FunctionDescriptor fd) {
        MemorySegment sym = lib.find(name).orElseThrow(() -> new DistributedException("liblorakit_mpi.so has no "
                + name + " (an older library? rebuild with mvn package)"));
        return LINKER.downcallHandle(sym, fd);
    }

    /** The shim's message of its last failure. */
    String lastError() {
        try {
            return cString((MemorySegment) lastError.invokeExact());
        } catch (Throwable t) {
            return "(lorakit_mpi_last_error failed: " + t + ")";
        }
    }

    /** MPI_Get_library_version's first line. */
    String libraryVersion() {
        try {
            return cString((MemorySegment) libraryVersion.invokeExact());
        } catch (Throwable t) {
            return "(unknown MPI: " + t + ")";
        }
    }

    private static String cString(MemorySegment p) {
        return p.equals(MemorySegment.NULL) ? "" : p.reinterpret(8192).getString(0);
    }

    /** Throws with the shim's message unless rc is LORAKIT_MPI_OK. */
    void check(int rc, String call) {
        if (rc != 0) {
            throw new DistributedException(call + ": " + lastError());
        }
    }
}
