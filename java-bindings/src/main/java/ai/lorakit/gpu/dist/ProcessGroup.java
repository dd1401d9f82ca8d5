package ai.lorakit.gpu.dist;

/**
 * The ranks of one data-parallel run (ARCHITECTURE.md, the distributed layer): {@link SingleProcess} when lorakit
 * runs alone, {@link MpiProcessGroup} when mpirun or srun started it ({@link ProcessGroups#fromEnvironment}).
 * Collectives take host arrays; every rank must call the same collectives in the same order with the same lengths.
 * Calls come from one thread at a time. A failed collective throws {@link DistributedException}.
 */
public interface ProcessGroup extends AutoCloseable {

    /** This process's rank, 0 .. size-1. */
    int rank();

    /** Number of ranks (1 for a single process). */
    int size();

    /** True when there is more than one process to talk to (size > 1). */
    default boolean distributed() {
        return size() > 1;
    }

    /** In place: v[off, off+len) = the sum of every rank's v[off, off+len). */
    void allReduceSum(float[] v, int off, int len);

    /** In place: v = the sum of every rank's v. */
    void allReduceSum(double[] v);

    /** Rank {@code root}'s bytes into every rank's {@code b} (same length everywhere). */
    void broadcast(byte[] b, int root);

    /** Returns when every rank has called it. */
    void barrier();

    /**
     * Ends the whole job after a failure on this rank: prints nothing (the caller has said why) and stops every
     * rank with exit code {@code code}. On a single process it returns (the caller then exits as usual).
     */
    void abort(int code);

    /** E.g. "single process" or "MPI rank 1 of 2 (Open MPI v4.1.4, launched by mpirun)". */
    String describe();

    /** Finalises the transport (no-op for a single process); call once, after the last collective. */
    @Override
    void close();
}
