package ai.lorakit.gpu.cuda;

import java.util.function.Supplier;

/**
 * A backend's "why not" computed once per JVM (opening a CUDA device costs a context creation, and devices do not
 * come and go while a JVM runs). Null means available.
 */
public final class CachedReason {
    private final Supplier<String> compute;
    private boolean known;
    private String reason;

    public CachedReason(Supplier<String> compute) {
        this.compute = compute;
    }

    public synchronized String get() {
        if (!known) {
            reason = compute.get();
            known = true;
        }
        return reason;
    }
}
