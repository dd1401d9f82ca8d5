package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.dist.DeviceAllReduce;
import ai.lorakit.gpu.dist.DistributedException;
import ai.lorakit.gpu.dist.Nccl;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;

import java.util.List;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * Data parallel's one collective per step: after every rank has accumulated the gradients of its share of the
 * global batch (each micro-batch scaled by 1/(accum·W), {@link #gradScale}), the trainable gradients and the step's
 * loss are packed into one flat fp32 buffer g[n+1] (parameters in model order, then loss/W) and summed over the W
 * ranks with one all-reduce, in buckets of at most {@link #BUCKET} elements; every rank then holds the gradient of
 * the mean loss over the global batch, so clipping, AdamW and the training hooks (AdaLoRA's importance EMAs, which
 * read these gradients) decide the same on every rank. With a {@link SingleProcess} nothing is packed or copied.
 *
 * <p>Reduction order: for W = 2 the sum is a+b on both ranks, so W ranks of batch b equal one process with
 * gradient accumulation W of b bit for bit on a deterministic backend.
 *
 * <p>Where the sum runs is chosen once, by {@link #of}: this class reduces over the {@link ProcessGroup} (MPI) on the
 * host (cpu, opencl); {@link NcclGradientReducer} packs the same buffer on the device and sums it with NCCL on the
 * CUDA backend's stream (cuda-ffm, cuda-jcuda), the same values in the same order.
 */
public class GradientReducer implements AutoCloseable {
    /** Elements per all-reduce call (16 MiB of fp32): bounds MPI's internal buffers for full fine-tuning. */
    static final int BUCKET = 1 << 22;

    private final ProcessGroup group;
    private float[] flat = new float[0];
    private long reducedNanos;
    private int calls;
    private long elements;

    private final String transport;

    /** The host reducer over {@code group} (MPI); {@link #of} picks the reducer for a backend. */
    public GradientReducer(ProcessGroup group) {
        this(group, group.distributed() ? "MPI all-reduce on the host" : "single process: nothing to reduce");
    }

    GradientReducer(ProcessGroup group, String transport) {
        this.group = group;
        this.transport = transport;
    }

    /**
     * The reducer for training on {@code backend} over {@code group}: NCCL on the device for a CUDA backend when
     * every rank loads NCCL (they agree with one MPI all-reduce of a flag, so no rank waits in NCCL for another that
     * fell back), else MPI on the host; a single process reduces nothing.
     */
    public static GradientReducer of(ProcessGroup group, Backend backend) {
        return of(group, backend, () -> {
            Nccl nccl = Nccl.load();
            return nccl::communicator;
        });
    }

    /**
     * As {@link #of(ProcessGroup, Backend)} with the device collective given: {@code load} answers this rank's opener
     * or throws {@link DistributedException} with the reason it has none (tests stub NCCL here).
     */
    static GradientReducer of(ProcessGroup group, Backend backend,
                              Supplier<Function<ProcessGroup, ? extends DeviceAllReduce>> load) {
        if (!group.distributed() || !(backend instanceof CudaBackend cuda)) {
            return new GradientReducer(group);
        }
        Function<ProcessGroup, ? extends DeviceAllReduce> open = null;
        String why = null;
        try {
            open = load.get();
        } catch (DistributedException e) {
            why = e.getMessage();
        }
        float[] loaded = {open == null ? 0 : 1};
        group.allReduceSum(loaded, 0, 1);
        if (loaded[0] != group.size()) {
            return new GradientReducer(group, "MPI all-reduce on the host (NCCL loads on " + (int) loaded[0] + " of "
                    + group.size() + " ranks" + (why == null ? "" : "; here: " + why) + ")");
        }
        cuda.cudaDevice().makeCurrent();   // NCCL binds the communicator to the calling thread's current device
        return new NcclGradientReducer(group, cuda, open.apply(group));
    }

    /** How the gradients are summed, e.g. "MPI all-reduce on the host" or "NCCL ... on the device". */
    public String transport() {
        return transport;
    }

    public ProcessGroup group() {
        return group;
    }

    /** The factor of each micro-batch's mean-loss gradient: 1/(accum·W). */
    public float gradScale(int gradAccum) {
        return 1f / ((float) gradAccum * group.size());
    }

    /**
     * Sums the trainable gradients over the ranks in place and returns the global mean loss (the mean of the ranks'
     * {@code localLoss}); NaN on every rank if it is NaN on any. Identity for a single process.
     */
    public double reduce(List<Parameter> params, double localLoss) {
        if (!group.distributed()) {
            return localLoss;
        }
        long t0 = System.nanoTime();
        List<Parameter> grads = Gradients.withGrad(params);
        long n = 1;
        for (Parameter p : grads) {
            n += p.grad().numel();
        }
        if (n > Integer.MAX_VALUE - 8) {
            throw new IllegalStateException("data parallel: " + n + " trainable gradient elements exceed one Java"
                    + " array; reduce the trainable set");
        }
        if (flat.length != n) {
            flat = new float[(int) n];
        }
        int off = 0;
        for (Parameter p : grads) {
            float[] g = p.grad().backend().download(p.grad());
            System.arraycopy(g, 0, flat, off, g.length);
            off += g.length;
        }
        flat[off] = (float) (localLoss / group.size());
        for (int b = 0; b < flat.length; b += BUCKET) {
            group.allReduceSum(flat, b, Math.min(BUCKET, flat.length - b));
        }
        off = 0;
        for (Parameter p : grads) {
            Tensor g = p.grad();
            Backend be = g.backend();
            float[] part = new float[Math.toIntExact(g.numel())];
            System.arraycopy(flat, off, part, 0, part.length);
            off += part.length;
            try (Tensor staged = be.upload(part, g.dtype(), g.shape())) {
                be.copy(staged, g);
            }
        }
        double loss = flat[off];
        record(t0, flat.length);
        return loss;
    }

    /** One reduce of {@code n} elements that began at {@code t0} (System.nanoTime). */
    final void record(long t0, long n) {
        reducedNanos += System.nanoTime() - t0;
        calls++;
        elements = n;
    }

    /** Releases what the reducer holds on the device (nothing here; the group is the caller's). */
    @Override
    public void close() {
    }

    /**
     * Mean seconds per {@link #reduce} so far (download, the all-reduce, upload; it includes waiting for the slowest
     * rank), 0 before the first: the benchmark's all-reduce time per step.
     */
    public double secondsPerStep() {
        return calls == 0 ? 0 : reducedNanos / 1e9 / calls;
    }

    /** Elements of the last flat buffer (trainable gradient elements + 1 for the loss). */
    public long elements() {
        return elements;
    }
}
