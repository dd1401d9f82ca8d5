package ai.lorakit.gpu;

/**
 * A device allocation failed for lack of memory (CUDA_ERROR_OUT_OF_MEMORY, OpenCL's
 * CL_MEM_OBJECT_ALLOCATION_FAILURE / CL_OUT_OF_RESOURCES). The message names what was allocated, its size, the
 * device's free and total memory (free is unknown on OpenCL, which cannot tell) and the remedy. Nothing was
 * allocated: the device's state is as before the call.
 */
public final class DeviceOutOfMemoryException extends DeviceException {

    private final long bytes;
    private final long freeBytes;
    private final long totalBytes;

    /**
     * @param cause     the failed native call's exception (call and status)
     * @param what      what was being allocated, e.g. "a device buffer"
     * @param freeBytes the device's free memory, or -1 when the API cannot tell
     */
    public DeviceOutOfMemoryException(DeviceException cause, String what, long bytes, String device, long freeBytes,
                                      long totalBytes) {
        super(cause.call(), cause.status(), name(cause), "\nout of device memory allocating " + what + " of " + bytes
                + " bytes (" + mib(bytes) + " MiB) on " + device + ": "
                + (freeBytes < 0 ? "free memory unknown" : mib(freeBytes) + " MiB free") + " of " + mib(totalBytes)
                + " MiB total. Use a smaller --batch or --seq-len, or --precision bf16 (bf16 base weights and"
                + " activations need about half the memory).");
        initCause(cause);
        this.bytes = bytes;
        this.freeBytes = freeBytes;
        this.totalBytes = totalBytes;
    }

    private static String name(DeviceException e) {
        // "cuMemAlloc(64 bytes) failed: CUDA_ERROR_OUT_OF_MEMORY (2) ..." -> the status name
        String m = e.getMessage();
        int at = m.indexOf(" failed: ");
        int end = m.indexOf(" (", at + 9);
        return at >= 0 && end > at ? m.substring(at + 9, end) : "status " + e.status();
    }

    private static String mib(long bytes) {
        return String.format(java.util.Locale.ROOT, "%.1f", bytes / 1048576.0);
    }

    public long bytes() {
        return bytes;
    }

    /** The device's free memory at the failure, or -1 when unknown. */
    public long freeBytes() {
        return freeBytes;
    }

    public long totalBytes() {
        return totalBytes;
    }
}
