/*
 * common.cu -- device helpers shared by the fast-tier files (no kernels here).
 *
 * Every cuda/*.cu includes this file ("common.cu", found next to the including file); the include guard makes the
 * copies that build.sh's single translation unit sees harmless. It is a .cu (not a .cuh) so that build.sh's
 * up-to-date check, which watches cuda/*.cu, rebuilds the fatbin when it changes.
 *
 * Contents (prefix fast_):
 *   bf16 <-> fp32 (round to nearest even, as kcompat.h's f32_to_bf16, through cuda_bf16.h's intrinsics),
 *   16-byte vectors of 8 bf16 (fast_bf16x8) with load/store/convert helpers,
 *   warp sums through shuffles,
 *   fast_atomic_add4: four fp32 atomics, one vector red.global.add.v4.f32 on sm_90.
 *   fast_shrink_tile<NF>: the WMMA tile loop of the shrink-shaped products (LoRA shrink X A^T, VeRA's shrink,
 *   DoRA's W A^T): a block of 256 threads computes a [128 x 16*NF] tile of X[N,K] * A[R,K]^T with bf16 operands
 *   and fp32 accumulation, leaving the tile in shared memory for the caller's epilogue; optionally it also
 *   copies the X it streams to a second buffer (the K-concat pack of lora_fused.cu).
 */
#ifndef LORAKIT_FAST_COMMON_CU
#define LORAKIT_FAST_COMMON_CU

#include <cuda_bf16.h>
#include <mma.h>
#include <stdint.h>

/* ------------------------------------------------------------------------------------------------ bf16 */

__device__ __forceinline__ float fast_bf16_to_f32(__nv_bfloat16 h) {
    return __bfloat162float(h);
}

__device__ __forceinline__ __nv_bfloat16 fast_f32_to_bf16(float f) {
    return __float2bfloat16_rn(f);   /* round to nearest even; NaN stays NaN */
}

/* Eight bf16 in 16 bytes: the unit of every coalesced activation/weight access in the fast tier. */
struct __align__(16) fast_bf16x8 {
    __nv_bfloat162 h[4];
};

/* Through uint4, so that nvcc emits ONE 16-byte access (ld.global.v4 / st.global.v4): copying the struct itself
 * compiles to four 4-byte accesses. */
__device__ __forceinline__ fast_bf16x8 fast_load8(const __nv_bfloat16* p) {
    const uint4 raw = *reinterpret_cast<const uint4*>(p);
    fast_bf16x8 v;
    memcpy(&v, &raw, sizeof(v));
    return v;
}

__device__ __forceinline__ void fast_store8(__nv_bfloat16* p, fast_bf16x8 v) {
    uint4 raw;
    memcpy(&raw, &v, sizeof(raw));
    *reinterpret_cast<uint4*>(p) = raw;
}

__device__ __forceinline__ fast_bf16x8 fast_zero8() {
    fast_bf16x8 z;
    const __nv_bfloat162 zero = __floats2bfloat162_rn(0.0f, 0.0f);
    z.h[0] = zero;
    z.h[1] = zero;
    z.h[2] = zero;
    z.h[3] = zero;
    return z;
}

__device__ __forceinline__ void fast_unpack8(fast_bf16x8 v, float* f) {
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const float2 t = __bfloat1622float2(v.h[i]);
        f[2 * i] = t.x;
        f[2 * i + 1] = t.y;
    }
}

__device__ __forceinline__ fast_bf16x8 fast_pack8(const float* f) {
    fast_bf16x8 v;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        v.h[i] = __floats2bfloat162_rn(f[2 * i], f[2 * i + 1]);
    }
    return v;
}

/* Whether p is 16-byte aligned (every vector path checks it and falls back to scalars otherwise). */
__device__ __forceinline__ bool fast_aligned16(const void* p) {
    return (reinterpret_cast<uintptr_t>(p) & 15u) == 0;
}

/* ----------------------------------------------------------------------------------------------- warps */

__device__ __forceinline__ float fast_warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

/* Sum over aligned groups of `width` consecutive lanes (width a power of two <= 32); every lane gets its sum. */
__device__ __forceinline__ float fast_group_sum(float v, int width) {
    for (int o = width >> 1; o > 0; o >>= 1) {
        v += __shfl_xor_sync(0xffffffffu, v, o);
    }
    return v;
}

/* p[0..3] += v, as one vector reduction on sm_90 (p 16-byte aligned), else four scalar atomics. */
__device__ __forceinline__ void fast_atomic_add4(float* p, float4 v) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float4*>(p), v);
#else
    atomicAdd(p, v.x);
    atomicAdd(p + 1, v.y);
    atomicAdd(p + 2, v.z);
    atomicAdd(p + 3, v.w);
#endif
}

/* ------------------------------------------------------------------------------- shrink-shaped WMMA tile */

/*
 * fast_shrink_tile<NF>: C[128, 16*NF] = X[row0.., 0..K) * A[col0.., 0..K)^T, bf16 operands, fp32 accumulation.
 *
 *   X  bf16, row n at X + n*ldx (rows >= N read as 0)        A  bf16, row j at A + j*lda (rows >= R read as 0)
 *   Requirements (the host checks them before choosing a fast kernel): K % 8 == 0, ldx % 8 == 0, lda % 8 == 0,
 *   X and A 16-byte aligned -- every global access is one 16-byte vector.
 *   Block: 256 threads = 8 warps; warp w owns output rows 16w..16w+15 and all NF column fragments.
 *   K is walked in steps of FAST_SHRINK_BK = 64: each step stages X[128 x 64] and A[16*NF x 64] in shared
 *   memory (the next step's vectors are already in registers while the tensor cores work on this one).
 *   On return the tile is in smem as fp32, row-major, pitch FAST_SHRINK_CLD floats, and all threads have
 *   passed a barrier. rowSq (may be null): each thread's partial sums of squares of the X elements it staged,
 *   for the rows fast_shrink_sq_row(t, i), i < 4 (DoRA's ||W_o||^2 comes for free from the same pass).
 *   Xc (may be null; the K-concat pack): Xc[n*ldxc + k] = X[n*ldx + k] for the tile's rows n < N and all k < K,
 *   stored from the same registers that stage X (no second read). Requirements: ldxc % 8 == 0, Xc 16-byte
 *   aligned, Xc's first K columns not overlapping X. Pass it from ONE block per row block (the caller's choice).
 */
#define FAST_SHRINK_BM 128
#define FAST_SHRINK_BK 64
#define FAST_SHRINK_PAD 8                                 /* bf16 elements: 16 bytes per smem row */
#define FAST_SHRINK_LD (FAST_SHRINK_BK + FAST_SHRINK_PAD)  /* 72: a multiple of 8, as WMMA needs */
#define FAST_SHRINK_CLD (64 + 4)                          /* fp32 pitch of the result tile */
#define FAST_SHRINK_THREADS 256

/* Bytes of shared memory fast_shrink_tile needs (staging, then the fp32 result tile in the same space). */
#define FAST_SHRINK_SMEM_STAGE ((FAST_SHRINK_BM + 64) * FAST_SHRINK_LD * 2)
#define FAST_SHRINK_SMEM_RESULT (FAST_SHRINK_BM * FAST_SHRINK_CLD * 4)
#define FAST_SHRINK_SMEM \
    (FAST_SHRINK_SMEM_STAGE > FAST_SHRINK_SMEM_RESULT ? FAST_SHRINK_SMEM_STAGE : FAST_SHRINK_SMEM_RESULT)

/* The tile row whose squares entry i (0..3) of thread t's rowSq holds. */
__device__ __forceinline__ int fast_shrink_sq_row(int t, int i) {
    return (t >> 3) + 32 * i;
}

template <int NF>
__device__ __forceinline__ void fast_shrink_tile(const __nv_bfloat16* __restrict__ X, long ldx, int N,
                                                        const __nv_bfloat16* __restrict__ A, long lda, int R,
                                                        int K, int row0, int col0, unsigned char* smem,
                                                        float* rowSq, __nv_bfloat16* Xc, long ldxc) {
    using namespace nvcuda;
    constexpr int BN = 16 * NF;
    __nv_bfloat16* Xs = reinterpret_cast<__nv_bfloat16*>(smem);          /* [128][LD] */
    __nv_bfloat16* As = Xs + FAST_SHRINK_BM * FAST_SHRINK_LD;           /* [BN][LD]  */
    float* Cs = reinterpret_cast<float*>(smem);                         /* [128][CLD], after the loop */

    const int t = threadIdx.x;
    const int warp = t >> 5;
    const int vcol = (t & 7) * 8;          /* this thread's 8-element column slot in a 64-wide K step */
    /* X tile: 128 rows x 8 vectors = 1024 vectors, 4 per thread: rows t/8 + 32i. */
    /* A tile: BN rows x 8 vectors = 8*BN vectors: rows t/8 (+32) when below BN. */
    constexpr int AV = (BN * 8 + FAST_SHRINK_THREADS - 1) / FAST_SHRINK_THREADS;  /* 1 or 2 */

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc[NF];
#pragma unroll
    for (int f = 0; f < NF; ++f) {
        wmma::fill_fragment(acc[f], 0.0f);
    }
    float sq[4] = {0.0f, 0.0f, 0.0f, 0.0f};

    fast_bf16x8 xr[4];
    fast_bf16x8 ar[AV];
    auto fetch = [&](int k0) {
        const int k = k0 + vcol;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int n = row0 + fast_shrink_sq_row(t, i);
            xr[i] = (n < N && k < K) ? fast_load8(X + (long)n * ldx + k) : fast_zero8();
        }
#pragma unroll
        for (int i = 0; i < AV; ++i) {
            const int jr = (t >> 3) + 32 * i;
            const int j = col0 + jr;
            ar[i] = (jr < BN && j < R && k < K) ? fast_load8(A + (long)j * lda + k) : fast_zero8();
        }
    };
    auto stage = [&](int k0) {
        const int k = k0 + vcol;
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            const int rr = fast_shrink_sq_row(t, i);
            fast_store8(Xs + rr * FAST_SHRINK_LD + vcol, xr[i]);
            if (Xc != nullptr && row0 + rr < N && k < K) {
                fast_store8(Xc + (long)(row0 + rr) * ldxc + k, xr[i]);   /* the pack: same vector, no reread */
            }
            if (rowSq != nullptr) {
                float f[8];
                fast_unpack8(xr[i], f);
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    sq[i] = fmaf(f[e], f[e], sq[i]);
                }
            }
        }
#pragma unroll
        for (int i = 0; i < AV; ++i) {
            const int jr = (t >> 3) + 32 * i;
            if (jr < BN) {
                fast_store8(As + jr * FAST_SHRINK_LD + vcol, ar[i]);
            }
        }
    };

    fetch(0);
    for (int k0 = 0; k0 < K; k0 += FAST_SHRINK_BK) {
        stage(k0);
        __syncthreads();
        if (k0 + FAST_SHRINK_BK < K) {
            fetch(k0 + FAST_SHRINK_BK);    /* in flight while the tensor cores run */
        }
#pragma unroll
        for (int kk = 0; kk < FAST_SHRINK_BK; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
            wmma::load_matrix_sync(fa, Xs + (warp * 16) * FAST_SHRINK_LD + kk, FAST_SHRINK_LD);
#pragma unroll
            for (int f = 0; f < NF; ++f) {
                /* B(k, j) = A[j][k]: column-major with leading dimension LD */
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::col_major> fb;
                wmma::load_matrix_sync(fb, As + (f * 16) * FAST_SHRINK_LD + kk, FAST_SHRINK_LD);
                wmma::mma_sync(acc[f], fa, fb, acc[f]);
            }
        }
        __syncthreads();
    }
#pragma unroll
    for (int f = 0; f < NF; ++f) {
        wmma::store_matrix_sync(Cs + (warp * 16) * FAST_SHRINK_CLD + f * 16, acc[f], FAST_SHRINK_CLD,
                                wmma::mem_row_major);
    }
    if (rowSq != nullptr) {
#pragma unroll
        for (int i = 0; i < 4; ++i) {
            rowSq[i] = sq[i];
        }
    }
    __syncthreads();
}

/* NF for a column chunk of width min(64, R - col0): 1, 2 or 4 fragments of 16 columns. */
__device__ __forceinline__ int fast_shrink_nf(int width) {
    return width <= 16 ? 1 : (width <= 32 ? 2 : 4);
}

#endif /* LORAKIT_FAST_COMMON_CU */
