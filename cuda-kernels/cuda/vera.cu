/*
 * vera.cu -- VeRA's scaled shrink, fast tier (Kopiczko et al. 2024; VARIANTS.md).
 *
 *   y = x W^T + λb ∘ ((λd ∘ (x A_l^T)) B_l^T)      A_l = shared A [r, in_max][:, 0:in]  (frozen, shared)
 *                                                   B_l = shared B [out_max, r][0:out, :] (frozen, shared)
 *                                                   λd [r], λb [out] trainable (fp32)
 * The training path (bf16, no dropout) does not come here: it is LoRA's K-concat (lora_fused.cu) with A = A_l and
 * the scalings folded into one factor, B' = λb ∘ B_l ∘ λd^T, s = 1 (the adapters' VeraVariant); the λ gradients
 * follow from dB' = dY^T u by two [out,r] products. This kernel serves the unstaged forward (VeRA with dropout):
 *
 * Kernels (extern "C"):
 *
 *   vera_shrink_fwd_kernel1(X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r)
 *     u[N,r] = x A_l^T (fp32, may be null), V = bf16(λd ∘ u) at V + n*ldv + j (may be null).
 *     X bf16 [N, ldx], A bf16 [r, lda] (a bf16 copy of the shared A), λd fp32 [r].
 *     Requirements: in % 8 == 0, ldx % 8 == 0, lda % 8 == 0, X and A 16-byte aligned.
 *     Launch: block (256,1,1), grid (ceil(r/64), ceil(N/128), 1). WMMA bf16, fp32 accumulation. At VeRA's usual
 *     r = 256 the r-chunks of one row block run back to back (grid.x), so X comes from L2 after the first chunk.
 *     Twin: Backend.veraForward's default (gemm_fwd_kernel1 + mul_row_vector_fwd_kernel1), bf16 tolerance.
 */
#include "common.cu"

#define VERA_THREADS 256

template <int NF>
static __device__ __forceinline__ void vera_shrink(const __nv_bfloat16* X, int ldx, const __nv_bfloat16* A, int lda,
                                                   const float* __restrict__ lambdaD, float* u, __nv_bfloat16* V,
                                                   int ldv, int N, int in, int r, unsigned char* smem) {
    const int row0 = blockIdx.y * FAST_SHRINK_BM;
    const int col0 = blockIdx.x * 64;
    fast_shrink_tile<NF>(X, ldx, N, A, lda, r, in, row0, col0, smem, nullptr, nullptr, 0);
    const float* Cs = reinterpret_cast<const float*>(smem);
    const int width = min(16 * NF, r - col0);
    for (int e = threadIdx.x; e < FAST_SHRINK_BM * width; e += blockDim.x) {
        const int i = e / width;
        const int j = e - i * width;
        const int n = row0 + i;
        if (n < N) {
            const float v = Cs[i * FAST_SHRINK_CLD + j];
            if (u != nullptr) {
                u[(long)n * r + col0 + j] = v;
            }
            if (V != nullptr) {
                V[(long)n * ldv + col0 + j] = fast_f32_to_bf16(__ldg(lambdaD + col0 + j) * v);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(VERA_THREADS)
vera_shrink_fwd_kernel1(const __nv_bfloat16* __restrict__ X,   /* [N, ldx], first in columns */
                        int ldx,
                        const __nv_bfloat16* __restrict__ A,   /* [r, lda]: shared A, bf16 */
                        int lda,
                        const float* __restrict__ lambdaD,     /* [r] */
                        float* __restrict__ u,                 /* [N, r] fp32, or null */
                        __nv_bfloat16* V,                      /* [N, ldv] bf16, or null (may be X + in) */
                        int ldv, int N, int in, int r) {
    __shared__ __align__(128) unsigned char smem[FAST_SHRINK_SMEM];
    switch (fast_shrink_nf(r - blockIdx.x * 64)) {
        case 1: vera_shrink<1>(X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r, smem); break;
        case 2: vera_shrink<2>(X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r, smem); break;
        default: vera_shrink<4>(X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r, smem); break;
    }
}
