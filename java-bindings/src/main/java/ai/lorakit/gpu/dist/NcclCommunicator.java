package ai.lorakit.gpu.dist;

import java.lang.foreign.MemorySegment;

/**
 * One rank's NCCL communicator ({@link Nccl#communicator}): sums fp32 device buffers over the ranks on a CUDA
 * stream. Pointers and the stream are raw device addresses / CUstreams, as the CUDA backend holds them.
 */
public final class NcclCommunicator implements DeviceAllReduce {
    private final Nccl nccl;
    private final MemorySegment comm;
    private final int rank;
    private final int size;
    private boolean closed;

    NcclCommunicator(Nccl nccl, MemorySegment comm, int rank, int size) {
        this.nccl = nccl;
        this.comm = comm;
        this.rank = rank;
        this.size = size;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return size;
    }

    @Override
    public String describe() {
        return nccl.describe() + ", rank " + rank + " of " + size;
    }

    /**
     * recv[0..count) = the sum over ranks of send[0..count), enqueued on {@code stream} (send == recv is in place).
     * Asynchronous like a kernel launch: synchronise the stream before reading recv on the host.
     */
    @Override
    public void allReduceSumF32(long send, long recv, long count, long stream) {
        if (closed) {
            throw new IllegalStateException("NCCL communicator is closed");
        }
        if (count < 0 || send == 0 || recv == 0) {
            throw new IllegalArgumentException("ncclAllReduce: bad buffers (send 0x" + Long.toHexString(send)
                    + ", recv 0x" + Long.toHexString(recv) + ", count " + count + ")");
        }
        int rc;
        try {
            rc = (int) nccl.allReduce.invokeExact(send, recv, count, Nccl.NCCL_FLOAT32, Nccl.NCCL_SUM, comm, stream);
        } catch (Throwable t) {
            throw new DistributedException("ncclAllReduce: downcall failed: " + t, t);
        }
        nccl.check(rc, "ncclAllReduce(" + count + " floats, rank " + rank + " of " + size + ")");
    }

    @Override
    public void close() {
        if (closed) {
            return;
        }
        closed = true;
        int rc;
        try {
            rc = (int) nccl.commDestroy.invokeExact(comm);
        } catch (Throwable t) {
            throw new DistributedException("ncclCommDestroy: downcall failed: " + t, t);
        }
        nccl.check(rc, "ncclCommDestroy");
    }
}
