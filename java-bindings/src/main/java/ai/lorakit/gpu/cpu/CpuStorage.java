package ai.lorakit.gpu.cpu;

/**
 * The handle of a {@link CpuBackend} tensor: a {@code float[]} (F32, BF16, F16; BF16/F16 values are kept
 * rounded to their dtype) or an {@code int[]} (I32). {@link CpuBackend#release} drops the array so that a
 * closed tensor's memory is freed even while the {@link ai.lorakit.gpu.Tensor} object is still referenced.
 */
final class CpuStorage {
    /** Row-major values of a math tensor; null for I32 or after release. */
    float[] f;
    /** Row-major values of an I32 tensor; null for math tensors or after release. */
    int[] i;

    CpuStorage(float[] f, int[] i) {
        this.f = f;
        this.i = i;
    }
}
