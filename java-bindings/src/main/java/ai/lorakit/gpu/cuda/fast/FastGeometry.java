package ai.lorakit.gpu.cuda.fast;

import ai.lorakit.gpu.Dim3;

/**
 * Launch geometry of the fast-tier kernels, exactly as each cuda-kernels/cuda/*.cu header documents it (one method per
 * kernel family; every kernel runs 256-thread blocks). Kept apart from the tier so tests can pin the numbers.
 */
public final class FastGeometry {
    /** Threads per block of every fast kernel. */
    public static final int THREADS = 256;
    /** Rows of X per block of the WMMA shrink tile (common.cu FAST_SHRINK_BM). */
    public static final int SHRINK_ROWS = 128;
    /** Columns of r per block of the shrink tile. */
    public static final int SHRINK_COLS = 64;
    /** CUDA's limit on grid.x of a grid-stride kernel as the headers use it, and on grid.y / grid.z. */
    public static final int MAX_GRID = 65535;

    private FastGeometry() {
    }

    static int ceilDiv(long a, long b) {
        return (int) ((a + b - 1) / b);
    }

    /** The block of every fast kernel: (256,1,1). */
    public static Dim3 block() {
        return Dim3.of(THREADS);
    }

    /** adamw.cu adamw_fwd_kernel2: grid (min(ceil(n/1024), 65535),1,1). */
    public static Dim3 adamw(long n) {
        return Dim3.of((int) Math.max(1, Math.min(ceilDiv(n, 1024), MAX_GRID)));
    }

    /**
     * adamw_multi_fwd_kernel2: grid (min(ceil(max numel / 256), 1024), tensors, 1); each block row strides over its
     * tensor.
     */
    public static Dim3 adamwMulti(long maxNumel, int tensors) {
        return new Dim3(Math.max(1, Math.min(1024, ceilDiv(maxNumel, THREADS))), tensors, 1);
    }

    /** lora_fused.cu lora_shrink_fwd_kernel2 and vera.cu vera_shrink_fwd_kernel1: grid (ceil(r/64), ceil(N/128), 1). */
    public static Dim3 shrink(int n, int r) {
        return Dim3.of(ceilDiv(r, SHRINK_COLS), ceilDiv(n, SHRINK_ROWS), 1);
    }

    /** dora.cu dora_gram_fwd_kernel1: grid (r, r, 1), one block per entry of A A^T. */
    public static Dim3 doraGram(int r) {
        return Dim3.of(r, r, 1);
    }

    /** dora.cu dora_norm_fwd_kernel2: grid (1, ceil(out/128), 1). */
    public static Dim3 doraNorm(int out) {
        return Dim3.of(1, ceilDiv(out, SHRINK_ROWS), 1);
    }

    /** dora.cu dora_scale_fwd_kernel1: grid (min(ceil(N*out/8/256), 65535),1,1), grid-stride over 8-element vectors. */
    public static Dim3 doraScale(int n, int out) {
        return Dim3.of((int) Math.max(1, Math.min(ceilDiv(ceilDiv((long) n * out, 8), THREADS), MAX_GRID)));
    }

    /**
     * dora.cu dora_scale_bwd_x_kernel1: grid (ceil(out/256), R, 1) with R = min(ceil(N/64), 1024) row slices (a
     * block's 8 warps walk 8 rows of its slice at a time; one atomic per column per block into dm).
     */
    public static Dim3 doraScaleBwd(int n, int out) {
        return Dim3.of(ceilDiv(out, 256), Math.max(1, Math.min(ceilDiv(n, 64), 1024)), 1);
    }

    /** Output columns per block of dora.cu dora_norm_fifo_fwd_kernel1 (DORA_FIFO_COLS). */
    public static final int DORA_FIFO_COLS = 32;

    /** dora.cu dora_norm_fifo_fwd_kernel1: grid (ceil(out/32), 1, 1). */
    public static Dim3 doraNormFifo(int out) {
        return Dim3.of(ceilDiv(out, DORA_FIFO_COLS), 1, 1);
    }

    /** delta_lora.cu delta_lora_update_fwd_kernel1: grid (ceil(cols/128), ceil(rows/64), 1) for W [rows, cols]. */
    public static Dim3 deltaLora(int rows, int cols) {
        return Dim3.of(ceilDiv(cols, 128), ceilDiv(rows, 64), 1);
    }

    /** lora_margin_fwd_kernel1: grid (min(ceil(total/256), 65535),1,1). */
    public static Dim3 margin(long total) {
        return Dim3.of((int) Math.max(1, Math.min(ceilDiv(total, THREADS), MAX_GRID)));
    }
}
