# Sourced by cuda-kernels/build.sh and native/build.sh: the one list of GPU targets (TOOLCHAIN.md, nvcc 13.0).
# sm_80 (A100), sm_90 (H100/H200), sm_90a (wgmma; guarded by __CUDA_ARCH_FEAT_SM90_ALL in the fast tier), and
# compute_90 PTX so newer GPUs can JIT it (PTX 9.0 needs a CUDA 13 driver, r580+).
LORAKIT_GENCODE=(
  -gencode arch=compute_80,code=sm_80
  -gencode arch=compute_90,code=sm_90
  -gencode arch=compute_90a,code=sm_90a
  -gencode arch=compute_90,code=compute_90
)
# Flags both builds share: C++17, optimised, and any nvcc/ptxas warning fails the build -- including ptxas'
# double-precision warning, so a float silently promoted to double in a kernel is a build error.
LORAKIT_NVCC_FLAGS=(
  -std=c++17 -O3
  -Xptxas --warn-on-double-precision-use
  -Werror all-warnings
)
