package ai.lorakit.gpu.cpu;

import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;
import java.util.concurrent.atomic.AtomicInteger;

/**
 * The CPU backend's one thread pool: a shared {@link ForkJoinPool} of daemon threads with parallelism =
 * availableProcessors (the common pool has one thread less, i.e. a single worker on 2 cores). A parallel
 * loop runs its first chunk on the calling thread and the others on the pool, so P chunks keep P cores busy.
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

    /** A body over chunk indices. */
    @FunctionalInterface
    public interface Chunk {
        void run(int chunk);
    }

    /**
     * Runs body(0..chunks-1): chunk 0 on the calling thread, the others on the pool; returns when all are done
     * and rethrows the first failure. Runs inline when chunks <= 1 or when called from a pool thread.
     */
    public static void forEachChunk(int chunks, Chunk body) {
        if (chunks <= 1 || Thread.currentThread() instanceof java.util.concurrent.ForkJoinWorkerThread) {
            for (int c = 0; c < chunks; c++) {
                body.run(c);
            }
            return;
        }
        ForkJoinTask<?>[] tasks = new ForkJoinTask<?>[chunks];
        Throwable[] failures = new Throwable[chunks];   // the original exceptions (join would wrap them)
        for (int c = 1; c < chunks; c++) {
            int cc = c;
            tasks[c] = POOL.submit(() -> {
                try {
                    body.run(cc);
                } catch (RuntimeException | Error e) {
                    failures[cc] = e;
                }
            });
        }
        try {
            body.run(0);
        } catch (RuntimeException | Error e) {
            failures[0] = e;
        }
        for (int c = 1; c < chunks; c++) {
            tasks[c].join();   // happens-before: failures[c] is visible after join
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
