package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.DType;

/**
 * What the 16-byte vector loads of the fast kernels need (cuda-kernels/cuda/common.cu, fast_load8 and the WMMA shrink
 * tile): every base pointer 16-byte aligned and every leading dimension a whole number of 16-byte vectors, so that
 * each row start stays aligned. Checked on the host before a vector kernel is chosen (a misaligned vector access is
 * CUDA_ERROR_MISALIGNED_ADDRESS, which leaves the context unusable).
 */
final class VectorAlignment {
    /** Bytes of one vector access. */
    static final int BYTES = 16;

    private VectorAlignment() {
    }

    /** Whether a device address is 16-byte aligned. */
    static boolean aligned(long address) {
        return (address & (BYTES - 1)) == 0;
    }

    /** Whether a pitch of {@code ld} elements of {@code dtype} is a multiple of 16 bytes (and positive). */
    static boolean pitch(int ld, DType dtype) {
        return ld > 0 && ((long) ld * dtype.bytes()) % BYTES == 0;
    }
}
