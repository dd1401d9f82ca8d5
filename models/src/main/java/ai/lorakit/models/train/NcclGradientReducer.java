package ai.lorakit.models.train;

import ai.lorakit.adapters.Parameter;
import ai.lorakit.gpu.DType;
import ai.lorakit.gpu.DeviceBuffer;
import ai.lorakit.gpu.Tensor;
import ai.lorakit.gpu.cuda.CudaBackend;
import ai.lorakit.gpu.cuda.CudaBuffer;
import ai.lorakit.gpu.cuda.CudaDevice;
import ai.lorakit.gpu.dist.DeviceAllReduce;
import ai.lorakit.gpu.dist.ProcessGroup;

import java.util.List;

/**
 * {@link GradientReducer} on a CUDA backend: the trainable gradients and loss/W are packed into a flat device bucket
 * g[n+1] (model order, as the host reducer packs them) with device copies, summed over the ranks with one
 * {@link DeviceAllReduce} (NCCL, fp32 sum) in place on the backend's stream, and copied back. Each micro-batch was
 * already scaled by 1/(accum·W) ({@link #gradScale}), so the sum is the mean, as on the host (for W = 2 the sum is
 * a+b on both paths, the same bits; for more ranks NCCL's ring order may differ from MPI's). No gradient crosses to
 * the host; only the loss (4 bytes) does, and reading it back is the step's one synchronisation. A gradient that is
 * not fp32 on this backend sends the step through the host reducer (every rank has the same parameters, so every
 * rank does).
 */
final class NcclGradientReducer extends GradientReducer {
    private final CudaBackend cuda;
    private final DeviceAllReduce comm;
    private Tensor bucket;   // g [n+1] F32
    private final float[] loss = new float[1];

    NcclGradientReducer(ProcessGroup group, CudaBackend cuda, DeviceAllReduce comm) {
        super(group, comm.describe() + ": all-reduce on the device (" + cuda.name() + " stream)");
        this.cuda = cuda;
        this.comm = comm;
    }

    @Override
    public double reduce(List<Parameter> params, double localLoss) {
        List<Parameter> grads = Gradients.withGrad(params);
        long n = 1;
        for (Parameter p : grads) {
            Tensor g = p.grad();
            if (g.backend() != cuda || g.dtype() != DType.F32) {
                return super.reduce(params, localLoss);
            }
            n += g.numel();
        }
        if (n > Integer.MAX_VALUE) {
            throw new IllegalStateException("data parallel: " + n + " trainable gradient elements exceed one device"
                    + " bucket; reduce the trainable set");
        }
        long t0 = System.nanoTime();
        if (bucket == null || bucket.numel() != n) {
            if (bucket != null) {
                bucket.close();
            }
            bucket = cuda.zeros(DType.F32, (int) n).named("allreduce.bucket");
        }
        CudaDevice d = cuda.cudaDevice();
        DeviceBuffer b = cuda.deviceBuffer("allReduce", bucket);
        long lossAt = 4L * (n - 1);
        loss[0] = (float) (localLoss / group().size());
        d.write(b, lossAt, loss);
        long off = 0;
        for (Parameter p : grads) {
            long bytes = 4L * p.grad().numel();
            d.copy(cuda.deviceBuffer("allReduce", p.grad()), 0, b, off, bytes);
            off += bytes;
        }
        long at = ((CudaBuffer) b).address();
        comm.allReduceSumF32(at, at, n, cuda.stream());
        off = 0;
        for (Parameter p : grads) {
            long bytes = 4L * p.grad().numel();
            d.copy(b, off, cuda.deviceBuffer("allReduce", p.grad()), 0, bytes);
            off += bytes;
        }
        d.read(b, lossAt, loss);   // waits for the stream: the all-reduce and the copies are done
        record(t0, n);
        return loss[0];
    }

    @Override
    public void close() {
        try {
            comm.close();
        } finally {
            if (bucket != null) {
                bucket.close();
                bucket = null;
            }
        }
    }
}
