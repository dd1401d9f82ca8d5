// Launchers of the LoRA-family portable kernels (cuda-kernels/portable/*.kc, compiled here through kcompat.h).
#include "internal.h"

#include "kcompat.h"
#include "lora_shrink.kc"
#include "lora_expand.kc"

namespace {

// CUDA's grid y (and z) limit; the kernels put output columns on y.
constexpr int kMaxGridY = 65535;

int check_grid_y(const char* fn, const char* arg, int cols, int tile) {
    const long tiles = (static_cast<long>(cols) + tile - 1) / tile;
    if (tiles > kMaxGridY) {
        return lorakit::fail(LORAKIT_ERR_INVALID, "%s: %s = %d is too large (at most %d)", fn, arg, cols,
                             kMaxGridY * tile);
    }
    return LORAKIT_OK;
}

// A <<<>>> launch reports its failure (bad configuration, no driver, ...) through cudaGetLastError, which also
// clears it.
int check_launch(const char* fn, const char* kernel) {
    return lorakit::check_cuda(fn, kernel, cudaGetLastError());
}

unsigned int tiles(int n, int tile) {
    return static_cast<unsigned int>((static_cast<long>(n) + tile - 1) / tile);
}

}  // namespace

extern "C" int lorakit_lora_shrink_f32(const float* x, const float* A, float* u, int N, int in, int r,
                                       void* stream) {
    static const char* fn = "lorakit_lora_shrink_f32";
    LORAKIT_TRY(lorakit::check_not_null(fn, "x", x));
    LORAKIT_TRY(lorakit::check_not_null(fn, "A", A));
    LORAKIT_TRY(lorakit::check_not_null(fn, "u", u));
    LORAKIT_TRY(lorakit::check_positive(fn, "N", N));
    LORAKIT_TRY(lorakit::check_positive(fn, "in", in));
    LORAKIT_TRY(lorakit::check_positive(fn, "r", r));
    LORAKIT_TRY(check_grid_y(fn, "r", r, LORA_SHRINK_TILE));

    (void)cudaGetLastError();  // drop a stale non-sticky error so it is not blamed on this launch
    const dim3 block(LORA_SHRINK_TILE, LORA_SHRINK_TILE, 1);
    const dim3 grid(tiles(N, LORA_SHRINK_TILE), tiles(r, LORA_SHRINK_TILE), 1);
    lora_shrink_fwd_kernel1<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(x, A, u, N, in, r);
    return check_launch(fn, "launch of lora_shrink_fwd_kernel1");
}

extern "C" int lorakit_lora_expand_f32(const float* u, const float* B, float* y, int N, int r, int out, float s,
                                       void* stream) {
    static const char* fn = "lorakit_lora_expand_f32";
    LORAKIT_TRY(lorakit::check_not_null(fn, "u", u));
    LORAKIT_TRY(lorakit::check_not_null(fn, "B", B));
    LORAKIT_TRY(lorakit::check_not_null(fn, "y", y));
    LORAKIT_TRY(lorakit::check_positive(fn, "N", N));
    LORAKIT_TRY(lorakit::check_positive(fn, "r", r));
    LORAKIT_TRY(lorakit::check_positive(fn, "out", out));
    LORAKIT_TRY(check_grid_y(fn, "out", out, LORA_EXPAND_TILE));

    (void)cudaGetLastError();  // drop a stale non-sticky error so it is not blamed on this launch
    const dim3 block(LORA_EXPAND_TILE, LORA_EXPAND_TILE, 1);
    const dim3 grid(tiles(N, LORA_EXPAND_TILE), tiles(out, LORA_EXPAND_TILE), 1);
    lora_expand_fwd_kernel1<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(u, B, y, N, r, out, s);
    return check_launch(fn, "launch of lora_expand_fwd_kernel1");
}

extern "C" int lorakit_bench_launch_shrink_f32(int count, const float* x, const float* A, float* u, int N, int in,
                                               int r, void* stream) {
    static const char* fn = "lorakit_bench_launch_shrink_f32";
    LORAKIT_TRY(lorakit::check_positive(fn, "count", count));
    LORAKIT_TRY(lorakit::check_not_null(fn, "x", x));
    LORAKIT_TRY(lorakit::check_not_null(fn, "A", A));
    LORAKIT_TRY(lorakit::check_not_null(fn, "u", u));
    LORAKIT_TRY(lorakit::check_positive(fn, "N", N));
    LORAKIT_TRY(lorakit::check_positive(fn, "in", in));
    LORAKIT_TRY(lorakit::check_positive(fn, "r", r));
    LORAKIT_TRY(check_grid_y(fn, "r", r, LORA_SHRINK_TILE));

    (void)cudaGetLastError();
    const dim3 block(LORA_SHRINK_TILE, LORA_SHRINK_TILE, 1);
    const dim3 grid(tiles(N, LORA_SHRINK_TILE), tiles(r, LORA_SHRINK_TILE), 1);
    for (int i = 0; i < count; ++i) {
        lora_shrink_fwd_kernel1<<<grid, block, 0, static_cast<cudaStream_t>(stream)>>>(x, A, u, N, in, r);
        LORAKIT_TRY(check_launch(fn, "launch of lora_shrink_fwd_kernel1"));
    }
    return LORAKIT_OK;
}
