package ai.lorakit.gpu.cpu;

import java.util.concurrent.CountDownLatch;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinWorkerThread;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The CPU backend's one thread pool: a shared {@link ForkJoinPool} of daemon threads with parallelism =
 * availableProcessors (the common pool has one thread less, i.e. a single worker on 2 cores). In a parallel
 * loop the calling thread works too, so P threads keep P cores busy.
 */
public final class CpuParallel {
    private static final AtomicInteger IDS = new AtomicInteger();

    /** The shared pool. */
    public static final ForkJoinPool POOL = new ForkJoinPool(Runtime.getRuntime().availableProcessors(), p -> {
        var t = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(p);
        t.setName("lorakit-cpu-" + IDS.incrementAndGet());
        t.setDaemon(true);
        return t;
    }, null, false);

    private CpuParallel() {
    }

    /** Number of threads a parallel loop uses. */
    public static int threads() {
        return POOL.getParallelism();
    }

    /**
     * Work (elements x unit work) below which {@link #forRange} runs on the calling thread: waking a parked
     * worker costs some microseconds, about what a memory-bound pass over 10^5 floats saves.
     */
    public static final int MIN_PARALLEL = 1 << 17;
    /** Range boundaries are multiples of this many elements (a 64-byte line of floats): no false sharing. */
    private static final int ALIGN = 16;

    /** A body over a range [lo, hi) of elements. */
    @FunctionalInterface
    public interface Range {
        void run(int lo, int hi);
    }

    /**
     * body over [0, n) in contiguous ranges: one range on the calling thread when n * unitWork <
     * {@link #MIN_PARALLEL} or there is one thread, else four ranges per thread (run by
     * {@link #forEachChunk}), boundaries aligned to 16 elements. The split depends only on n, unitWork and the
     * pool size (fixed), never on timing; bodies must not combine results across ranges (elementwise work, or
     * reductions whose order lies inside one element).
     *
     * @param unitWork elements touched per unit of n (e.g. columns per row), to size the work
     */
    public static void forRange(int n, long unitWork, Range body) {
        int threads = threads();
        if (threads <= 1 || (long) n * unitWork < MIN_PARALLEL || n < 2 * ALIGN) {
            if (n > 0) {
                body.run(0, n);
            }
            return;
        }
        int units = (n + ALIGN - 1) / ALIGN;
        int chunks = Math.min(4 * threads, units);   // a few per thread: a late worker still gets a share
        forEachChunk(chunks, c -> {
            int lo = (int) Math.min(n, (long) units * c / chunks * ALIGN);
            int hi = (int) Math.min(n, (long) units * (c + 1) / chunks * ALIGN);
            if (lo < hi) {
                body.run(lo, hi);
            }
        });
    }

    /** A body over chunk indices. */
    @FunctionalInterface
    public interface Chunk {
        void run(int chunk);
    }

    /**
     * Runs body(0..chunks-1) and returns when all are done, rethrowing the first failure (lowest chunk index).
     * The calling thread and up to threads-1 pool workers claim chunk indices from a shared counter, so a
     * worker that the OS schedules late (other processes on the cores) costs nothing: the caller runs the
     * unclaimed chunks itself. Which thread runs a chunk never matters to the results (chunks write disjoint
     * outputs). Runs inline when chunks <= 1, with one thread, or when called from a pool thread.
     */
    public static void forEachChunk(int chunks, Chunk body) {
        int helpers = Math.min(threads(), chunks) - 1;
        if (helpers <= 0 || Thread.currentThread() instanceof ForkJoinWorkerThread) {
            for (int c = 0; c < chunks; c++) {
                body.run(c);
            }
            return;
        }
        AtomicInteger next = new AtomicInteger();
        CountDownLatch left = new CountDownLatch(chunks);
        Throwable[] failures = new Throwable[chunks];   // the original exceptions, visible after await
        Runnable claim = () -> {
            for (int c; (c = next.getAndIncrement()) < chunks; ) {
                try {
                    body.run(c);
                } catch (RuntimeException | Error e) {
                    failures[c] = e;
                } finally {
                    left.countDown();
                }
            }
        };
        for (int i = 0; i < helpers; i++) {
            POOL.execute(claim);
        }
        claim.run();
        boolean interrupted = false;
        while (true) {
            try {
                left.await();   // chunks still running on workers write into the caller's arrays: always wait
                break;
            } catch (InterruptedException e) {
                interrupted = true;
            }
        }
        if (interrupted) {
            Thread.currentThread().interrupt();
        }
        for (Throwable f : failures) {
            if (f instanceof RuntimeException re) {
                throw re;
            }
            if (f instanceof Error er) {
                throw er;
            }
        }
    }
}
