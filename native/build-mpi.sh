#!/usr/bin/env bash
# native/build-mpi.sh <outdir>: builds liblorakit_mpi.so (the MPI process-group shim of include/lorakit_mpi.h, for
# the Panama FFM path) into <outdir>/resources/ai/lorakit/native/linux-x86_64/liblorakit_mpi.so with mpicc -shared.
# Run by Maven (native/pom.xml, compile phase) with <outdir> = ${project.build.directory}.
#  - No mpicc: prints one line and exits 0 (single-process lorakit needs no MPI library).
#  - Any compile error or warning fails the build.
#  - libmpi is linked dynamically: the library loads only where an MPI runtime is installed, which is where
#    mpirun/srun started the process; Java reports the loader's message otherwise.
#  - Only the lorakit_mpi_* functions are exported (-fvisibility=hidden + LORAKIT_MPI_API).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <outdir>" >&2
  exit 2
fi
if ! command -v mpicc >/dev/null 2>&1; then
  echo "native: mpicc not found, skipping liblorakit_mpi.so (Debian: apt-get install openmpi-bin libopenmpi-dev; single-process training is unaffected)"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
lib="$out/resources/ai/lorakit/native/linux-x86_64/liblorakit_mpi.so"
inputs=("$here/include/lorakit_mpi.h" "$here/mpi/lorakit_mpi.c" "$here/build-mpi.sh")
if [[ -f "$lib" && -z "$(find "${inputs[@]}" -newer "$lib" -print -quit)" ]]; then
  echo "native: liblorakit_mpi.so is up to date"
  exit 0
fi
mkdir -p "$(dirname "$lib")"
mpicc -shared -fPIC -fvisibility=hidden -O2 -std=c11 -Wall -Wextra -Werror -Wl,-z,defs \
  -I"$here/include" "$here/mpi/lorakit_mpi.c" -ldl -o "$lib.tmp"
mv "$lib.tmp" "$lib"
echo "native: built liblorakit_mpi.so ($(stat -c %s "$lib") bytes, $(mpicc --showme:version 2>&1 | head -1))"
