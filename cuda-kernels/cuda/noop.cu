/*
 * noop.cu -- the launch-overhead probe (PERFORMANCE.md: per-launch host overhead, FFM and JCuda vs a native
 * cuLaunchKernel). Not an op, so it has no portable twin.
 *
 *   noop_fwd_kernel1(p, n, a): p[i] = a for i < n (i = the thread index); with n = 0 it does nothing.
 *   p fp32 [>= n], three arguments of the three kinds lorakit passes (pointer, int, float), so the argument
 *   marshalling of each binding is part of what is measured.
 *   Launch: block (32,1,1), grid (1,1,1). Used by ai.lorakit.bench.gpu.LaunchOverhead (JCuda and FFM) and by
 *   cuda-kernels/cuda/bench/launch_overhead.c (the C baseline), both with n = 0.
 */
extern "C" __global__ void noop_fwd_kernel1(float* p, int n, float a) {
    const int i = (int)threadIdx.x;
    if (i < n) {
        p[i] = a;
    }
}
