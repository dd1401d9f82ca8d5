#!/usr/bin/env bash
# native/build.sh <outdir>: builds liblorakit.so (the C ABI of include/lorakit.h, for the Panama FFM path) into
# <outdir>/resources/ai/lorakit/native/linux-x86_64/liblorakit.so with nvcc -shared.
# Run by Maven (native/pom.xml, compile phase) with <outdir> = ${project.build.directory}.
#  - No nvcc: prints one line and exits 0 (the CPU and OpenCL backends do not need the library).
#  - Any compile error fails (nvcc's exit status; warnings are errors, see ../cuda-kernels/arch.sh).
#  - The CUDA runtime is linked statically (nvcc's default): the library needs no CUDA .so to load, and
#    without a driver its calls return cudaErrorInsufficientDriver (35) instead of failing to load.
#  - Only the lorakit_* functions are exported (-fvisibility=hidden + LORAKIT_API in lorakit.h).
#  - Incremental: nothing is rebuilt when no input is newer than the library and the source set is unchanged.
#  - Beside the library, liblorakit.so.requires (a resource too) names what it needs from the machine that loads
#    it, read from its dynamic section and versioned symbols (objdump -T): the newest GLIBC_, GLIBCXX_ and CXXABI_
#    version of any symbol it imports, and its NEEDED libraries. `lorakit info` prints it, and a failed load names
#    it (NativeRequirements).
set -euo pipefail

if [[ $# -ne 1 ]]; then
  echo "usage: $0 <outdir>" >&2
  exit 2
fi
if ! command -v nvcc >/dev/null 2>&1; then
  echo "native: nvcc not found, skipping liblorakit.so (CPU and OpenCL backends are unaffected)"
  exit 0
fi

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
kernels="$(cd "$here/../cuda-kernels" && pwd)"
out="$(mkdir -p "$1" && cd "$1" && pwd)"
source "$kernels/arch.sh"
lib="$out/resources/ai/lorakit/native/linux-x86_64/liblorakit.so"
manifest="$out/liblorakit.sources"

shopt -s nullglob
sources=("$here"/src/*.cu)
inputs=("$here"/include/*.h "$here"/src/*.h "$here"/src/*.cu "$here/build.sh"
        "$kernels"/kcompat.h "$kernels"/arch.sh "$kernels"/portable/*.kc)
shopt -u nullglob
if [[ ${#sources[@]} -eq 0 ]]; then
  echo "native: no src/*.cu sources in $here" >&2
  exit 1
fi

# write_requires LIB: LIB.requires, e.g. "glibc=2.34", "glibcxx=3.4.29", "cxxabi=1.3.9", "needed=libc.so.6 ..."
write_requires() {
  local so="$1" newest
  if ! command -v objdump >/dev/null 2>&1 || ! command -v readelf >/dev/null 2>&1; then
    echo "native: no objdump/readelf: liblorakit.so.requires not written (lorakit info will say 'unknown')"
    return 0
  fi
  newest() { objdump -T "$so" | grep -oE "\b$1_[0-9]+(\.[0-9]+)*\b" | sed "s/^$1_//" | sort -uV | tail -1; }
  {
    echo "# what liblorakit.so needs from the loading machine (native/build.sh, objdump -T and readelf -d)"
    echo "glibc=$(newest GLIBC)"
    echo "glibcxx=$(newest GLIBCXX)"
    echo "cxxabi=$(newest CXXABI)"
    echo "needed=$(readelf -d "$so" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ' | sed 's/ $//')"
  } > "$so.requires.tmp"
  mv "$so.requires.tmp" "$so.requires"
  echo "native: liblorakit.so needs $(grep '^glibc=' "$so.requires")"
}

printf '%s\n' "${inputs[@]}" > "$manifest.new"
if [[ -f "$lib" && -f "$manifest" ]] && cmp -s "$manifest" "$manifest.new" \
   && [[ -z "$(find "${inputs[@]}" -newer "$lib" -print -quit)" ]]; then
  rm -f "$manifest.new"
  [[ -f "$lib.requires" ]] || write_requires "$lib"
  echo "native: liblorakit.so is up to date"
  exit 0
fi
mv "$manifest.new" "$manifest"
rm -f "$lib"
mkdir -p "$(dirname "$lib")"

start=$SECONDS
nvcc -shared -Xcompiler -fPIC,-fvisibility=hidden -cudart static -Xlinker -z,defs,--as-needed \
  "${LORAKIT_NVCC_FLAGS[@]}" "${LORAKIT_GENCODE[@]}" \
  -I"$here/include" -I"$kernels" -I"$kernels/portable" \
  "${sources[@]}" -o "$lib.tmp"
mv "$lib.tmp" "$lib"
write_requires "$lib"
echo "native: built liblorakit.so ($(stat -c %s "$lib") bytes, ${#sources[@]} sources, $((SECONDS - start)) s)"
