/*
 * dora.cu -- DoRA at LoRA cost, fast tier (DoRA paper, Liu et al. 2024, sections 4.1 and 4.3; VARIANTS.md).
 *
 *   y = m ∘ (x W^T + s x A^T B^T) / n + bias,   n[o] = ||W_o + s (B A)_o||   (norm per output unit o)
 *
 * The norm never materialises B A (PERFORMANCE.md, "Limits"):
 *   n[o]^2 = ||W_o||^2 + 2s rowsum((W A^T) ∘ B)[o] + s^2 rowsum((B G) ∘ B)[o],   G = A A^T [r,r]
 * one read of W through W A^T (the shrink-shaped WMMA tile of common.cu, which also yields ||W_o||^2 from the
 * same pass) plus r x r work per row. The host computes it once per optimizer step and reuses it across
 * micro-batches; the norm is detached in the backward (paper 4.3), so no gradient flows through n.
 * The rescale g = m/n is folded into one elementwise pass over the K-concat GEMM's output Z (lora_fused.cu):
 * y = g ∘ Z + bias (or into cuBLASLt's per-row alpha vector, when the host uses that epilogue: g is written
 * for that purpose).
 *
 * Kernels (extern "C"):
 *
 *   dora_gram_fwd_kernel1(A, lda, in, r, G)
 *     G[i,j] = sum_k A[i,k] A[j,k]; A fp32 [r, lda] (the fp32 master), G fp32 [r,r].
 *     Launch: block (256,1,1), grid (r, r, 1): one block per entry, warp-shuffle reduction over in.
 *     Twin: gemm_fwd_kernel1 (A A^T), fp32 tolerance.
 *
 *   dora_norm_fwd_kernel2(W, ldw, A, lda, B, G, s, m, n, g, out, in, r)
 *     n[o] as above (fp32 [out], written); g[o] = m[o] / n[o] when g and m are not null.
 *     W bf16 [out, ldw] (first in columns; [out,in] orientation), A bf16 [r, lda] (e.g. the K-concat buffer's
 *     bottom rows), B fp32 [out, r], G fp32 [r, r] from dora_gram_fwd_kernel1, m fp32 [out].
 *     Requirements: r <= 64 (larger r writes NaN norms), in % 8 == 0, ldw % 8 == 0, lda % 8 == 0, W and A
 *     16-byte aligned.
 *     Launch: block (256,1,1), grid (1, ceil(out/128), 1). Epilogue: 8 lanes per row, shuffle reductions.
 *     Twin: Backend.doraWeightNorm's default composition on KernelBackend (rowDot, gemm_fwd_kernel1,
 *     axpby), compared at the bf16 tolerance.
 *
 *   dora_norm_fifo_fwd_kernel1(W, ldw, A, lda, B, s, n, out, in, r)
 *     The same n for the fan-in-fan-out layout (GPT-2 Conv1D): W bf16 [in, ldw] (first out columns; output unit o
 *     is column o), A fp32 [r, lda] (the master: no bf16 copy), B fp32 [out, r], n fp32 [out] written.
 *     Direct, not factored: n[o]^2 = sum_i (W[i,o] + s sum_j B[o,j] A[j,i])^2, one term per element of W, so
 *     (s B A)^T is formed one element at a time in registers and never stored, and a zero column gives n = 0
 *     exactly (the factored sum can cancel to a small negative). Cost: in x out x (r + 1) fp32 FMAs, the
 *     same count as the W A^T product the factored form needs, with W read once.
 *     Why a new kernel and not the [out,in] tile: the WMMA tile reads rows of W; a column of [in,out] W is
 *     strided by ldw. Here lane l of a block owns column c0 + l, so every warp reads 32 consecutive bf16 of one
 *     row of W (coalesced along out), and the 8 warps split the rows of W (i = warp, warp + 8, ...). A's next
 *     64 columns (A[:, i0 .. i0+63], [r,64]) and the block's 32 rows of B (as B^T [r,32]) are staged in shared
 *     memory: every lane of a warp reads the same A element (broadcast) and its own B column (no conflict).
 *     The 8 row partials of each column are summed in shared memory in a fixed order (deterministic).
 *     Requirements: 1 <= r <= 64 (larger r writes NaN norms, as kernel2), ldw >= out, lda >= in; no alignment
 *     requirement (scalar loads). Launch: block (256,1,1), grid (ceil(out/32), 1, 1).
 *     Twin: Backend.doraWeightNorm's default composition with fanInFanOut on KernelBackend, bf16 tolerance.
 *
 *   dora_scale_fwd_kernel1(Z, ldz, Y, ldy, g, bias, N, out)
 *     Y[n,o] = bf16(g[o] * Z[n,o] + bias[o]); Z, Y bf16 [N, ld] (first out columns; Y may be Z), g fp32 [out],
 *     bias fp32 [out] or null. 16-byte vectors when out, ldz, ldy are multiples of 8 and Z, Y are aligned,
 *     else scalars. Launch: block (256,1,1), grid (min(ceil(N*out/8/256), 65535),1,1), grid-stride.
 *     Twin: mul_row_vector_fwd_kernel1 + add_row_vector_fwd_kernel1, bf16 tolerance.
 *
 *   dora_scale_bwd_x_kernel1(dY, ldy, Z, ldz, g, n, dZ, lddz, dm, N, out)
 *     dZ[n,o] = bf16(g[o] * dY[n,o]) (written; may alias dY), dm[o] += sum_n dY[n,o] * Z[n,o] / n[o]
 *     (the gradient of the magnitude with n detached). dY, Z, dZ bf16 [N, ld]; g, n, dm fp32 [out].
 *     Launch: block (256,1,1), grid (ceil(out/256), R, 1) with R row slices (e.g. 2*SMs/ceil(out/256)): a block
 *     owns 256 columns (32 lanes x 8) and rows y*ceil(N/R).. of them, 8 rows at a time (one per warp); column
 *     sums are reduced in shared memory and added to dm with one atomic per column per block.
 *     Twin: mul_row_vector_fwd_kernel1 (dZ) and sum_rows_fwd_kernel1 of dY ∘ Z / n (dm), bf16 tolerance.
 */
#include "common.cu"

#define DORA_THREADS 256

/* ---------------------------------------------------------------------------------------------- A A^T */

extern "C" __global__ void __launch_bounds__(DORA_THREADS)
dora_gram_fwd_kernel1(const float* __restrict__ A,   /* [r, lda] */
                      int lda, int in, int r,
                      float* __restrict__ G) {       /* [r, r] */
    __shared__ float part[DORA_THREADS / 32];
    const int i = blockIdx.x;
    const int j = blockIdx.y;
    const float* ai = A + (long)i * lda;
    const float* aj = A + (long)j * lda;
    float acc = 0.0f;
    for (int k = threadIdx.x; k < in; k += blockDim.x) {
        acc = fmaf(ai[k], aj[k], acc);
    }
    acc = fast_warp_sum(acc);
    if ((threadIdx.x & 31) == 0) {
        part[threadIdx.x >> 5] = acc;
    }
    __syncthreads();
    if (threadIdx.x < 32) {
        float v = (int)threadIdx.x < (int)(blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
        v = fast_warp_sum(v);
        if (threadIdx.x == 0 && i < r && j < r) {
            G[(long)i * r + j] = v;
        }
    }
}

/* ----------------------------------------------------------------------------------------- column norm */

template <int NF>
static __device__ __forceinline__ void dora_norm(const __nv_bfloat16* W, int ldw, const __nv_bfloat16* A, int lda,
                                                 const float* __restrict__ B, const float* __restrict__ G,
                                                 float s, const float* m, float* nOut, float* g,
                                                 int out, int in, int r, unsigned char* smem) {
    const int row0 = blockIdx.y * FAST_SHRINK_BM;
    float sq[4];
    fast_shrink_tile<NF>(W, ldw, out, A, lda, r, in, row0, 0, smem, sq, nullptr, 0);
    const float* WA = reinterpret_cast<const float*>(smem);   /* [128][CLD]: (W A^T)[row0 + i, j] */
    const int t = threadIdx.x;
    const int q = t & 7;                                      /* this lane's share of the r columns */
#pragma unroll
    for (int ii = 0; ii < 4; ++ii) {
        const int i = fast_shrink_sq_row(t, ii);
        const int o = row0 + i;
        const float wsq = fast_group_sum(sq[ii], 8);
        float t1 = 0.0f;
        float t2 = 0.0f;
        if (o < out) {
            const float* bo = B + (long)o * r;
            for (int j = q; j < r; j += 8) {
                const float bj = __ldg(bo + j);
                t1 = fmaf(WA[i * FAST_SHRINK_CLD + j], bj, t1);
                float bg = 0.0f;                              /* (B G)[o, j] */
                for (int l = 0; l < r; ++l) {
                    bg = fmaf(__ldg(bo + l), __ldg(G + (long)l * r + j), bg);
                }
                t2 = fmaf(bg, bj, t2);
            }
        }
        t1 = fast_group_sum(t1, 8);
        t2 = fast_group_sum(t2, 8);
        if (o < out && q == 0) {
            const float nn = sqrtf(fmaxf(0.0f, wsq + 2.0f * s * t1 + s * s * t2));
            nOut[o] = nn;
            if (g != nullptr && m != nullptr) {
                g[o] = m[o] / nn;
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(DORA_THREADS)
dora_norm_fwd_kernel2(const __nv_bfloat16* __restrict__ W,   /* [out, ldw], first in columns */
                      int ldw,
                      const __nv_bfloat16* __restrict__ A,   /* [r, lda], first in columns */
                      int lda,
                      const float* __restrict__ B,           /* [out, r] */
                      const float* __restrict__ G,           /* [r, r] = A A^T */
                      float s,
                      const float* __restrict__ m,           /* [out] magnitude, or null */
                      float* __restrict__ n,                 /* [out] written */
                      float* __restrict__ g,                 /* [out] m / n written, or null */
                      int out, int in, int r) {
    __shared__ __align__(128) unsigned char smem[FAST_SHRINK_SMEM];
    if (r > 64) {   /* outside the kernel's contract: make the misuse visible instead of a silently wrong norm */
        for (int o = blockIdx.y * FAST_SHRINK_BM + threadIdx.x; o < min(out, (blockIdx.y + 1) * FAST_SHRINK_BM);
             o += blockDim.x) {
            n[o] = __int_as_float(0x7fc00000);
        }
        return;
    }
    switch (fast_shrink_nf(r)) {
        case 1: dora_norm<1>(W, ldw, A, lda, B, G, s, m, n, g, out, in, r, smem); break;
        case 2: dora_norm<2>(W, ldw, A, lda, B, G, s, m, n, g, out, in, r, smem); break;
        default: dora_norm<4>(W, ldw, A, lda, B, G, s, m, n, g, out, in, r, smem); break;
    }
}

/* ------------------------------------------------------------------ column norm, fan-in-fan-out W [in,out] */

#define DORA_FIFO_COLS 32                    /* output columns per block: one per lane */
#define DORA_FIFO_WARPS (DORA_THREADS / 32)  /* row lanes: warp w takes rows i0 + w, i0 + w + 8, ... */
#define DORA_FIFO_CHUNK 64                   /* rows of W (columns of A) staged per pass */
#define DORA_FIFO_MAX_R 64

extern "C" __global__ void __launch_bounds__(DORA_THREADS)
dora_norm_fifo_fwd_kernel1(const __nv_bfloat16* __restrict__ W,   /* [in, ldw], first out columns */
                           int ldw,
                           const float* __restrict__ A,           /* [r, lda], first in columns */
                           int lda,
                           const float* __restrict__ B,           /* [out, r] */
                           float s,
                           float* __restrict__ n,                 /* [out] written */
                           int out, int in, int r) {
    __shared__ float As[DORA_FIFO_MAX_R][DORA_FIFO_CHUNK + 1];    /* A[j, i0 + ii] */
    __shared__ float Bt[DORA_FIFO_MAX_R][DORA_FIFO_COLS + 1];     /* B[c0 + l, j] */
    __shared__ float part[DORA_FIFO_WARPS][DORA_FIFO_COLS];
    const int t = threadIdx.x;
    const int lane = t & 31;
    const int warp = t >> 5;
    const int c0 = blockIdx.x * DORA_FIFO_COLS;
    const int c = c0 + lane;
    if (r > DORA_FIFO_MAX_R) {   /* outside the contract: make the misuse visible (NaN) */
        if (warp == 0 && c < out) {
            n[c] = __int_as_float(0x7fc00000);
        }
        return;
    }
    for (int e = t; e < DORA_FIFO_COLS * r; e += DORA_THREADS) {   /* B rows c0.. are contiguous: coalesced */
        const int l = e / r;
        const int j = e - l * r;
        Bt[j][l] = (c0 + l < out) ? B[(long)(c0 + l) * r + j] : 0.0f;
    }
    float acc = 0.0f;
    for (int i0 = 0; i0 < in; i0 += DORA_FIFO_CHUNK) {
        __syncthreads();   /* the previous chunk's readers are done (and Bt is written before the first) */
        for (int e = t; e < r * DORA_FIFO_CHUNK; e += DORA_THREADS) {
            const int j = e / DORA_FIFO_CHUNK;
            const int ii = e - j * DORA_FIFO_CHUNK;
            As[j][ii] = (i0 + ii < in) ? A[(long)j * lda + i0 + ii] : 0.0f;
        }
        __syncthreads();
        const int rows = min(DORA_FIFO_CHUNK, in - i0);
        for (int ii = warp; ii < rows; ii += DORA_FIFO_WARPS) {
            float d = 0.0f;                                           /* (B A)[c, i0 + ii] */
            for (int j = 0; j < r; ++j) {
                d = fmaf(Bt[j][lane], As[j][ii], d);
            }
            const float w = c < out ? fast_bf16_to_f32(W[(long)(i0 + ii) * ldw + c]) : 0.0f;
            const float v = fmaf(s, d, w);                            /* (W + s (B A)^T)[i0 + ii, c] */
            acc = fmaf(v, v, acc);
        }
    }
    part[warp][lane] = acc;
    __syncthreads();
    if (warp == 0 && c < out) {
        float sum = 0.0f;
#pragma unroll
        for (int q = 0; q < DORA_FIFO_WARPS; ++q) {
            sum += part[q][lane];
        }
        n[c] = sqrtf(sum);
    }
}

/* ---------------------------------------------------------------------------------- rescale, forward */

extern "C" __global__ void __launch_bounds__(DORA_THREADS)
dora_scale_fwd_kernel1(const __nv_bfloat16* Z,   /* [N, ldz] (may equal Y) */
                       int ldz,
                       __nv_bfloat16* Y,         /* [N, ldy] */
                       int ldy,
                       const float* __restrict__ g,      /* [out] = m / n */
                       const float* __restrict__ bias,   /* [out] or null */
                       int N, int out) {
    const bool vec = (out % 8) == 0 && (ldz % 8) == 0 && (ldy % 8) == 0 && fast_aligned16(Z) && fast_aligned16(Y);
    const long stride = (long)gridDim.x * blockDim.x;
    if (vec) {
        const int cv = out / 8;
        const long total = (long)N * cv;
        for (long v = (long)blockIdx.x * blockDim.x + threadIdx.x; v < total; v += stride) {
            const long row = v / cv;
            const int c = (int)(v - row * cv) * 8;
            float z[8];
            fast_unpack8(fast_load8(Z + row * ldz + c), z);
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                z[e] = fmaf(__ldg(g + c + e), z[e], bias != nullptr ? __ldg(bias + c + e) : 0.0f);
            }
            fast_store8(Y + row * ldy + c, fast_pack8(z));
        }
    } else {
        const long total = (long)N * out;
        for (long e = (long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += stride) {
            const long row = e / out;
            const int c = (int)(e - row * out);
            const float z = fast_bf16_to_f32(Z[row * ldz + c]);
            Y[row * ldy + c] = fast_f32_to_bf16(fmaf(g[c], z, bias != nullptr ? bias[c] : 0.0f));
        }
    }
}

/* --------------------------------------------------------------------------------- rescale, backward */

extern "C" __global__ void __launch_bounds__(DORA_THREADS)
dora_scale_bwd_x_kernel1(const __nv_bfloat16* dY,           /* [N, ldy] */
                         int ldy,
                         const __nv_bfloat16* __restrict__ Z,   /* [N, ldz]: the GEMM output before the rescale */
                         int ldz,
                         const float* __restrict__ g,       /* [out] = m / n */
                         const float* __restrict__ n,       /* [out] the (detached) norm */
                         __nv_bfloat16* dZ,                 /* [N, lddz], may alias dY */
                         int lddz,
                         float* __restrict__ dm,            /* [out], accumulated */
                         int N, int out) {
    __shared__ float colSum[8][DORA_THREADS + 8];
    const int t = threadIdx.x;
    const int lane = t & 31;                  /* column vector of this thread */
    const int rl = t >> 5;                    /* row lane = warp */
    const int c0 = blockIdx.x * 256 + lane * 8;
    const int rowsPer = (N + gridDim.y - 1) / gridDim.y;
    const int rBegin = blockIdx.y * rowsPer;
    const int rEnd = min(N, rBegin + rowsPer);
    const bool vec = (out % 8) == 0 && (ldy % 8) == 0 && (ldz % 8) == 0 && (lddz % 8) == 0
                     && fast_aligned16(dY) && fast_aligned16(Z) && fast_aligned16(dZ);

    float gc[8];
    float acc[8];
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        gc[e] = (c0 + e < out) ? g[c0 + e] : 0.0f;
        acc[e] = 0.0f;
    }
    for (int row = rBegin + rl; row < rEnd; row += 8) {
        float dy[8];
        float z[8];
        if (vec && c0 < out) {
            fast_unpack8(fast_load8(dY + (long)row * ldy + c0), dy);
            fast_unpack8(fast_load8(Z + (long)row * ldz + c0), z);
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                acc[e] = fmaf(dy[e], z[e], acc[e]);
                dy[e] *= gc[e];
            }
            fast_store8(dZ + (long)row * lddz + c0, fast_pack8(dy));
        } else if (!vec) {
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                const int c = c0 + e;
                if (c < out) {
                    const float a = fast_bf16_to_f32(dY[(long)row * ldy + c]);
                    acc[e] = fmaf(a, fast_bf16_to_f32(Z[(long)row * ldz + c]), acc[e]);
                    dZ[(long)row * lddz + c] = fast_f32_to_bf16(gc[e] * a);
                }
            }
        }
    }
#pragma unroll
    for (int e = 0; e < 8; ++e) {
        colSum[rl][lane * 8 + e] = acc[e];
    }
    __syncthreads();
    const int c = blockIdx.x * 256 + t;
    if (c < out) {
        float sum = 0.0f;
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            sum += colSum[q][t];
        }
        atomicAdd(dm + c, sum / n[c]);
    }
}
