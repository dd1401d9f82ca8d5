package ai.lorakit.gpu.dist;

import ai.lorakit.gpu.blas.LibraryLocator;

import java.lang.foreign.Arena;
import java.lang.foreign.FunctionDescriptor;
import java.lang.foreign.Linker;
import java.lang.foreign.MemoryLayout;
import java.lang.foreign.MemorySegment;
import java.lang.foreign.StructLayout;
import java.lang.foreign.SymbolLookup;
import java.lang.invoke.MethodHandle;
import java.util.ArrayList;
import java.util.List;

import static java.lang.foreign.ValueLayout.ADDRESS;
import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_INT;
import static java.lang.foreign.ValueLayout.JAVA_LONG;

/**
 * NCCL (libnccl.so.2) bound directly through Panama FFM: ncclGetVersion, ncclGetUniqueId, ncclCommInitRank,
 * ncclAllReduce, ncclCommDestroy, ncclGetErrorString. {@link #load} tries {@link LibraryLocator}'s candidates for
 * {@link LibraryLocator#NCCL} (the loader path, the nvidia wheels of the python3 on PATH, other site-packages, CUDA
 * toolkit folders, then {@code -Dlorakit.nccl}) and, when none loads, says what it tried and why each failed. A
 * communicator comes from {@link #communicator}.
 */
public final class Nccl {
    /** sizeof(ncclUniqueId): NCCL_UNIQUE_ID_BYTES. */
    public static final int UNIQUE_ID_BYTES = 128;
    static final int NCCL_FLOAT32 = 7;
    static final int NCCL_SUM = 0;
    static final StructLayout UNIQUE_ID = MemoryLayout.structLayout(MemoryLayout.sequenceLayout(UNIQUE_ID_BYTES,
            JAVA_BYTE).withName("internal"));

    private static final Linker LINKER = Linker.nativeLinker();

    private final String where;
    private final int version;
    private final MethodHandle errorString;
    final MethodHandle getUniqueId;
    final MethodHandle commInitRank;
    final MethodHandle allReduce;
    final MethodHandle commDestroy;

    private Nccl(SymbolLookup lib, String where) {
        this.where = where;
        MethodHandle getVersion = find(lib, "ncclGetVersion", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        errorString = find(lib, "ncclGetErrorString", FunctionDescriptor.of(ADDRESS, JAVA_INT));
        getUniqueId = find(lib, "ncclGetUniqueId", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        // ncclCommInitRank(ncclComm_t* comm, int nranks, ncclUniqueId commId (by value), int rank)
        commInitRank = find(lib, "ncclCommInitRank", FunctionDescriptor.of(JAVA_INT, ADDRESS, JAVA_INT, UNIQUE_ID,
                JAVA_INT));
        // ncclAllReduce(sendbuff, recvbuff, size_t count, ncclDataType_t, ncclRedOp_t, ncclComm_t, cudaStream_t)
        allReduce = find(lib, "ncclAllReduce", FunctionDescriptor.of(JAVA_INT, JAVA_LONG, JAVA_LONG, JAVA_LONG,
                JAVA_INT, JAVA_INT, ADDRESS, JAVA_LONG));
        commDestroy = find(lib, "ncclCommDestroy", FunctionDescriptor.of(JAVA_INT, ADDRESS));
        try (Arena a = Arena.ofConfined()) {
            MemorySegment v = a.allocate(JAVA_INT);
            check((int) getVersion.invokeExact(v), "ncclGetVersion");
            version = v.get(JAVA_INT, 0);
        } catch (DistributedException e) {
            throw e;
        } catch (Throwable t) {
            throw new DistributedException("ncclGetVersion: downcall failed: " + t, t);
        }
    }

    /**
     * The first of {@link LibraryLocator}'s NCCL candidates that loads and answers ncclGetVersion.
     *
     * @throws DistributedException none does (every candidate with its reason), or -Dlorakit.nccl=none turns it off
     */
    public static Nccl load() {
        LibraryLocator.Library lib = LibraryLocator.NCCL;
        if (LibraryLocator.disabled(lib)) {
            throw new DistributedException("NCCL is disabled (-D" + lib.property() + "="
                    + System.getProperty(lib.property()) + "); drop the property to use it");
        }
        return load(LibraryLocator.candidates(lib, LibraryLocator.Env.system(lib), 0));
    }

    /** The first of {@code candidates} that loads and answers ncclGetVersion (tests give their own list). */
    static Nccl load(List<LibraryLocator.Candidate> candidates) {
        List<String> tried = new ArrayList<>();
        for (LibraryLocator.Candidate c : candidates) {
            try {
                SymbolLookup lib = c.path() == null ? SymbolLookup.libraryLookup(c.soname(), Arena.global())
                        : SymbolLookup.libraryLookup(c.path(), Arena.global());
                return new Nccl(lib, c.toString());
            } catch (IllegalArgumentException | DistributedException e) {
                tried.add(c + ": " + e.getMessage());
            }
        }
        throw new DistributedException("no libnccl.so.2 loads (tried " + String.join("; ", tried)
                + "); install the nvidia-nccl-cu13 (or -cu12) wheel into the python3 on PATH, put libnccl.so.2 on"
                + " LD_LIBRARY_PATH, or pass -D" + LibraryLocator.NCCL.property() + "=<file or folder>");
    }

    /** Null when {@link #load} works, else its message ({@code lorakit info}, tests). */
    public static String unavailableReason() {
        try {
            load();
            return null;
        } catch (DistributedException e) {
            return e.getMessage();
        }
    }

    private static MethodHandle find(SymbolLookup lib, String name, FunctionDescriptor fd) {
        return LINKER.downcallHandle(lib.find(name).orElseThrow(() -> new DistributedException(
                "the library has no " + name + " (not NCCL 2?)")), fd);
    }

    /** NCCL_VERSION_CODE of the loaded library, e.g. 22703 for 2.27.3. */
    public int version() {
        return version;
    }

    /** "NCCL 2.27.3 (<file> [origin])". */
    public String describe() {
        return "NCCL " + version / 10000 + "." + version / 100 % 100 + "." + version % 100 + " (" + where + ")";
    }

    void check(int rc, String call) {
        if (rc != 0) {
            String text;
            try {
                MemorySegment s = (MemorySegment) errorString.invokeExact(rc);
                text = s.equals(MemorySegment.NULL) ? "" : s.reinterpret(1024).getString(0);
            } catch (Throwable t) {
                text = "(ncclGetErrorString failed: " + t + ")";
            }
            throw new DistributedException(call + " failed: ncclResult " + rc + " (" + text + ")");
        }
    }

    /**
     * A communicator over every rank of {@code group}: rank 0 makes the unique id (ncclGetUniqueId), {@code group}
     * broadcasts it, each rank calls ncclCommInitRank. The calling thread's current CUDA device (the backend's, with
     * its context current) is the one NCCL uses.
     */
    public NcclCommunicator communicator(ProcessGroup group) {
        byte[] id = new byte[UNIQUE_ID_BYTES];
        try (Arena a = Arena.ofConfined()) {
            MemorySegment idSeg = a.allocate(UNIQUE_ID);
            if (group.rank() == 0) {
                check((int) getUniqueId.invokeExact(idSeg), "ncclGetUniqueId");
                MemorySegment.copy(idSeg, JAVA_BYTE, 0, id, 0, UNIQUE_ID_BYTES);
            }
            group.broadcast(id, 0);
            MemorySegment.copy(id, 0, idSeg, JAVA_BYTE, 0, UNIQUE_ID_BYTES);
            MemorySegment comm = a.allocate(ADDRESS);
            check((int) commInitRank.invokeExact(comm, group.size(), idSeg, group.rank()),
                    "ncclCommInitRank(rank " + group.rank() + " of " + group.size() + ")");
            return new NcclCommunicator(this, comm.get(ADDRESS, 0), group.rank(), group.size());
        } catch (DistributedException e) {
            throw e;
        } catch (Throwable t) {
            throw new DistributedException("NCCL communicator: downcall failed: " + t, t);
        }
    }
}
