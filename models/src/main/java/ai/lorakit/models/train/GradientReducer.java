package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.Backend;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.dist.ProcessGroup;
import ai.lorakit.gpu.dist.SingleProcess;

import java.util.List;

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
 */
public final class GradientReducer {
    /** Elements per all-reduce call (16 MiB of fp32): bounds MPI's internal buffers for full fine-tuning. */
    static final int BUCKET = 1 << 22;

    private final ProcessGroup group;
    private float[] flat = new float[0];
    private long reducedNanos;
    private int calls;
    private long elements;

    public GradientReducer(ProcessGroup group) {
        this.group = group;
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
        reducedNanos += System.nanoTime() - t0;
        calls++;
        elements = flat.length;
        return loss;
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
