/*
 * adamw.cu -- fused AdamW, fast tier: fp32 adapter parameters and optimizer state (ARCHITECTURE.md precision).
 *
 *   p ← p·(1 − lr·λ);  m ← β1·m + (1−β1)·g;  v ← β2·v + (1−β2)·g²;  p ← p − (lr/(1−β1^t)) · m / (sqrt(v)/sqrt(1−β2^t) + eps)
 *
 * Same formula, same host-folded scalars and the same fp32 expression order as the portable twin
 * adamw_fwd_kernel1 (portable/adamw.kc): decay = 1 − lr·λ, step_size = lr/(1−β1^t), bc2_sqrt = sqrt(1−β2^t),
 * folded in double on the host as CpuBackend does.
 *
 * Kernels (extern "C"):
 *
 *   adamw_fwd_kernel2(param, grad, m, v, n, beta1, beta2, eps, decay, step_size, bc2_sqrt)
 *     One fp32 tensor of n elements (Backend.adamw with every tensor F32): 16-byte vectors when all four
 *     pointers are 16-byte aligned, scalars for the rest. Launch: block (256,1,1),
 *     grid (min(ceil(n/1024), 65535),1,1), grid-stride over 4-element vectors.
 *     Twin: adamw_fwd_kernel1 with every dtype KC_F32, fp32 tolerance.
 *
 *   adamw_multi_fwd_kernel1(ptrs, numel, chunkTensor, chunkStart, chunkGroup, groupDecay, groupStepSize, frozen,
 *                           hyper, chunkSize, beta1, beta2, eps)
 *     Every trainable tensor of a model in ONE launch (multi-tensor apply), with per-group learning rates
 *     (LoRA+: B's group has ratio x A's lr) and frozen tensors (LoRA-FA's A) skipped:
 *       ptrs        u64 [T][4]  device addresses of param, grad, m, v of tensor t (fp32, numel[t] elements)
 *       numel       i64 [T]
 *       chunkTensor i32 [C], chunkStart i64 [C], chunkGroup i32 [C]: chunk c covers elements
 *                   [chunkStart[c], min(chunkStart[c] + chunkSize, numel)) of tensor chunkTensor[c], in group
 *                   chunkGroup[c] (static tables, built once per model)
 *       groupDecay, groupStepSize  f32 [G]: 1 − lr_g·λ_g and lr_g/(1−β1^t), per group, rewritten every step
 *       frozen      i32 [T] or null: tensor t is left untouched (p, m, v) when frozen[t] != 0
 *       hyper       f32 [2]: bc2_sqrt = sqrt(1−β2^t), gradScale (the clipping factor; 1 = none)
 *     The step-dependent values live in device memory (groupDecay, groupStepSize, hyper), so a captured CUDA
 *     graph replays with only a small host-to-device copy before it.
 *     Launch: block (256,1,1), grid (C,1,1): one block per chunk (chunkSize a multiple of 4, e.g. 65536).
 *     Twin: adamw_fwd_kernel1 per tensor with that tensor's group lr, fp32 tolerance.
 *
 *   adamw_multi_fwd_kernel2(ptrs, numel, group, stats, normAt, maxNorm, beta1, beta2,
 *                           decay0..3, stepSize0..3, bc2Sqrt0..3, eps0..3)
 *     Backend.adamwClipped: every trainable tensor in ONE launch, clipped and guarded by the global gradient norm
 *     on the device, so a training step needs no host round trip (and can be captured as a CUDA graph):
 *       ptrs    u64 [T][4]  device addresses of param, grad, m, v of tensor t (fp32, numel[t] elements)
 *       numel   i64 [T]
 *       group   i32 [T]     tensor t's hyper-parameter group, 0..3 (LoRA+ A / B, step counts, PEFT's rule)
 *               (ptrs, numel, group: one device table built once per set of tensors and reused every step)
 *       stats   f32 float-float pairs: pair normAt is ‖g‖² (Backend.sumSquaresTo), pairs 0..normAt-1 the step's
 *               loss sums; any of them NaN/inf -> the kernel writes nothing (no parameter, moment or gradient)
 *       coef = min(1, maxNorm/(‖g‖ + 1e-6)) (maxNorm <= 0: 1); when coef < 1, g ← coef·g is stored back into
 *               grad (torch clip_grad_norm_ in place) before the update
 *       decay_g = 1 − lr_g·λ_g, stepSize_g = lr_g/(1−β1^t_g), bc2Sqrt_g = sqrt(1−β2^t_g), eps_g: per group, the
 *               host-folded scalars of adamw_fwd_kernel2, passed as kernel parameters (nothing copied per step)
 *     Launch: block (256,1,1), grid (min(ceil(max numel/256), 1024), T, 1): blockIdx.y is the tensor, grid-stride
 *     over its elements in x; one thread per element per pass, scalar loads.
 *     Twin: adamw_clip_fwd_kernel1 (portable/adamw.kc) per tensor, fp32 tolerance.
 */
#include "common.cu"

#define ADAMW_FAST_THREADS 256

/* One element: the expression of adamw_fwd_kernel1 for fp32 storage. */
static __device__ __forceinline__ void adamw_fast_one(float& p, float g, float& m, float& v, float beta1, float beta2,
                                                      float eps, float decay, float stepSize, float bc2Sqrt) {
    const float pd = p * decay;
    const float mi = beta1 * m + (1.0f - beta1) * g;
    const float vi = beta2 * v + (1.0f - beta2) * g * g;
    const float denom = sqrtf(vi) / bc2Sqrt + eps;
    m = mi;
    v = vi;
    p = pd - stepSize * mi / denom;
}

/* Elements [begin, end) of one tensor; vectors of 4 when aligned. gradScale multiplies g first. */
static __device__ __forceinline__ void adamw_fast_range(float* p, const float* g, float* m, float* v, long begin,
                                                        long end, long tid, long stride, float beta1, float beta2,
                                                        float eps, float decay, float stepSize, float bc2Sqrt,
                                                        float gradScale) {
    long i = begin;
    if (fast_aligned16(p + begin) && fast_aligned16(g + begin) && fast_aligned16(m + begin)
        && fast_aligned16(v + begin)) {
        const long vecEnd = begin + ((end - begin) & ~3L);
        for (long e = begin + 4 * tid; e < vecEnd; e += 4 * stride) {
            float4 pp = *reinterpret_cast<float4*>(p + e);
            const float4 gg = *reinterpret_cast<const float4*>(g + e);
            float4 mm = *reinterpret_cast<float4*>(m + e);
            float4 vv = *reinterpret_cast<float4*>(v + e);
            adamw_fast_one(pp.x, gg.x * gradScale, mm.x, vv.x, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
            adamw_fast_one(pp.y, gg.y * gradScale, mm.y, vv.y, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
            adamw_fast_one(pp.z, gg.z * gradScale, mm.z, vv.z, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
            adamw_fast_one(pp.w, gg.w * gradScale, mm.w, vv.w, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
            *reinterpret_cast<float4*>(m + e) = mm;
            *reinterpret_cast<float4*>(v + e) = vv;
            *reinterpret_cast<float4*>(p + e) = pp;
        }
        i = vecEnd;
    }
    for (long e = i + tid; e < end; e += stride) {
        float pp = p[e];
        float mm = m[e];
        float vv = v[e];
        adamw_fast_one(pp, g[e] * gradScale, mm, vv, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
        m[e] = mm;
        v[e] = vv;
        p[e] = pp;
    }
}

extern "C" __global__ void __launch_bounds__(ADAMW_FAST_THREADS)
adamw_fwd_kernel2(float* param, const float* grad, float* m, float* v, long n, float beta1, float beta2, float eps,
                  float decay, float step_size, float bc2_sqrt) {
    const long tid = (long)blockIdx.x * blockDim.x + threadIdx.x;
    const long stride = (long)gridDim.x * blockDim.x;
    adamw_fast_range(param, grad, m, v, 0, n, tid, stride, beta1, beta2, eps, decay, step_size, bc2_sqrt, 1.0f);
}

extern "C" __global__ void __launch_bounds__(ADAMW_FAST_THREADS)
adamw_multi_fwd_kernel1(const unsigned long long* __restrict__ ptrs,   /* [T][4] */
                        const long* __restrict__ numel,                /* [T] */
                        const int* __restrict__ chunkTensor,           /* [C] */
                        const long* __restrict__ chunkStart,           /* [C] */
                        const int* __restrict__ chunkGroup,            /* [C] */
                        const float* __restrict__ groupDecay,          /* [G] */
                        const float* __restrict__ groupStepSize,       /* [G] */
                        const int* __restrict__ frozen,                /* [T] or null */
                        const float* __restrict__ hyper,               /* [2]: bc2_sqrt, gradScale */
                        int chunkSize, float beta1, float beta2, float eps) {
    const int c = blockIdx.x;
    const int t = chunkTensor[c];
    if (frozen != nullptr && frozen[t] != 0) {
        return;
    }
    const int grp = chunkGroup[c];
    const long begin = chunkStart[c];
    const long end = min(begin + (long)chunkSize, numel[t]);
    float* p = reinterpret_cast<float*>(ptrs[4 * t]);
    const float* g = reinterpret_cast<const float*>(ptrs[4 * t + 1]);
    float* m = reinterpret_cast<float*>(ptrs[4 * t + 2]);
    float* v = reinterpret_cast<float*>(ptrs[4 * t + 3]);
    adamw_fast_range(p, g, m, v, begin, end, threadIdx.x, blockDim.x, beta1, beta2, eps, groupDecay[grp],
                     groupStepSize[grp], hyper[0], hyper[1]);
}

/* Group g's value among four kernel parameters (g in 0..3). */
static __device__ __forceinline__ float adamw_pick(int g, float a0, float a1, float a2, float a3) {
    return g == 0 ? a0 : g == 1 ? a1 : g == 2 ? a2 : a3;
}

extern "C" __global__ void __launch_bounds__(ADAMW_FAST_THREADS)
adamw_multi_fwd_kernel2(const unsigned long long* __restrict__ ptrs,   /* [T][4] */
                        const long* __restrict__ numel,                /* [T] */
                        const int* __restrict__ group,                 /* [T] */
                        const float* __restrict__ stats,               /* float-float pairs 0..normAt */
                        int normAt, float maxNorm, float beta1, float beta2,
                        float decay0, float decay1, float decay2, float decay3,
                        float stepSize0, float stepSize1, float stepSize2, float stepSize3,
                        float bc2Sqrt0, float bc2Sqrt1, float bc2Sqrt2, float bc2Sqrt3,
                        float eps0, float eps1, float eps2, float eps3) {
    for (int k = 0; k < normAt; k++) {
        if (!isfinite(stats[2 * k] + stats[2 * k + 1])) {
            return;
        }
    }
    const float norm = sqrtf(stats[2 * normAt] + stats[2 * normAt + 1]);
    if (!isfinite(norm)) {
        return;
    }
    const float coef = maxNorm > 0.0f ? fminf(1.0f, maxNorm / (norm + 1e-6f)) : 1.0f;
    const int t = blockIdx.y;
    const int g = group[t];
    const float decay = adamw_pick(g, decay0, decay1, decay2, decay3);
    const float stepSize = adamw_pick(g, stepSize0, stepSize1, stepSize2, stepSize3);
    const float bc2Sqrt = adamw_pick(g, bc2Sqrt0, bc2Sqrt1, bc2Sqrt2, bc2Sqrt3);
    const float eps = adamw_pick(g, eps0, eps1, eps2, eps3);
    float* p = reinterpret_cast<float*>(ptrs[4 * t]);
    float* gr = reinterpret_cast<float*>(ptrs[4 * t + 1]);
    float* m = reinterpret_cast<float*>(ptrs[4 * t + 2]);
    float* v = reinterpret_cast<float*>(ptrs[4 * t + 3]);
    const long n = numel[t];
    for (long e = (long)blockIdx.x * blockDim.x + threadIdx.x; e < n; e += (long)gridDim.x * blockDim.x) {
        float gg = gr[e];
        if (coef < 1.0f) {
            gg *= coef;
            gr[e] = gg;
        }
        float pp = p[e];
        float mm = m[e];
        float vv = v[e];
        adamw_fast_one(pp, gg, mm, vv, beta1, beta2, eps, decay, stepSize, bc2Sqrt);
        m[e] = mm;
        v[e] = vv;
        p[e] = pp;
    }
}
