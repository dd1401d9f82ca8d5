/*
 * kcompat.h -- one kernel source, two languages.
 *
 * Every kernel in portable/<op>.kc is written once and compiled two ways:
 *   CUDA C++   : nvcc -x cu -include kcompat.h portable/<op>.kc   (cuda-kernels/build.sh: into the fatbin;
 *                native/src: into liblorakit.so through #include "kcompat.h" + #include "<op>.kc")
 *   OpenCL C   : the text of this file followed by the text of <op>.kc, built as OpenCL C 1.2
 *                (OpenClDevice concatenates the two resources; no include paths inside jars)
 * The language is detected with __OPENCL_C_VERSION__ / __OPENCL_VERSION__ (OpenCL C compilers) and __CUDACC__.
 *
 * Macros (CUDA expansion | OpenCL expansion):
 *   KERNEL            entry point (KERNEL void f) extern "C" __global__              | __kernel
 *   GLOBAL            global address space       (nothing)                           | __global
 *   LOCAL             work-group shared array    __shared__                          | __local
 *   BARRIER()         work-group barrier         __syncthreads()                     | barrier(CLK_LOCAL_MEM_FENCE)
 *   RESTRICT          no-alias pointer qualifier __restrict__                        | restrict
 *   INLINE            device helper function     static __device__ __forceinline__   | static inline
 *   LOCAL_ID_X/Y/Z    thread index in its group  threadIdx.x                         | get_local_id(0)
 *   GROUP_ID_X/Y/Z    group (block) index        blockIdx.x                          | get_group_id(0)
 *   LOCAL_SIZE_X/Y/Z  threads per group          blockDim.x                          | get_local_size(0)
 *   NUM_GROUPS_X/Y/Z  groups in the launch       gridDim.x                           | get_num_groups(0)
 *   GLOBAL_ID_X/Y/Z   GROUP_ID * LOCAL_SIZE + LOCAL_ID (both)
 *   All index macros are plain int. Launch geometry: OpenCL global size = CUDA grid x block, local = block.
 *   Types: uchar, ushort, uint, ulong (64-bit) and long (64-bit) mean the same in both languages; use long
 *   for element offsets that can pass 2^31 ((long)row * cols + col).
 *   Bits:  AS_FLOAT(uint) / AS_UINT(float) reinterpret 32 bits.
 *   bf16 storage (no bf16 arithmetic anywhere in the portable tier):
 *     bf16_to_f32(ushort bits) -> float            exact
 *     f32_to_bf16(float)       -> ushort bits      round to nearest even, NaN stays a (quiet) NaN
 *   KC_INF, KC_FLT_MAX: +infinity and the largest float, as float constants.
 *   fp16 storage (IEEE binary16, no half arithmetic either):
 *     f16_to_f32(ushort bits)  -> float            exact (subnormals, inf, NaN)
 *     f32_to_f16(float)        -> ushort bits      round to nearest even, as Java's Float.floatToFloat16
 *   Tensors of any storage dtype (KernelBackend passes one dtype code per tensor argument):
 *     KC_F32 0, KC_BF16 1, KC_F16 2, KC_I32 3   (the order of ai.lorakit.gpu.DType)
 *     kc_load(GLOBAL const void* p, int dt, long i)      -> element i as fp32 (I32 converted)
 *     kc_store(GLOBAL void* p, int dt, long i, float v)  stores v rounded to dt (I32: Java's (int) cast:
 *                                                         NaN -> 0, saturating)
 *   kc_is_finite(float): on the bits, so it holds under fast-math flags too.
 *
 * Rules for portable kernels (what the shared subset cannot have):
 *   - No templates, classes, references, overloads of your own, or C++ casts: plain C99. Specialise with
 *     macros or -D defines instead of templates.
 *   - Math in fp32 only, with the overloaded names both languages have for float: exp, log, sqrt, rsqrt,
 *     tanh, erf, fabs, fmax, fmin, floor, pow, fma; integer min/max. Never expf/sqrtf/__expf (CUDA only).
 *     Float literals carry the f suffix (1.0f). build.sh compiles with ptxas' double-precision warning as an
 *     error, so an accidental promotion to double (a literal without f, a call resolving to the double
 *     overload) that leaves fp64 instructions fails the build instead of running at fp64 speed.
 *   - Half/bf16 as storage only (ushort bits + the helpers above); convert to fp32 to compute.
 *   - No warp shuffles, votes or subgroups: reduce through LOCAL arrays and BARRIER().
 *   - No float atomics (OpenCL 1.2 has none): integer atomics or a CAS loop, or restructure.
 *   - No dynamic shared memory: LOCAL arrays have a fixed size, declared at the top level of the kernel
 *     body (OpenCL forbids __local variables in helper functions and nested blocks).
 *   - Every BARRIER() must be reached by all threads of the group: guard loads/stores, not the barrier.
 *   - Every global pointer parameter carries GLOBAL (and const/RESTRICT where true); kernel parameters are
 *     pointers, int and float only (no structs, no size_t, no bool).
 *   - All sources of the fatbin share one translation unit (build.sh includes them one after another): give
 *     every macro and helper a prefix that names the op (LORA_SHRINK_TILE). The launchers in native/src
 *     include the same files and use those macros for their launch geometry.
 *   - Kernel names: <op>_<fwd|bwd_x>_kernel<N> (STYLE.md 12.4); the header comment of each file says what it
 *     computes, the shapes, the launch geometry and the Backend op it implements.
 */
#ifndef LORAKIT_KCOMPAT_H
#define LORAKIT_KCOMPAT_H

#if defined(__OPENCL_C_VERSION__) || defined(__OPENCL_VERSION__)
/* ------------------------------------------------------------------------------------------- OpenCL C 1.2 */

#define KERNEL __kernel
#define GLOBAL __global
#define LOCAL __local
#define BARRIER() barrier(CLK_LOCAL_MEM_FENCE)
#define RESTRICT restrict
#define INLINE static inline

#define LOCAL_ID_X ((int)get_local_id(0))
#define LOCAL_ID_Y ((int)get_local_id(1))
#define LOCAL_ID_Z ((int)get_local_id(2))
#define GROUP_ID_X ((int)get_group_id(0))
#define GROUP_ID_Y ((int)get_group_id(1))
#define GROUP_ID_Z ((int)get_group_id(2))
#define LOCAL_SIZE_X ((int)get_local_size(0))
#define LOCAL_SIZE_Y ((int)get_local_size(1))
#define LOCAL_SIZE_Z ((int)get_local_size(2))
#define NUM_GROUPS_X ((int)get_num_groups(0))
#define NUM_GROUPS_Y ((int)get_num_groups(1))
#define NUM_GROUPS_Z ((int)get_num_groups(2))

/* uchar, ushort, uint, ulong and 64-bit long are built into OpenCL C. */
#define AS_FLOAT(u) as_float(u)
#define AS_UINT(f) as_uint(f)

#elif defined(__CUDACC__)
/* ------------------------------------------------------------------------------------------------ CUDA C++ */

#define KERNEL extern "C" __global__
#define GLOBAL
#define LOCAL __shared__
#define BARRIER() __syncthreads()
#define RESTRICT __restrict__
#define INLINE static __device__ __forceinline__

#define LOCAL_ID_X ((int)threadIdx.x)
#define LOCAL_ID_Y ((int)threadIdx.y)
#define LOCAL_ID_Z ((int)threadIdx.z)
#define GROUP_ID_X ((int)blockIdx.x)
#define GROUP_ID_Y ((int)blockIdx.y)
#define GROUP_ID_Z ((int)blockIdx.z)
#define LOCAL_SIZE_X ((int)blockDim.x)
#define LOCAL_SIZE_Y ((int)blockDim.y)
#define LOCAL_SIZE_Z ((int)blockDim.z)
#define NUM_GROUPS_X ((int)gridDim.x)
#define NUM_GROUPS_Y ((int)gridDim.y)
#define NUM_GROUPS_Z ((int)gridDim.z)

/* The OpenCL names. glibc's <sys/types.h> declares the same typedefs (ulong = unsigned long, 64-bit on the
   LP64 Linux targets lorakit builds for); repeating an identical typedef is legal C++. */
typedef unsigned char uchar;
typedef unsigned short ushort;
typedef unsigned int uint;
typedef unsigned long ulong;
static_assert(sizeof(long) == 8 && sizeof(ulong) == 8, "kcompat.h: long/ulong must be 64-bit as in OpenCL C");

#define AS_FLOAT(u) __uint_as_float(u)
#define AS_UINT(f) __float_as_uint(f)

#else
#error "kcompat.h: compile as CUDA (nvcc -x cu) or as OpenCL C (this text before the kernel source)"
#endif

/* -------------------------------------------------------------------------------------------- both languages */

#define GLOBAL_ID_X (GROUP_ID_X * LOCAL_SIZE_X + LOCAL_ID_X)
#define GLOBAL_ID_Y (GROUP_ID_Y * LOCAL_SIZE_Y + LOCAL_ID_Y)
#define GLOBAL_ID_Z (GROUP_ID_Z * LOCAL_SIZE_Z + LOCAL_ID_Z)

#define KC_INF AS_FLOAT(0x7f800000u)
#define KC_FLT_MAX 3.402823466e+38f

/* bf16 bits (the upper half of an fp32) -> fp32; exact. */
INLINE float bf16_to_f32(ushort bits) {
    return AS_FLOAT(((uint)bits) << 16);
}

/* fp32 -> bf16 bits, round to nearest even; NaN stays NaN (quiet, sign kept); overflow rounds to +-inf. */
INLINE ushort f32_to_bf16(float f) {
    uint u = AS_UINT(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        return (ushort)((u >> 16) | 0x0040u);
    }
    u += 0x7fffu + ((u >> 16) & 1u);
    return (ushort)(u >> 16);
}

/* IEEE binary16 bits -> fp32; exact. */
INLINE float f16_to_f32(ushort bits) {
    const uint sign = ((uint)bits & 0x8000u) << 16;
    const uint e = ((uint)bits >> 10) & 0x1fu;
    const uint m = (uint)bits & 0x3ffu;
    if (e == 0u) {                                   /* zero or subnormal: m * 2^-24, exact in fp32 */
        return AS_FLOAT(sign | AS_UINT((float)m * 5.9604644775390625e-8f));
    }
    if (e == 31u) {                                  /* inf or NaN */
        return AS_FLOAT(sign | 0x7f800000u | (m << 13));
    }
    return AS_FLOAT(sign | ((e + 112u) << 23) | (m << 13));
}

/* fp32 -> IEEE binary16 bits, round to nearest even (Java's Float.floatToFloat16); NaN stays NaN, values from
   65520 up round to infinity, values below 2^-14 to subnormals. */
INLINE ushort f32_to_f16(float f) {
    const uint u = AS_UINT(f);
    const uint sign = (u >> 16) & 0x8000u;
    uint a = u & 0x7fffffffu;
    if (a > 0x7f800000u) {                           /* NaN: quiet, keep the top payload bits */
        return (ushort)(sign | 0x7e00u | ((a >> 13) & 0x3ffu));
    }
    if (a >= 0x477ff000u) {                          /* >= 65520 (the midpoint above 65504) or inf */
        return (ushort)(sign | 0x7c00u);
    }
    if (a < 0x38800000u) {                           /* below 2^-14: the fp32 add rounds |f| to a multiple */
        const float t = AS_FLOAT(a) + 0.5f;          /* of 2^-24 (nearest even); the low bits are the half */
        return (ushort)(sign | (AS_UINT(t) - 0x3f000000u));
    }
    a += 0xc8000fffu + ((a >> 13) & 1u);             /* rebias the exponent (-112 << 23) and round to even */
    return (ushort)(sign | (a >> 13));
}

/* Storage dtype codes: the ordinals of ai.lorakit.gpu.DType. */
#define KC_F32 0
#define KC_BF16 1
#define KC_F16 2
#define KC_I32 3

/* Element i of a tensor stored as dt, as fp32 (I32 converted to the nearest float). */
INLINE float kc_load(GLOBAL const void* p, int dt, long i) {
    if (dt == KC_F32) {
        return ((GLOBAL const float*)p)[i];
    }
    if (dt == KC_BF16) {
        return bf16_to_f32(((GLOBAL const ushort*)p)[i]);
    }
    if (dt == KC_F16) {
        return f16_to_f32(((GLOBAL const ushort*)p)[i]);
    }
    return (float)((GLOBAL const int*)p)[i];
}

/* Stores v into element i of a tensor stored as dt, rounded to dt; I32 as Java's (int) cast. */
INLINE void kc_store(GLOBAL void* p, int dt, long i, float v) {
    if (dt == KC_F32) {
        ((GLOBAL float*)p)[i] = v;
    } else if (dt == KC_BF16) {
        ((GLOBAL ushort*)p)[i] = f32_to_bf16(v);
    } else if (dt == KC_F16) {
        ((GLOBAL ushort*)p)[i] = f32_to_f16(v);
    } else {
        ((GLOBAL int*)p)[i] = v != v ? 0
                : v >= 2147483648.0f ? 2147483647
                : v <= -2147483648.0f ? (-2147483647 - 1)
                : (int)v;
    }
}

/* Whether x is neither NaN nor infinite (tests the exponent bits: immune to fast-math assumptions). */
INLINE int kc_is_finite(float x) {
    return (AS_UINT(x) & 0x7f800000u) != 0x7f800000u;
}

#endif /* LORAKIT_KCOMPAT_H */
