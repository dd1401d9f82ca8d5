/*
 * vera.cu -- VeRA's scaled projections, fast tier (Kopiczko et al. 2024; VARIANTS.md).
 *
 *   y = x W^T + λb ∘ ((λd ∘ (x A_l^T)) B_l^T)      A_l = shared A [r, in_max][:, 0:in]  (frozen, shared)
 *                                                   B_l = shared B [out_max, r][0:out, :] (frozen, shared)
 *                                                   λd [r], λb [out] trainable (fp32)
 * It rides the same K-concat GEMM as LoRA (lora_fused.cu), with the scalings folded into the margins:
 *   Xm margin  V = λd ∘ (x A_l^T)            (vera_shrink_fwd_kernel1; u = x A_l^T kept in fp32)
 *   Wm margin  Wm[o, in+j]  = λb[o] B_l[o,j]  (vera_margin_fwd_kernel1, after every optimizer step)
 *              Wm[out+j, k] = λd[j] A_l[j,k]  (so dX = [dY | dV] [W ; λd∘A_l] is one GEMM)
 *   Y = Xm Wm^T (K = in + r) = x W^T + V (λb∘B_l)^T.
 * Backward: lora_linear_bwd_x_kernel1 with sB := Wm's margin and S := V, s = 1, reading dY once, gives
 *   dV = dY (λb∘B_l) [N,r] and M = dY^T V [out,r] (into a zeroed scratch); then
 *   dλd[j] += sum_n dV[n,j] u[n,j]            vera_lambda_bwd_x_kernel1
 *   dλb[o] += sum_j M[o,j] B_l[o,j]           vera_lambda_b_bwd_x_kernel1   (= sum_n dY[n,o] (V B_l^T)[n,o])
 * At VeRA's usual r = 256 the r-chunks of one row block run back to back (grid.x), so X and dY come from L2
 * after the first chunk.
 *
 * Kernels (extern "C"):
 *
 *   vera_shrink_fwd_kernel1(X, ldx, A, lda, lambdaD, u, V, ldv, N, in, r)
 *     u[N,r] = x A_l^T (fp32, may be null), V = bf16(λd ∘ u) at V + n*ldv + j (may be null; normally Xm + in).
 *     X bf16 [N, ldx], A bf16 [r, lda] (a bf16 copy of the shared A), λd fp32 [r].
 *     Requirements: in % 8 == 0, ldx % 8 == 0, lda % 8 == 0, X and A 16-byte aligned.
 *     Launch: block (256,1,1), grid (ceil(r/64), ceil(N/128), 1). WMMA bf16, fp32 accumulation.
 *     Twin: Backend.veraForward's default (gemm_fwd_kernel1 + mul_row_vector_fwd_kernel1), bf16 tolerance.
 *
 *   vera_margin_fwd_kernel1(A, lda, B, lambdaD, lambdaB, Wm, ldw, out, in, r)
 *     Wm[o, in+j] = bf16(λb[o] B[o,j]); Wm[out+j, k] = bf16(λd[j] A[j,k]). A fp32 [r, lda], B fp32 [>= out, r].
 *     Launch: block (256,1,1), grid (min(ceil((out*r + r*in)/256), 65535),1,1), grid-stride.
 *
 *   vera_lambda_bwd_x_kernel1(dV, u, dLambdaD, N, r)
 *     dλd[j] += sum_n dV[n,j] * u[n,j]; dV, u fp32 [N,r].
 *     Launch: block (256,1,1), grid (ceil(r/32), R, 1) with R row slices: warps read 32 consecutive columns of
 *     8 rows at a time; per-block sums go to dλd with one atomic per column.
 *     Twin: mul_fwd_kernel1 + sum_rows_fwd_kernel1, fp32 tolerance.
 *
 *   vera_lambda_b_bwd_x_kernel1(M, B, dLambdaB, out, r)
 *     dλb[o] += sum_j M[o,j] * B[o,j]; M fp32 [out,r], B fp32 [>= out, r].
 *     Launch: block (256,1,1), grid (ceil(out/8),1,1): one warp per row, shuffle sum.
 *     Twin: row_dot_fwd_kernel1, fp32 tolerance.
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

extern "C" __global__ void vera_margin_fwd_kernel1(const float* __restrict__ A,        /* [r, lda] shared A */
                                                   int lda,
                                                   const float* __restrict__ B,        /* [>= out, r] shared B */
                                                   const float* __restrict__ lambdaD,  /* [r] */
                                                   const float* __restrict__ lambdaB,  /* [out] */
                                                   __nv_bfloat16* __restrict__ Wm,     /* [out + r, ldw] */
                                                   int ldw, int out, int in, int r) {
    const long top = (long)out * r;
    const long total = top + (long)r * in;
    for (long e = (long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        if (e < top) {
            const long o = e / r;
            const long j = e - o * r;
            Wm[o * ldw + in + j] = fast_f32_to_bf16(lambdaB[o] * B[e]);
        } else {
            const long f = e - top;
            const long j = f / in;
            const long k = f - j * in;
            Wm[((long)out + j) * ldw + k] = fast_f32_to_bf16(lambdaD[j] * A[j * lda + k]);
        }
    }
}

extern "C" __global__ void __launch_bounds__(VERA_THREADS)
vera_lambda_bwd_x_kernel1(const float* __restrict__ dV,   /* [N, r] */
                          const float* __restrict__ u,    /* [N, r] */
                          float* __restrict__ dLambdaD,   /* [r], accumulated */
                          int N, int r) {
    __shared__ float part[8][33];
    const int lane = threadIdx.x & 31;
    const int rl = threadIdx.x >> 5;
    const int j = blockIdx.x * 32 + lane;
    const int rowsPer = (N + gridDim.y - 1) / gridDim.y;
    const int rBegin = blockIdx.y * rowsPer;
    const int rEnd = min(N, rBegin + rowsPer);
    float acc = 0.0f;
    if (j < r) {
        for (int n = rBegin + rl; n < rEnd; n += 8) {
            acc = fmaf(dV[(long)n * r + j], u[(long)n * r + j], acc);
        }
    }
    part[rl][lane] = acc;
    __syncthreads();
    if (rl == 0 && j < r) {
        float sum = 0.0f;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            sum += part[q][lane];
        }
        atomicAdd(dLambdaD + j, sum);
    }
}

extern "C" __global__ void __launch_bounds__(VERA_THREADS)
vera_lambda_b_bwd_x_kernel1(const float* __restrict__ M,   /* [out, r] = dY^T V */
                            const float* __restrict__ B,   /* [>= out, r] shared B */
                            float* __restrict__ dLambdaB,  /* [out], accumulated */
                            int out, int r) {
    const int o = blockIdx.x * 8 + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    float acc = 0.0f;
    if (o < out) {
        for (int j = lane; j < r; j += 32) {
            acc = fmaf(M[(long)o * r + j], B[(long)o * r + j], acc);
        }
    }
    acc = fast_warp_sum(acc);
    if (o < out && lane == 0) {
        dLambdaB[o] += acc;
    }
}
