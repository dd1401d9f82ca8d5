#!/usr/bin/env bash
# ci/jre.sh [DEST | --modules | --excluded]: a jlinked JDK 25 runtime for the GPU machine, which has no Java (TOOLCHAIN.md, "Carrying Java
# to the GPU machine"). Default DEST: build/jre (ci/gpu-bundle.sh packs it into build/gpu-bundle/jre.tar.gz:
# unpacked, runtime + jars + working tree would not fit the 64 MiB that travel).
#   modules  what `jdeps --print-module-deps` finds over the bundle's jars (ci/gpu-bundle.sh re-checks it on every
#            build and fails when a module is missing), plus the ones only looked up at run time:
#              java.base jdk.incubator.vector       lorakit (FFM, the Vector API)
#              java.management jdk.management      the benchmarks, CudaDeviceIT (com.sun.management.ThreadMXBean)
#              java.logging                        JCuda, jline
#              jdk.unsupported                     LWJGL, JCuda (sun.misc.Unsafe)
#              java.sql java.xml                   JUnit's console launcher (its shaded parsers; XML reports)
#              jdk.zipfs                           JUnit's console launcher (a service: jdeps cannot see it)
#            Left out on purpose: java.desktop (only the xchart loss plots of ai.lorakit.bench.variants, which no
#            GPU check step runs; it would add 12 MiB to the packed runtime).
#   flags    --compress=zip-9 --strip-debug --no-header-files --no-man-pages, then strip --strip-unneeded libjvm.so
# About 46 MiB on disk (27 MiB as tar.gz), ~20-40 s on 2 cores. Cached: nothing is done when DEST/lorakit-jre.stamp
# names the same JDK build and module list. Works with JDKs without jmods/ (JDK 24+ links from its own runtime).
set -euo pipefail
cd "$(dirname "$0")/.."

modules="java.base,java.logging,java.management,java.sql,java.xml,jdk.incubator.vector,jdk.management,jdk.unsupported,jdk.zipfs"
# modules that jdeps reports and that are left out on purpose (see above); ci/gpu-bundle.sh reads this line
excluded="java.desktop"
case "${1:-}" in
  --modules) echo "$modules"; exit 0 ;;     # for ci/gpu-bundle.sh's jdeps check
  --excluded) echo "$excluded"; exit 0 ;;
esac
dest="${1:-build/jre}"

. ci/jdk.sh
jdk_release="$(sed -n 's/^JAVA_RUNTIME_VERSION="\(.*\)"/\1/p' "$JAVA_HOME/release")"
stamp="jdk=${jdk_release:-unknown} home=$JAVA_HOME modules=$modules"
if [[ -x "$dest/bin/java" && -f "$dest/lorakit-jre.stamp" && "$(cat "$dest/lorakit-jre.stamp")" == "$stamp" ]]; then
  echo "ci/jre.sh: $dest is up to date ($(du -sh "$dest" | cut -f1), JDK ${jdk_release})"
  exit 0
fi

start=$SECONDS
rm -rf "$dest" "$dest.tmp"
mkdir -p "$(dirname "$dest")"
"$JAVA_HOME/bin/jlink" --add-modules "$modules" --compress=zip-9 --strip-debug --no-header-files --no-man-pages \
  --output "$dest.tmp" 2>&1 | grep -v "WARNING: Using incubator modules" || true
if [[ ! -x "$dest.tmp/bin/java" ]]; then
  echo "ci/jre.sh: jlink failed (JDK $JAVA_HOME)" >&2
  exit 1
fi
if command -v strip >/dev/null 2>&1; then
  strip --strip-unneeded "$dest.tmp/lib/server/libjvm.so"
else
  echo "ci/jre.sh: no strip on PATH; libjvm.so keeps its symbols (about 5 MiB more)" >&2
fi
"$dest.tmp/bin/java" --add-modules jdk.incubator.vector -version >/dev/null 2>&1 \
  || { echo "ci/jre.sh: the linked runtime does not start" >&2; exit 1; }
echo "$stamp" > "$dest.tmp/lorakit-jre.stamp"
mv "$dest.tmp" "$dest"
echo "ci/jre.sh: linked $dest ($(du -sh "$dest" | cut -f1), JDK ${jdk_release}, $((SECONDS - start)) s)"
