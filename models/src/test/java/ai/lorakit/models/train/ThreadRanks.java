package ai.lorakit.models.train;

import ai.lorakit.gpu.dist.ProcessGroup;

import java.util.concurrent.BrokenBarrierException;
import java.util.concurrent.CyclicBarrier;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.TimeoutException;

/**
 * Test fixture: W ranks as W threads of one JVM, a {@link ProcessGroup} without MPI. Each collective deposits the
 * rank's array, waits for all, and every rank sums the deposits in rank order (so the result is the same bits on
 * every rank, like MPI's). {@link #ranks} makes the W views of one group.
 */
final class ThreadRanks implements ProcessGroup {
    private final Shared shared;
    private final int rank;

    private static final class Shared {
        final int size;
        final CyclicBarrier barrier;
        final Object[] deposits;

        Shared(int size) {
            this.size = size;
            this.barrier = new CyclicBarrier(size);
            this.deposits = new Object[size];
        }
    }

    private ThreadRanks(Shared shared, int rank) {
        this.shared = shared;
        this.rank = rank;
    }

    static ThreadRanks[] ranks(int size) {
        Shared s = new Shared(size);
        ThreadRanks[] out = new ThreadRanks[size];
        for (int r = 0; r < size; r++) {
            out[r] = new ThreadRanks(s, r);
        }
        return out;
    }

    @Override
    public int rank() {
        return rank;
    }

    @Override
    public int size() {
        return shared.size;
    }

    private void await() {
        try {
            shared.barrier.await(120, TimeUnit.SECONDS);
        } catch (InterruptedException | BrokenBarrierException | TimeoutException e) {
            throw new IllegalStateException("rank " + rank + ": another rank did not reach the collective", e);
        }
    }

    @Override
    public void allReduceSum(float[] v, int off, int len) {
        float[] mine = java.util.Arrays.copyOfRange(v, off, off + len);
        shared.deposits[rank] = mine;
        await();
        for (int i = 0; i < len; i++) {
            float sum = 0;
            for (int r = 0; r < shared.size; r++) {
                sum += ((float[]) shared.deposits[r])[i];
            }
            v[off + i] = sum;
        }
        await();
    }

    @Override
    public void allReduceSum(double[] v) {
        shared.deposits[rank] = v.clone();
        await();
        for (int i = 0; i < v.length; i++) {
            double sum = 0;
            for (int r = 0; r < shared.size; r++) {
                sum += ((double[]) shared.deposits[r])[i];
            }
            v[i] = sum;
        }
        await();
    }

    @Override
    public void broadcast(byte[] b, int root) {
        shared.deposits[rank] = b.clone();
        await();
        System.arraycopy((byte[]) shared.deposits[root], 0, b, 0, b.length);
        await();
    }

    @Override
    public void barrier() {
        await();
    }

    @Override
    public void abort(int code) {
        shared.barrier.reset();
    }

    @Override
    public String describe() {
        return "thread rank " + rank + " of " + shared.size;
    }

    @Override
    public void close() {
    }
}
