/*
 * delta_lora.cu -- Delta-LoRA's in-place update of the base weight, fast tier (Zi et al. 2023; VARIANTS.md).
 *
 *   W += c (B' A' - B A),  c = λ s          (A', B' after the optimizer step; A, B before it)
 *
 * One rank-2r pass over W, written without cancellation: B'A' - BA = B' (A' - A) + (B' - B) A, so
 *   W += c [B' | B' - B] [A' - A ; A]        P = [B' | ΔB] [out, 2r],  Q = [ΔA ; A] [2r, in]
 * and the products are of small quantities (the raw difference of two large products would lose the update
 * to rounding). P and Q are formed on the fly while staging (fp32), the 2r-long dot products run in fp32 FMA.
 * Memory-bound: one read and one write of W (bf16, 4 bytes per element); with the fp32 master, a read and write
 * of the master and a write of W (10 bytes); with the bf16 compensation buffer, W and it read and written (8).
 *
 * Precision (ARCHITECTURE.md): W is bf16 and the updates are small, so plain rounding would drop most of them.
 * Two remedies, chosen by the arguments:
 *   master != null  fp32 master copy Wf: Wf += cΔ, W = bf16(Wf)                 (exact to fp32)
 *   comp   != null  compensated rounding with a bf16 residual R (W + R is the value):
 *                   t = W + R + cΔ, W = bf16(t), R = bf16(t - W)                  (about 16 significant bits)
 *   both null       W = bf16(W + cΔ)                                               (only for large updates)
 *
 * Kernel (extern "C"):
 *
 *   delta_lora_update_fwd_kernel1(W, ldw, master, ldm, comp, ldc, fanInFanOut, c, aNew, aOld, bNew, bOld,
 *                                 out, in, r)
 *     W bf16 [out, ldw] (y = x W^T), or [in, ldw] when fanInFanOut != 0 (GPT-2 Conv1D: W += c (B'A' - BA)^T);
 *     master fp32 with pitch ldm and comp bf16 with pitch ldc, same orientation as W (either may be null);
 *     A', A fp32 [r, in]; B', B fp32 [out, r].
 *     Launch: block (256,1,1), grid (ceil(cols/128), ceil(rows/64), 1) where rows x cols is W's shape
 *     (rows <= 4194240). A block owns a 64 x 128 tile of W; a thread owns 4 rows x 8 columns (16-byte bf16
 *     vectors; scalar accesses where a vector would cross the edge or is unaligned). The 2r dimension is staged
 *     16 at a time in shared memory: P rows for the tile's rows, Q columns for its columns.
 *     Twin: Backend.deltaLoraUpdate's default (two gemm_fwd_kernel1 calls) on an fp32 W: compared with the
 *     master at the fp32 tolerance and with W at the bf16 tolerance.
 */
#include "common.cu"

#define DELTA_LORA_THREADS 256
#define DELTA_LORA_BM 64
#define DELTA_LORA_BN 128
#define DELTA_LORA_BJ 16

/* P(o, jj) = [B' | B' - B][o, jj], zero outside [out, 2r). */
static __device__ __forceinline__ float delta_lora_p(const float* bNew, const float* bOld, int out, int r, int o,
                                                     int jj) {
    if (o >= out || jj >= 2 * r) {
        return 0.0f;
    }
    if (jj < r) {
        return bNew[(long)o * r + jj];
    }
    const long i = (long)o * r + (jj - r);
    return bNew[i] - bOld[i];
}

/* Q(jj, k) = [A' - A ; A][jj, k], zero outside [2r, in). */
static __device__ __forceinline__ float delta_lora_q(const float* aNew, const float* aOld, int in, int r, int jj,
                                                     int k) {
    if (k >= in || jj >= 2 * r) {
        return 0.0f;
    }
    if (jj < r) {
        const long i = (long)jj * in + k;
        return aNew[i] - aOld[i];
    }
    return aOld[(long)(jj - r) * in + k];
}

/* The new bf16 value of one element (and its master / residual), given the fp32 update d = cΔ. */
static __device__ __forceinline__ __nv_bfloat16 delta_lora_apply(__nv_bfloat16 w, float* mst, __nv_bfloat16* cmp,
                                                                 float d) {
    if (mst != nullptr) {
        const float nm = *mst + d;
        *mst = nm;
        return fast_f32_to_bf16(nm);
    }
    if (cmp != nullptr) {
        const float t = fast_bf16_to_f32(w) + fast_bf16_to_f32(*cmp) + d;
        const __nv_bfloat16 nw = fast_f32_to_bf16(t);
        *cmp = fast_f32_to_bf16(t - fast_bf16_to_f32(nw));
        return nw;
    }
    return fast_f32_to_bf16(fast_bf16_to_f32(w) + d);
}

extern "C" __global__ void __launch_bounds__(DELTA_LORA_THREADS)
delta_lora_update_fwd_kernel1(__nv_bfloat16* __restrict__ W,      /* [rows, ldw] */
                              int ldw,
                              float* __restrict__ master,         /* [rows, ldm] fp32, or null */
                              int ldm,
                              __nv_bfloat16* __restrict__ comp,   /* [rows, ldc] bf16 residual, or null */
                              int ldc, int fanInFanOut, float c,
                              const float* __restrict__ aNew,     /* [r, in]  A' */
                              const float* __restrict__ aOld,     /* [r, in]  A  */
                              const float* __restrict__ bNew,     /* [out, r] B' */
                              const float* __restrict__ bOld,     /* [out, r] B  */
                              int out, int in, int r) {
    __shared__ float RF[DELTA_LORA_BM][DELTA_LORA_BJ + 1];          /* row factors of the tile's rows   */
    __shared__ __align__(16) float CF[DELTA_LORA_BJ][DELTA_LORA_BN + 4];  /* column factors of its columns */

    const int rows = fanInFanOut ? in : out;
    const int cols = fanInFanOut ? out : in;
    const int t = threadIdx.x;
    const int cv = (t & 15) * 8;           /* this thread's 8 columns within the tile */
    const int rg = t >> 4;                 /* rows rg, rg+16, rg+32, rg+48 */
    const int row0 = blockIdx.y * DELTA_LORA_BM;
    const int col0 = blockIdx.x * DELTA_LORA_BN;

    float acc[4][8];
#pragma unroll
    for (int i = 0; i < 4; ++i) {
#pragma unroll
        for (int e = 0; e < 8; ++e) {
            acc[i][e] = 0.0f;
        }
    }

    for (int j0 = 0; j0 < 2 * r; j0 += DELTA_LORA_BJ) {
        /* row factors: 64 x 16 */
#pragma unroll
        for (int q = 0; q < 4; ++q) {
            const int e = t + DELTA_LORA_THREADS * q;
            if (fanInFanOut) {                    /* rows are k: RF[k][jj] = Q(jj, k), coalesced along k */
                const int i = e & 63;
                const int jj = e >> 6;
                RF[i][jj] = delta_lora_q(aNew, aOld, in, r, j0 + jj, row0 + i);
            } else {                              /* rows are o: RF[o][jj] = P(o, jj), coalesced along jj */
                const int i = e >> 4;
                const int jj = e & 15;
                RF[i][jj] = delta_lora_p(bNew, bOld, out, r, row0 + i, j0 + jj);
            }
        }
        /* column factors: 16 x 128 */
#pragma unroll
        for (int q = 0; q < 8; ++q) {
            const int e = t + DELTA_LORA_THREADS * q;
            const int jj = e >> 7;
            const int k = e & 127;
            CF[jj][k] = fanInFanOut ? delta_lora_p(bNew, bOld, out, r, col0 + k, j0 + jj)
                                    : delta_lora_q(aNew, aOld, in, r, j0 + jj, col0 + k);
        }
        __syncthreads();
#pragma unroll
        for (int jj = 0; jj < DELTA_LORA_BJ; ++jj) {
            const float4 c0 = *reinterpret_cast<const float4*>(&CF[jj][cv]);
            const float4 c1 = *reinterpret_cast<const float4*>(&CF[jj][cv + 4]);
            const float cf[8] = {c0.x, c0.y, c0.z, c0.w, c1.x, c1.y, c1.z, c1.w};
#pragma unroll
            for (int i = 0; i < 4; ++i) {
                const float rf = RF[rg + 16 * i][jj];
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    acc[i][e] = fmaf(rf, cf[e], acc[i][e]);
                }
            }
        }
        __syncthreads();
    }

    const bool vec = (cols % 8) == 0 && (ldw % 8) == 0 && fast_aligned16(W)
                     && (master == nullptr || ((ldm % 4) == 0 && fast_aligned16(master)))
                     && (comp == nullptr || ((ldc % 8) == 0 && fast_aligned16(comp)));
    const int col = col0 + cv;
#pragma unroll
    for (int i = 0; i < 4; ++i) {
        const int row = row0 + rg + 16 * i;
        if (row >= rows || col >= cols) {
            continue;
        }
        __nv_bfloat16* wp = W + (long)row * ldw + col;
        float* mp = master != nullptr ? master + (long)row * ldm + col : nullptr;
        __nv_bfloat16* cp = comp != nullptr ? comp + (long)row * ldc + col : nullptr;
        if (vec) {
            float d[8];
            float w[8];
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                d[e] = c * acc[i][e];
            }
            if (mp != nullptr) {                 /* fp32 master: Wf += d, W = bf16(Wf); W itself is not read */
                const float4 m0 = *reinterpret_cast<const float4*>(mp);
                const float4 m1 = *reinterpret_cast<const float4*>(mp + 4);
                float mf[8] = {m0.x + d[0], m0.y + d[1], m0.z + d[2], m0.w + d[3],
                               m1.x + d[4], m1.y + d[5], m1.z + d[6], m1.w + d[7]};
                *reinterpret_cast<float4*>(mp) = make_float4(mf[0], mf[1], mf[2], mf[3]);
                *reinterpret_cast<float4*>(mp + 4) = make_float4(mf[4], mf[5], mf[6], mf[7]);
                fast_store8(wp, fast_pack8(mf));
            } else if (cp != nullptr) {          /* compensated: t = W + R + d, W = bf16(t), R = bf16(t - W) */
                fast_unpack8(fast_load8(wp), w);
                float rsd[8];
                fast_unpack8(fast_load8(cp), rsd);
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    w[e] = w[e] + rsd[e] + d[e];
                }
                const fast_bf16x8 nw = fast_pack8(w);
                float back[8];
                fast_unpack8(nw, back);
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    rsd[e] = w[e] - back[e];
                }
                fast_store8(wp, nw);
                fast_store8(cp, fast_pack8(rsd));
            } else {
                fast_unpack8(fast_load8(wp), w);
#pragma unroll
                for (int e = 0; e < 8; ++e) {
                    w[e] += d[e];
                }
                fast_store8(wp, fast_pack8(w));
            }
        } else {
#pragma unroll
            for (int e = 0; e < 8; ++e) {
                if (col + e < cols) {
                    wp[e] = delta_lora_apply(wp[e], mp != nullptr ? mp + e : nullptr, cp != nullptr ? cp + e : nullptr,
                                             c * acc[i][e]);
                }
            }
        }
    }
}
