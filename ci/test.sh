#!/usr/bin/env bash
# The README's test command: installs what the tests need on a fresh machine, then builds and runs every test.
#   ci/test.sh            full build + all tests (nvcc compiles the kernels when it is installed)
set -euo pipefail
cd "$(dirname "$0")/.."

# OpenCL runtime (PoCL) for the OpenCL backend's tests; harmless when already present.
need=()
dpkg -s pocl-opencl-icd >/dev/null 2>&1 || need+=(pocl-opencl-icd)
dpkg -s ocl-icd-libopencl1 >/dev/null 2>&1 || need+=(ocl-icd-libopencl1)
# Open MPI for data-parallel training: mpicc builds native/'s liblorakit_mpi.so, MpiTrainTest runs mpirun -np 2.
dpkg -s openmpi-bin >/dev/null 2>&1 || need+=(openmpi-bin)
dpkg -s libopenmpi-dev >/dev/null 2>&1 || need+=(libopenmpi-dev)
if [ ${#need[@]} -gt 0 ]; then
  echo "ci/test.sh: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  if ! { $SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null; }; then
    echo "ci/test.sh: could not install ${need[*]}; OpenCL/MPI tests will report them unavailable" >&2
  fi
fi

. ci/jdk.sh
echo "ci/test.sh: JDK $JAVA_HOME"
# With PoCL installed, the OpenCL contract tests must run: a missing device is a failure, not a skip.
req=()
dpkg -s pocl-opencl-icd >/dev/null 2>&1 && req+=(-Dlorakit.test.requireOpenCl=true)
# With Open MPI installed, the 2-rank mpirun tests must run and the MPI shim must be built.
command -v mpirun >/dev/null 2>&1 && req+=(-Dlorakit.test.requireMpi=true)
# The GPU bundle (GPU.md) reuses this build: the same Maven run copies the third-party jars for it.
bundle_args=()
if command -v nvcc >/dev/null 2>&1; then
  rm -rf build/gpu-bundle-deps
  mapfile -t bundle_args < <(ci/gpu-bundle.sh --maven-args "$(pwd)/build/gpu-bundle-deps")
fi
mvn -B -ntp "${req[@]}" "$@" verify "${bundle_args[@]}"
# Fuzz targets (models/src/test/java/ai/lorakit/fuzz): verify above replayed their corpora; here each one fuzzes for
# 10 s in its own JVM (Jazzer fuzzes one target per JVM). A finding fails the build and is written to
# models/src/test/resources/ai/lorakit/fuzz/<Target>Inputs/ as a regression input to commit with the fix.
# Jazzer's regex-injection sanitizer is off: tokenizer.json carries its pre-tokenizer regexes as data by format
# (a pattern that does not compile is a TokenizerFormatException); a regex that backtracks for long is still caught
# by each target's time bound.
JAZZER_FUZZ=1 mvn -B -ntp "$@" -pl models -am test -Dtest='*FuzzTest' -Dsurefire.failIfNoSpecifiedTests=false \
  -DreuseForks=false -Djazzer.hooks=true -Djazzer.disabled_hooks=com.code_intelligence.jazzer.sanitizers.RegexInjection \
  -Djunit.jupiter.execution.timeout.mode=disabled
if [ ${#bundle_args[@]} -gt 0 ]; then
  # the bundle as it travels, rehearsed under env -i with its own runtime: a missing runtime module, resource or
  # an absolute path fails here (ci/GPU-CHECK.md)
  ci/gpu-bundle.sh --deps build/gpu-bundle-deps
  ci/gpu-check.sh --rehearse build/gpu-check-rehearsal
else
  # without nvcc there is no bundle: the GPU check up to its first CUDA call ("no CUDA device", exit 0)
  ci/gpu-check.sh build/gpu-check-dry --dry-run
fi
