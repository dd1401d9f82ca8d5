package ai.lorakit.bench.variants;

import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.lang.management.MemoryMXBean;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Peak memory of a stretch of work, sampled every {@code periodMs} by a daemon thread: heap used
 * ({@link MemoryMXBean#getHeapMemoryUsage()}; the CPU backend keeps tensors in float[] on the heap, so this is
 * the training state plus garbage not yet collected) and the process's resident set (VmRSS of
 * /proc/self/status: heap committed, JIT, metaspace, native buffers). Sampling can miss a short spike.
 */
final class MemorySampler implements AutoCloseable {

    private final Thread thread;
    private volatile boolean running = true;
    private volatile long peakHeap;
    private volatile long peakRss;

    private MemorySampler(int periodMs) {
        MemoryMXBean mx = ManagementFactory.getMemoryMXBean();
        thread = new Thread(() -> {
            while (running) {
                sample(mx);
                try {
                    Thread.sleep(periodMs);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }, "memory-sampler");
        thread.setDaemon(true);
        sample(mx);
    }

    /** Runs a full GC first (so the peak is not inflated by the previous run's garbage), then starts sampling. */
    static MemorySampler start(int periodMs) {
        System.gc();
        MemorySampler s = new MemorySampler(periodMs);
        s.thread.start();
        return s;
    }

    private void sample(MemoryMXBean mx) {
        long h = mx.getHeapMemoryUsage().getUsed();
        if (h > peakHeap) {
            peakHeap = h;
        }
        long r = rssBytes();
        if (r > peakRss) {
            peakRss = r;
        }
    }

    /** VmRSS of this process in bytes (0 where /proc is missing). */
    static long rssBytes() {
        return statusKb("VmRSS:") * 1024;
    }

    /** A "Name:   123 kB" line of /proc/self/status, in kB (0 if absent). */
    static long statusKb(String key) {
        try {
            for (String line : Files.readAllLines(Path.of("/proc/self/status"))) {
                if (line.startsWith(key)) {
                    return Long.parseLong(line.substring(key.length()).trim().split("\\s+")[0]);
                }
            }
        } catch (IOException | RuntimeException e) {
            return 0;
        }
        return 0;
    }

    double peakHeapMiB() {
        return peakHeap / 1048576.0;
    }

    double peakRssMiB() {
        return peakRss / 1048576.0;
    }

    @Override
    public void close() {
        running = false;
        thread.interrupt();
        try {
            thread.join(1000);
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }
}
