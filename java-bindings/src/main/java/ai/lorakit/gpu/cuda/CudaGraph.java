package ai.lorakit.gpu.cuda;

import ai.lorakit.gpu.GpuException;

/**
 * A captured and instantiated CUDA graph (PERFORMANCE.md technique 3: "CUDA Graph the whole training step"): made by
 * {@link CudaDevice#capture} or {@link CudaBackend#capture}, replayed on the device's default stream with one
 * cuGraphLaunch instead of one host launch per kernel.
 *
 * <p>What a replay sees: the kernels, copies and fills the step queued, with the SAME arguments (device addresses,
 * sizes, scalars such as a learning rate or AdamW's step count) as at capture. Values that change from step to step
 * must therefore live in device tensors that the caller updates between replays (an upload or fill outside the
 * graph), and the tensors the step reads and writes must stay allocated while the graph lives. Capture once per
 * shape; a new shape needs a new graph.
 */
public final class CudaGraph implements AutoCloseable {
    final CudaDevice device;
    final long graph;
    final long exec;
    private boolean released;

    CudaGraph(CudaDevice device, long graph, long exec) {
        this.device = device;
        this.graph = graph;
        this.exec = exec;
    }

    /**
     * Ends the capture {@code c} of {@code device}'s default stream (also when the step failed: the stream must leave
     * capture mode), frees the buffers whose free was deferred, and instantiates the graph; or discards it and throws
     * the step's failure, the capture's, or a leak of graph memory (buffers allocated in the step and not freed).
     */
    static CudaGraph finish(CudaDevice device, CudaDevice.Capture c, Throwable stepFailure) {
        CudaDriver driver = device.driver;
        Throwable failure = stepFailure;
        long graph = 0;
        try {
            graph = driver.streamEndCapture(device.stream());
        } catch (RuntimeException e) {   // an invalidated capture
            failure = addTo(failure, e);
        }
        for (long address : c.deferredFrees) {
            try {
                driver.memFree(address);
            } catch (RuntimeException e) {
                failure = addTo(failure, e);
            }
        }
        if (failure == null && !c.allocated.isEmpty()) {
            long leaked = c.allocated.stream().mapToLong(CudaBuffer::bytes).sum();
            failure = new GpuException("CUDA graph capture on " + device.name() + ": the step allocated "
                    + c.allocated.size() + " buffer(s) (" + leaked + " bytes) it did not free; create persistent tensors"
                    + " before the capture (run the step once eagerly) and close temporaries inside it");
        }
        if (failure == null) {
            try {
                CudaGraph g = new CudaGraph(device, graph, driver.graphInstantiate(graph));
                device.adopt(g);
                return g;
            } catch (RuntimeException e) {
                failure = e;
            }
        }
        device.discard(c.allocated);   // graph memory that never existed outside the discarded graph
        if (graph != 0) {
            try {
                driver.graphDestroy(graph);
            } catch (RuntimeException e) {
                failure.addSuppressed(e);
            }
        }
        if (failure instanceof RuntimeException r) {
            throw r;
        }
        throw (Error) failure;
    }

    private static Throwable addTo(Throwable first, RuntimeException next) {
        if (first == null) {
            return next;
        }
        first.addSuppressed(next);
        return first;
    }

    /** Queues one run of the whole graph on the default stream (asynchronous, like a launch). */
    public void replay() {
        if (released) {
            throw new GpuException("cuGraphLaunch: the graph was closed");
        }
        device.launchGraph(this);
    }

    /** The raw CUgraphExec. */
    public long handle() {
        return exec;
    }

    public boolean isClosed() {
        return released;
    }

    @Override
    public void close() {
        if (!released && !device.isClosed()) {
            release();
            device.forget(this);
        }
        released = true;
    }

    void release() {
        if (!released) {
            released = true;
            device.makeCurrent();
            device.driver.streamSynchronize(device.stream());   // a replay may still be running
            device.driver.graphExecDestroy(exec);
            device.driver.graphDestroy(graph);
        }
    }
}
