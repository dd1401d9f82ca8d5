/*
 * lora_fused.cu -- the fused LoRA linear layer, fast tier (bf16 base and activations, fp32 adapters).
 *
 * The spare-margin K-concat design (PERFORMANCE.md, technique 1): cuBLAS does the one big GEMM and the LoRA
 * term rides along in r spare columns, so the adapter costs one bandwidth pass over X instead of ~7.
 *
 *   Weight buffer Wm, bf16, [out + r, in + r], row pitch ldw (>= in + r, a multiple of 8):
 *       Wm[0:out, 0:in]       = W      (frozen base weight, y = x W^T)
 *       Wm[0:out, in:in+r]    = s*B    (refreshed after every optimizer step: lora_margin_fwd_kernel1)
 *       Wm[out:out+r, 0:in]   = A      (bf16 copy of the fp32 master A, same kernel)
 *   Activation buffer Xm, bf16, [N, ldx] (ldx >= in + r, a multiple of 8): x in the first in columns, S = x A^T
 *   in the r margin columns (and u = S in fp32 for the backward). The layer's x arrives dense [N, in]; the shrink
 *   reads every x element anyway, so it also packs x into Xm (the copy costs one write, no extra read).
 *   Gradient buffer dYm, bf16, [N, ldy] (ldy >= out + r, a multiple of 8): dY in the first out columns, dS in the
 *   margin; the backward helper packs the dense dY [N, out] the same way.
 *
 *   forward   pack, S, u = lora_shrink_fwd_kernel2 (reads x once): Xm[:, 0:in] = x, Xm[:, in:in+r] = bf16(x A^T)
 *             Y[N,out]  = Xm[:, 0:in+r] * Wm[0:out, 0:in+r]^T        ONE cuBLAS GEMM, K = in + r
 *                       = x W^T + s (x A^T) B^T
 *   backward  pack, dS, dB = lora_linear_bwd_x_kernel1 (reads dY once): dYm[:, 0:out] = dY,
 *                         dS = s dY B (fp32 du [N,r] and bf16 into dYm's margin), dB += s dY^T S
 *             dX[N,in]  = dYm[:, 0:out+r] * Wm[0:out+r, 0:in]           ONE cuBLAS GEMM, K = out + r
 *                       = dY W + dS A
 *             dA       += dS^T x                                         cuBLAS, on a side stream
 *   The packs are optional (null): a caller whose x or dY already lives in Xm / dYm passes X = Xm, S = Xm + in.
 *
 * Kernels (all extern "C"; the host checks the fast-path requirements and otherwise uses the portable tier):
 *
 *   lora_margin_fwd_kernel1(A, B, s, Wm, ldw, out, in, r)
 *     Stages the adapter into Wm's margins: Wm[o, in+j] = bf16(s*B[o,j]), Wm[out+j, k] = bf16(A[j,k]).
 *     A fp32 [r,in], B fp32 [out,r]. Grid-stride over out*r + r*in elements.
 *     Launch: block (256,1,1), grid (min(ceil((out*r + r*in)/256), 65535),1,1).
 *     Twin: none needed (a copy); checked through the forward below.
 *
 *   lora_shrink_fwd_kernel2(X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r)
 *     S = x A^T: X bf16 [N, ldx] (first in columns), A bf16 [r, lda] (first in columns, e.g. Wm + out*ldw),
 *     u fp32 [N,r] written (may be null), S bf16 written at S + n*lds + j (may be null; normally Xc + in, ldxc).
 *     The pack: Xc bf16 [N, ldxc] (may be null): Xc[n*ldxc + k] = X[n*ldx + k] for n < N, k < in, stored by the
 *     blocks with blockIdx.x == 0 only (one copy whatever r) from the vectors the tile loop loads anyway.
 *     S may point into Xc (S = Xc + in, lds = ldxc): S fills columns in..in+r-1, the pack columns 0..in-1, so the
 *     two writes never touch the same bytes and need no ordering. Xc must not overlap X's first in columns.
 *     Requirements: in % 8 == 0, ldx % 8 == 0, lda % 8 == 0, X and A 16-byte aligned; with Xc: ldxc % 8 == 0,
 *     Xc 16-byte aligned (16-byte vector stores).
 *     Launch: block (256,1,1), grid (ceil(r/64), ceil(N/128), 1): blockIdx.x = 64-column chunk of r (chunks of the
 *     same rows run back to back and share X through L2), blockIdx.y = 128-row block. WMMA bf16 16x16x16,
 *     fp32 accumulation (common.cu, fast_shrink_tile).
 *     Twin: lora_shrink_fwd_kernel1 (portable/lora_shrink.kc), compared at the bf16 tolerance; the pack is a copy.
 *
 *   lora_linear_bwd_x_kernel1(dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc, dB, N, r)
 *     Reads dY once for both adapter products and the pack:
 *       du[N,r] = dY sB            (= s dY B; fp32, written; may be null)
 *       dS      = bf16(du)         written at dS + n*ldds + j (may be null; normally dYc + out, ldyc)
 *       dYc[N, ldyc] = dY          the pack, bf16: dYc[n*ldyc + o] = dY[n*ldy + o] for n < N, o < out (may be
 *                                  null), stored by the blocks with blockIdx.x == 0 only from the staged dY tiles
 *       dB[out,r] += s dY^T S      (fp32, accumulated with atomics: zero it first for "="; may be null)
 *     dY bf16 [N, ldy] (first out columns), sB bf16 [out, ldb] (= Wm + in, ldw), S bf16 [N, lds] (= Xm + in).
 *     dS may point into dYc (dS = dYc + out, ldds = ldyc): disjoint columns, as for S and Xc above. dYc must not
 *     overlap dY's first out columns.
 *     Requirements: out % 8 == 0, r % 8 == 0, ldy, ldb, lds % 8 == 0, dY/sB/S 16-byte aligned, dB 16-byte aligned;
 *     with dYc: ldyc % 8 == 0, dYc 16-byte aligned.
 *     Launch: block (256,1,1), grid (ceil(r/64), ceil(N/128), 1). Each block owns 128 rows of dY and one 64-column
 *     chunk of r; it walks out in chunks of 32 columns: dS accumulates in registers (no reduction across blocks),
 *     and each chunk's [32 x r] piece of dY^T S goes to dB with vector atomics (red.global.add.v4.f32 on sm_90):
 *     out*r*ceil(N/128) additions in all (8.4M for out=4096, r=16, N=16384 -- about a quarter of dY's bytes).
 *     Twin: the Backend default composition on KernelBackend (gemm_fwd_kernel1: dY B and dY^T u), bf16 tolerance.
 */
#include "common.cu"

#define LORA_FUSED_THREADS 256
#define LORA_FUSED_BO 32                          /* out columns of dY per step of the backward helper */
#define LORA_FUSED_DYLD (LORA_FUSED_BO + 8)      /* 40 */
#define LORA_FUSED_RLD (64 + 8)                  /* pitch of the r-wide bf16 tiles */
#define LORA_FUSED_STLD 20                        /* pitch of a warp's 16x16 fp32 staging tile */
/* backward helper's shared memory: dY step [128][40] + sB step [32][72] + S [128][72] bf16, 8 x [16][20] fp32 */
#define LORA_FUSED_BWD_SMEM \
    ((FAST_SHRINK_BM * LORA_FUSED_DYLD + LORA_FUSED_BO * LORA_FUSED_RLD + FAST_SHRINK_BM * LORA_FUSED_RLD) * 2 \
     + 8 * 16 * LORA_FUSED_STLD * 4)

/* ------------------------------------------------------------------------------------------ margin staging */

extern "C" __global__ void lora_margin_fwd_kernel1(const float* __restrict__ A,   /* [r,in]  */
                                                   const float* __restrict__ B,   /* [out,r] */
                                                   float s,
                                                   __nv_bfloat16* __restrict__ Wm,  /* [out+r, ldw] */
                                                   int ldw, int out, int in, int r) {
    const long top = (long)out * r;
    const long total = top + (long)r * in;
    for (long e = (long)blockIdx.x * blockDim.x + threadIdx.x; e < total; e += (long)gridDim.x * blockDim.x) {
        if (e < top) {
            const long o = e / r;
            const long j = e - o * r;
            Wm[o * ldw + in + j] = fast_f32_to_bf16(s * B[e]);
        } else {
            const long f = e - top;
            const long j = f / in;
            const long k = f - j * in;
            Wm[((long)out + j) * ldw + k] = fast_f32_to_bf16(A[f]);
        }
    }
}

/* ------------------------------------------------------------------------------------------------ shrink */

template <int NF>
static __device__ __forceinline__ void lora_fused_shrink(const __nv_bfloat16* X, int ldx,
                                                         const __nv_bfloat16* A, int lda, float* u,
                                                         __nv_bfloat16* S, int lds, __nv_bfloat16* Xc, int ldxc,
                                                         int N, int in, int r, unsigned char* smem) {
    const int row0 = blockIdx.y * FAST_SHRINK_BM;
    const int col0 = blockIdx.x * 64;
    /* the pack: only the first column chunk's blocks copy x, so it is written once however many chunks r has */
    fast_shrink_tile<NF>(X, ldx, N, A, lda, r, in, row0, col0, smem, nullptr, blockIdx.x == 0 ? Xc : nullptr,
                         ldxc);
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
            if (S != nullptr) {
                S[(long)n * lds + col0 + j] = fast_f32_to_bf16(v);
            }
        }
    }
}

extern "C" __global__ void __launch_bounds__(FAST_SHRINK_THREADS)
lora_shrink_fwd_kernel2(const __nv_bfloat16* __restrict__ X,   /* [N, ldx], first in columns */
                        int ldx,
                        const __nv_bfloat16* __restrict__ A,   /* [r, lda], first in columns */
                        int lda,
                        float* __restrict__ u,                 /* [N, r] fp32, or null */
                        __nv_bfloat16* S,                      /* [N, lds] bf16, or null (Xc + in or X + in) */
                        int lds,
                        __nv_bfloat16* Xc,                     /* [N, ldxc] bf16: x packed, or null */
                        int ldxc, int N, int in, int r) {
    __shared__ __align__(128) unsigned char smem[FAST_SHRINK_SMEM];
    switch (fast_shrink_nf(r - blockIdx.x * 64)) {
        case 1: lora_fused_shrink<1>(X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r, smem); break;
        case 2: lora_fused_shrink<2>(X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r, smem); break;
        default: lora_fused_shrink<4>(X, ldx, A, lda, u, S, lds, Xc, ldxc, N, in, r, smem); break;
    }
}

/* ------------------------------------------------------------------------------------- backward helper */

template <int NF>
static __device__ __forceinline__ void lora_fused_bwd(const __nv_bfloat16* __restrict__ dY, int ldy, int out,
                                                      const __nv_bfloat16* __restrict__ sB, int ldb,
                                                      const __nv_bfloat16* __restrict__ S, int lds, float s,
                                                      float* du, __nv_bfloat16* dS, int ldds,
                                                      __nv_bfloat16* dYc, int ldyc, float* dB,
                                                      int N, int r, unsigned char* smem) {
    using namespace nvcuda;
    constexpr int BN = 16 * NF;
    constexpr int BV = BN / 8;                      /* 16-byte vectors per r-row of the chunk */
    __nv_bfloat16* dYs = reinterpret_cast<__nv_bfloat16*>(smem);            /* [128][40] */
    __nv_bfloat16* Bs = dYs + FAST_SHRINK_BM * LORA_FUSED_DYLD;             /* [32][72]  */
    __nv_bfloat16* Ss = Bs + LORA_FUSED_BO * LORA_FUSED_RLD;                /* [128][72] */
    float* stg = reinterpret_cast<float*>(Ss + FAST_SHRINK_BM * LORA_FUSED_RLD);  /* [warp][16][20] */

    const int t = threadIdx.x;
    const int warp = t >> 5;
    const int lane = t & 31;
    const int row0 = blockIdx.y * FAST_SHRINK_BM;
    const int col0 = blockIdx.x * 64;
    const int width = min(BN, r - col0);            /* a multiple of 8 (r % 8 == 0) */
    float* wst = stg + warp * 16 * LORA_FUSED_STLD;
    /* the pack: only the first column chunk's blocks copy dY, so it is written once however many chunks r has */
    __nv_bfloat16* const yc = blockIdx.x == 0 ? dYc : nullptr;

    /* S rows of this block, once: 128 x BV vectors. */
    for (int e = t; e < FAST_SHRINK_BM * BV; e += LORA_FUSED_THREADS) {
        const int i = e / BV;
        const int v = (e - i * BV) * 8;
        const int n = row0 + i;
        fast_store8(Ss + i * LORA_FUSED_RLD + v,
                    (n < N && v < width) ? fast_load8(S + (long)n * lds + col0 + v) : fast_zero8());
    }

    /* per step: dY 128 x 32 (512 vectors, 2 per thread), sB 32 x BN (32*BV vectors, at most 1 per thread) */
    fast_bf16x8 yr[2];
    fast_bf16x8 br;
    auto fetch = [&](int o0) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int rr = (t >> 2) + 64 * i;
            const int n = row0 + rr;
            const int o = o0 + (t & 3) * 8;
            yr[i] = (n < N && o < out) ? fast_load8(dY + (long)n * ldy + o) : fast_zero8();
        }
        const int oi = t / BV;
        const int v = (t - oi * BV) * 8;
        const int o = o0 + oi;
        br = (oi < LORA_FUSED_BO && o < out && v < width) ? fast_load8(sB + (long)o * ldb + col0 + v) : fast_zero8();
    };
    auto stage = [&](int o0) {
#pragma unroll
        for (int i = 0; i < 2; ++i) {
            const int rr = (t >> 2) + 64 * i;
            fast_store8(dYs + rr * LORA_FUSED_DYLD + (t & 3) * 8, yr[i]);
            const int n = row0 + rr;
            const int o = o0 + (t & 3) * 8;
            if (yc != nullptr && n < N && o < out) {
                fast_store8(yc + (long)n * ldyc + o, yr[i]);   /* the pack: same vector, no reread */
            }
        }
        const int oi = t / BV;
        if (oi < LORA_FUSED_BO) {
            fast_store8(Bs + oi * LORA_FUSED_RLD + (t - oi * BV) * 8, br);
        }
    };

    wmma::fragment<wmma::accumulator, 16, 16, 16, float> dsAcc[NF];
#pragma unroll
    for (int f = 0; f < NF; ++f) {
        wmma::fill_fragment(dsAcc[f], 0.0f);
    }
    const int dbTiles = (LORA_FUSED_BO / 16) * NF;   /* 2*NF <= 8: one per warp at most */
    const int mt = warp % (LORA_FUSED_BO / 16);
    const int nf = warp / (LORA_FUSED_BO / 16);

    fetch(0);
    for (int o0 = 0; o0 < out; o0 += LORA_FUSED_BO) {
        stage(o0);
        __syncthreads();
        if (o0 + LORA_FUSED_BO < out) {
            fetch(o0 + LORA_FUSED_BO);
        }
        /* dS[rows of this warp, :] += dY[rows, o0:o0+32] * sB[o0:o0+32, chunk] */
#pragma unroll
        for (int kk = 0; kk < LORA_FUSED_BO; kk += 16) {
            wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::row_major> fa;
            wmma::load_matrix_sync(fa, dYs + (warp * 16) * LORA_FUSED_DYLD + kk, LORA_FUSED_DYLD);
#pragma unroll
            for (int f = 0; f < NF; ++f) {
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
                wmma::load_matrix_sync(fb, Bs + kk * LORA_FUSED_RLD + f * 16, LORA_FUSED_RLD);
                wmma::mma_sync(dsAcc[f], fa, fb, dsAcc[f]);
            }
        }
        /* dB[o0 + 16mt .., 16nf ..] += s * dY[rows, o0 + 16mt ..]^T * S[rows, 16nf ..] (k = the 128 rows) */
        if (dB != nullptr && warp < dbTiles) {
            wmma::fragment<wmma::accumulator, 16, 16, 16, float> db;
            wmma::fill_fragment(db, 0.0f);
#pragma unroll
            for (int kk = 0; kk < FAST_SHRINK_BM; kk += 16) {
                /* A(i = o, k = n) = dYs[n][o]: column-major, leading dimension DYLD */
                wmma::fragment<wmma::matrix_a, 16, 16, 16, __nv_bfloat16, wmma::col_major> fa;
                wmma::load_matrix_sync(fa, dYs + kk * LORA_FUSED_DYLD + mt * 16, LORA_FUSED_DYLD);
                wmma::fragment<wmma::matrix_b, 16, 16, 16, __nv_bfloat16, wmma::row_major> fb;
                wmma::load_matrix_sync(fb, Ss + kk * LORA_FUSED_RLD + nf * 16, LORA_FUSED_RLD);
                wmma::mma_sync(db, fa, fb, db);
            }
            wmma::store_matrix_sync(wst, db, LORA_FUSED_STLD, wmma::mem_row_major);
            __syncwarp();
#pragma unroll
            for (int q = 0; q < 2; ++q) {
                const int idx = lane + 32 * q;       /* 16 rows x 4 float4 */
                const int i = idx >> 2;
                const int c = (idx & 3) * 4;
                const int o = o0 + mt * 16 + i;
                const int j = nf * 16 + c;
                if (o < out && j < width) {
                    const float* p = wst + i * LORA_FUSED_STLD + c;
                    fast_atomic_add4(dB + (long)o * r + col0 + j, make_float4(s * p[0], s * p[1], s * p[2], s * p[3]));
                }
            }
            __syncwarp();
        }
        __syncthreads();
    }

    /* dS epilogue: each warp writes its 16 rows, one 16x16 fragment at a time through its staging tile. */
#pragma unroll
    for (int f = 0; f < NF; ++f) {
        wmma::store_matrix_sync(wst, dsAcc[f], LORA_FUSED_STLD, wmma::mem_row_major);
        __syncwarp();
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const int idx = lane + 32 * q;          /* 16 rows x 16 columns */
            const int i = idx >> 4;
            const int j = f * 16 + (idx & 15);
            const int n = row0 + warp * 16 + i;
            if (n < N && j < width) {
                const float v = wst[i * LORA_FUSED_STLD + (idx & 15)];
                if (du != nullptr) {
                    du[(long)n * r + col0 + j] = v;
                }
                if (dS != nullptr) {
                    dS[(long)n * ldds + col0 + j] = fast_f32_to_bf16(v);
                }
            }
        }
        __syncwarp();
    }
}

extern "C" __global__ void __launch_bounds__(LORA_FUSED_THREADS)
lora_linear_bwd_x_kernel1(const __nv_bfloat16* __restrict__ dY,  /* [N, ldy], first out columns */
                          int ldy, int out,
                          const __nv_bfloat16* __restrict__ sB,  /* [out, ldb]: s*B (Wm + in) */
                          int ldb,
                          const __nv_bfloat16* __restrict__ S,   /* [N, lds]: x A^T (Xm + in) */
                          int lds, float s,
                          float* __restrict__ du,                /* [N, r] fp32 written, or null */
                          __nv_bfloat16* dS,                     /* [N, ldds] bf16 written, or null */
                          int ldds,
                          __nv_bfloat16* dYc,                    /* [N, ldyc] bf16: dY packed, or null */
                          int ldyc,
                          float* dB,                             /* [out, r] fp32 accumulated, or null */
                          int N, int r) {
    __shared__ __align__(128) unsigned char smem[LORA_FUSED_BWD_SMEM];
    switch (fast_shrink_nf(r - blockIdx.x * 64)) {
        case 1: lora_fused_bwd<1>(dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc, dB, N, r, smem); break;
        case 2: lora_fused_bwd<2>(dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc, dB, N, r, smem); break;
        default: lora_fused_bwd<4>(dY, ldy, out, sB, ldb, S, lds, s, du, dS, ldds, dYc, ldyc, dB, N, r, smem); break;
    }
}
