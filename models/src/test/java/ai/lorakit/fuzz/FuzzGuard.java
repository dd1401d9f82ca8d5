package ai.lorakit.fuzz;

import java.lang.management.ManagementFactory;
import java.util.Arrays;

/**
 * The oracle of every fuzz target: one input either succeeds or fails with one of the error types lorakit documents
 * for that entry point, with a message; anything else (another exception type, an error, an empty message, a slow
 * input, or allocating far more than the input could justify) is a finding. Hangs are caught by each target's
 * {@code @Timeout}, which Jazzer also applies per input while fuzzing.
 */
final class FuzzGuard {

    /** Allocation allowed for one input: a fixed 32 MiB plus 64 bytes per input byte (fp8 -> fp32 copies and the like). */
    static final long FIXED_ALLOCATION = 32L << 20;
    static final long ALLOCATION_PER_BYTE = 64;
    /** Wall time of one input beyond which it counts as a hang in the making. */
    static final long MAX_NANOS = 5_000_000_000L;

    /** What the target does with one input. */
    @FunctionalInterface
    interface Body {
        void run() throws Exception;
    }

    private static final com.sun.management.ThreadMXBean THREADS =
            (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();

    private FuzzGuard() {
    }

    /**
     * Runs {@code body} for one input of {@code inputBytes}; a time or allocation overrun is measured again once,
     * so that one-time costs (class loading and Jazzer's instrumentation on the first input) are not findings.
     */
    @SafeVarargs
    static void check(int inputBytes, Body body, Class<? extends Throwable>... documented) {
        long[] cost = run(body, documented);
        long bound = FIXED_ALLOCATION + ALLOCATION_PER_BYTE * inputBytes;
        if (cost[0] > MAX_NANOS || cost[1] > bound) {
            cost = run(body, documented);
        }
        if (cost[0] > MAX_NANOS) {
            throw new AssertionError("input of " + inputBytes + " bytes took " + cost[0] / 1_000_000 + " ms");
        }
        if (cost[1] > bound) {
            throw new AssertionError("input of " + inputBytes + " bytes allocated " + cost[1] + " bytes (bound "
                    + bound + ")");
        }
    }

    /** {nanoseconds, bytes allocated by this thread}. */
    @SafeVarargs
    private static long[] run(Body body, Class<? extends Throwable>... documented) {
        long allocated0 = THREADS.getCurrentThreadAllocatedBytes();
        long t0 = System.nanoTime();
        try {
            body.run();
        } catch (Throwable t) {
            boolean ok = Arrays.stream(documented).anyMatch(c -> c.isInstance(t));
            if (!ok) {
                throw new AssertionError("undocumented failure " + t.getClass().getName() + ": " + t.getMessage(), t);
            }
            if (t.getMessage() == null || t.getMessage().isBlank()) {
                throw new AssertionError(t.getClass().getName() + " without a message", t);
            }
        }
        return new long[] {System.nanoTime() - t0, THREADS.getCurrentThreadAllocatedBytes() - allocated0};
    }
}
