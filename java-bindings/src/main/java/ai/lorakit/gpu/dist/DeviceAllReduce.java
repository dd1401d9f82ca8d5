package ai.lorakit.gpu.dist;

/**
 * A sum all-reduce of fp32 device buffers over the ranks, queued on a CUDA stream: {@link NcclCommunicator} (from
 * {@link Nccl#communicator}); tests stub it to check what the trainer queues without a GPU. Pointers and the stream
 * are raw device addresses / CUstreams, as the CUDA backend holds them.
 */
public interface DeviceAllReduce extends AutoCloseable {

    /** This rank, 0 .. size-1. */
    int rank();

    /** Number of ranks. */
    int size();

    /**
     * recv[0..count) = the sum over ranks of send[0..count), enqueued on {@code stream} (send == recv is in place);
     * asynchronous like a kernel launch.
     */
    void allReduceSumF32(long send, long recv, long count, long stream);

    /** What it is, e.g. "NCCL 2.27.3 (...)". */
    String describe();

    @Override
    void close();
}
