/*
 * lorakit.h -- the C ABI of liblorakit.so, called from Java through Panama FFM (ai.lorakit.gpu.ffm).
 *
 * Conventions (every function):
 *  - Returns a lorakit_status (LORAKIT_OK = 0) unless documented otherwise; on failure a message naming the
 *    call, the bad argument or the CUDA error (name and text) is kept per thread: lorakit_last_error().
 *  - Arguments are validated BEFORE any CUDA call: a null pointer or a non-positive dimension returns
 *    LORAKIT_ERR_INVALID and touches no device state.
 *  - Pointers are device pointers (cuMemAlloc / cudaMalloc), row-major and contiguous; shapes are given as
 *    [rows,cols] in the comments. `stream` is a CUstream / cudaStream_t (NULL = the default stream).
 *  - Launchers are asynchronous: they check the launch (cudaGetLastError), not the kernel's completion.
 * The Java side checks lorakit_abi_version() against ai.lorakit.gpu.NativeAbi.ABI_VERSION on load: bump both
 * whenever a signature, a status value or a behaviour in this file changes.
 */
#ifndef LORAKIT_H
#define LORAKIT_H

#ifdef __cplusplus
extern "C" {
#endif

#define LORAKIT_ABI_VERSION 2  /* 2: + lorakit_bench_launch_shrink_f32 */

#if defined(__GNUC__)
#define LORAKIT_API __attribute__((visibility("default")))
#else
#define LORAKIT_API
#endif

/* Status codes. Java mirrors them in ai.lorakit.gpu.NativeAbi. */
typedef enum lorakit_status {
    LORAKIT_OK = 0,
    LORAKIT_ERR_INVALID = 1, /* bad argument (null pointer, non-positive or too large dimension) */
    LORAKIT_ERR_CUDA = 2     /* a CUDA runtime call failed (no driver, no device, launch failure, ...) */
} lorakit_status;

/* LORAKIT_ABI_VERSION of the library actually loaded. */
LORAKIT_API int lorakit_abi_version(void);

/* The message of the last failure on the calling thread ("" if none yet). Valid until the next lorakit call
   on this thread; never NULL. */
LORAKIT_API const char* lorakit_last_error(void);

/* Number of CUDA devices. Unlike the other functions this returns the cudaError_t of cudaGetDeviceCount
   (0 = cudaSuccess; 35 = no or too old driver, 100 = no device). *count is set to 0 first, so it is 0 on
   failure. LORAKIT_ERR_INVALID (1 = cudaErrorInvalidValue too) when count is NULL. */
LORAKIT_API int lorakit_cuda_device_count(int* count);

/* LoRA shrink, fp32: u[N,r] = x[N,in] * A[r,in]^T (cuda-kernels/portable/lora_shrink.kc). */
LORAKIT_API int lorakit_lora_shrink_f32(const float* x, const float* A, float* u,
                                        int N, int in, int r, void* stream);

/* LoRA expand, fp32: y[N,out] += s * u[N,r] * B[out,r]^T (cuda-kernels/portable/lora_expand.kc). */
LORAKIT_API int lorakit_lora_expand_f32(const float* u, const float* B, float* y,
                                        int N, int r, int out, float s, void* stream);

/* The C baseline of per-launch host overhead (PERFORMANCE.md: "per-launch host overhead, FFM and JCuda <= 1.2 x a
   native launch"): launches lora_shrink_fwd_kernel1 on (x, A, u, N, in, r) `count` times back to back on `stream`,
   exactly as lorakit_lora_shrink_f32 does (same geometry, a launch check after each), so the Java bindings can time
   the same kernel launched through cuLaunchKernel against it. count >= 1; arguments validated as the launcher's. */
LORAKIT_API int lorakit_bench_launch_shrink_f32(int count, const float* x, const float* A, float* u,
                                                int N, int in, int r, void* stream);

#ifdef __cplusplus
}
#endif

#endif /* LORAKIT_H */
