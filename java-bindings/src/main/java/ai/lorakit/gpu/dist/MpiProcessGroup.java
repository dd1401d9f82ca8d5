package ai.lorakit.gpu.dist;

import java.lang.foreign.Arena;
import java.lang.foreign.MemorySegment;

import static java.lang.foreign.ValueLayout.JAVA_BYTE;
import static java.lang.foreign.ValueLayout.JAVA_DOUBLE;
import static java.lang.foreign.ValueLayout.JAVA_FLOAT;
import static java.lang.foreign.ValueLayout.JAVA_INT;

/**
 * MPI_COMM_WORLD through liblorakit_mpi.so ({@link MpiShim}). Collectives stage the Java array through one native
 * buffer that grows as needed (a copy costs far less than the transfer). MPI_Init runs in {@link #open}, MPI_Finalize
 * in {@link #close}; MPI allows one of each per process, so a JVM has at most one open group.
 */
public final class MpiProcessGroup implements ProcessGroup {

    private final MpiShim mpi;
    private final int rank;
    private final int size;
    private final String description;
    private final Arena arena = Arena.ofShared();
    private MemorySegment staging = MemorySegment.NULL;
    private boolean closed;

    private MpiProcessGroup(MpiShim mpi, int rank, int size, String description) {
        this.mpi = mpi;
        this.rank = rank;
        this.size = size;
        this.description = description;
    }

    /**
     * Loads the shim and initialises MPI.
     *
     * @param launch the launcher that started this process (its announced size is checked against MPI's), or null
     * @throws DistributedException the shim or libmpi cannot load, MPI_Init fails, or MPI sees another world size
     *                              than the launcher announced (srun without MPI support starts N singletons)
     */
    public static synchronized MpiProcessGroup open(Launch launch) {
        MpiShim mpi = MpiShim.get();
        int rank;
        int size;
        try (Arena a = Arena.ofConfined()) {
            MemorySegment r = a.allocate(JAVA_INT);
            MemorySegment s = a.allocate(JAVA_INT);
            int rc;
            try {
                rc = (int) mpi.init.invokeExact(r, s);
            } catch (Throwable t) {
                throw new DistributedException("lorakit_mpi_init: downcall failed: " + t, t);
            }
            mpi.check(rc, "MPI initialisation");
            rank = r.get(JAVA_INT, 0);
            size = s.get(JAVA_INT, 0);
        }
        if (launch != null && launch.size() > 0 && launch.size() != size) {
            throw new DistributedException(launch.launcher() + " announced " + launch.variable() + " but MPI sees "
                    + size + " process(es): the launcher and this MPI do not talk (with srun, pass --mpi=pmix or"
                    + " --mpi=pmi2; with mpirun, use the mpirun of the MPI lorakit's shim was built against)");
        }
        String how = launch == null ? "" : ", launched by " + launch.launcher();
        return new MpiProcessGroup(mpi, rank, size, "MPI rank " + rank + " of " + size + " (" + mpi.libraryVersion()
                + how + ")");
    }

    /** Whether this jar carries the shim (built where mpicc was installed). */
    public static boolean shimPresent() {
        return ai.lorakit.gpu.NativeResources.present(MpiShim.RESOURCE);
    }

    /**
     * Loads the shim without initialising MPI and returns MPI's library version, or throws with the reason it
     * cannot load ({@code lorakit info}).
     */
    public static String probe() {
        return MpiShim.get().libraryVersion();
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    private MemorySegment staging(long bytes) {
        if (closed) {
            throw new IllegalStateException("MPI process group is closed");
        }
        if (staging.byteSize() < bytes) {
            staging = arena.allocate(Math.max(bytes, 2 * staging.byteSize()), 8);
        }
        return staging;
    }

    @Override
    public synchronized void allReduceSum(float[] v, int off, int len) {
        java.util.Objects.checkFromIndexSize(off, len, v.length);
        MemorySegment buf = staging(4L * len);
        MemorySegment.copy(v, off, buf, JAVA_FLOAT, 0, len);
        int rc;
        try {
            rc = (int) mpi.allReduceF32.invokeExact(buf, (long) len);
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_allreduce_sum_f32: downcall failed: " + t, t);
        }
        mpi.check(rc, "all-reduce of " + len + " floats on rank " + rank);
        MemorySegment.copy(buf, JAVA_FLOAT, 0, v, off, len);
    }

    @Override
    public synchronized void allReduceSum(double[] v) {
        MemorySegment buf = staging(8L * v.length);
        MemorySegment.copy(v, 0, buf, JAVA_DOUBLE, 0, v.length);
        int rc;
        try {
            rc = (int) mpi.allReduceF64.invokeExact(buf, (long) v.length);
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_allreduce_sum_f64: downcall failed: " + t, t);
        }
        mpi.check(rc, "all-reduce of " + v.length + " doubles on rank " + rank);
        MemorySegment.copy(buf, JAVA_DOUBLE, 0, v, 0, v.length);
    }

    @Override
    public synchronized void broadcast(byte[] b, int root) {
        if (root < 0 || root >= size) {
            throw new IllegalArgumentException("broadcast root " + root + " is not a rank of 0.." + (size - 1));
        }
        MemorySegment buf = staging(b.length);
        MemorySegment.copy(b, 0, buf, JAVA_BYTE, 0, b.length);
        int rc;
        try {
            rc = (int) mpi.bcast.invokeExact(buf, (long) b.length, root);
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_bcast: downcall failed: " + t, t);
        }
        mpi.check(rc, "broadcast of " + b.length + " bytes from rank " + root);
        MemorySegment.copy(buf, JAVA_BYTE, 0, b, 0, b.length);
    }

    @Override
    public synchronized void barrier() {
        int rc;
        try {
            rc = (int) mpi.barrier.invokeExact();
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_barrier: downcall failed: " + t, t);
        }
        mpi.check(rc, "barrier on rank " + rank);
    }

    @Override
    public void abort(int code) {
        try {
            int rc = (int) mpi.abort.invokeExact(code);
            mpi.check(rc, "MPI_Abort");
        } catch (Throwable t) {
            // MPI_Abort did not end the job: end this process at least; mpirun then stops the others
            Runtime.getRuntime().halt(code == 0 ? 1 : code);
        }
    }

    @Override
    public String describe() {
        return description;
    }

    @Override
    public synchronized void close() {
        if (closed) {
            return;
        }
        closed = true;
        int rc;
        try {
            rc = (int) mpi.finalizeMpi.invokeExact();
        } catch (Throwable t) {
            throw new DistributedException("lorakit_mpi_finalize: downcall failed: " + t, t);
        } finally {
            arena.close();
        }
        mpi.check(rc, "MPI_Finalize");
    }
}
