#!/usr/bin/env bash
# ci/gpu-bundle.sh [--deps DIR | --maven-args DIR]: builds everything the GPU machine needs into build/gpu-bundle/ (git-ignored), for
# ci/gpu-check.sh to run there (GPU.md). The GPU machine has no Maven, no network and probably no Java, and only
# 64 MiB travel with the working tree, so the bundle is small and self-contained:
#   jre.tar.gz   a jlinked JDK 25 (ci/jre.sh; ~44 MiB unpacked, ~25 MiB packed; gpu-check.sh unpacks it to /tmp)
#   lib/         the module jars and their runtime dependencies (mvn dependency:copy-dependencies); the fatbin
#                and liblorakit.so are inside lorakit-java-bindings.jar; jcuda-natives keeps only the driver and
#                runtime JNI libraries (NVRTC/nvPTXCompiler are 24 MiB and unused)
#   test/        lorakit-java-bindings-*-tests.jar: the contract suite (compiled test classes and resources)
#   tools/       junit-platform-console-standalone (Platform 1.x matching the project's JUnit 5.x)
#   bin/         launch_overhead (the C baseline of the launch-overhead benchmark, cc -O2, dlopen(libcuda))
#   peers/       benchmarks/peers/*.py (also in the working tree; kept here so the bundle is complete)
#   BUNDLE.txt   commit, date, JDK, sizes
# Prints the bundle size, the size of the working tree that travels with it, and their sum; fails when the sum
# is over 64 MiB. Needs nvcc (the bundle is useless without the fatbin and liblorakit.so).
# The runtime must hold every module the bundle's code needs: `jdeps --print-module-deps` over the jars and the test
# classes, less ci/jre.sh's documented exclusions, must be inside ci/jre.sh's list, or the build fails.
#   --maven-args DIR    prints the Maven goals and properties that copy the third-party jars and the JUnit console
#                       launcher into DIR, one per line, for a caller to append to its own build (ci/test.sh appends
#                       them to `mvn verify`, so the bundle reuses that build instead of running Maven again)
#   --deps DIR          use DIR (filled by such a build) and the module jars already under */LORAKIT_BUILD_DIR/:
#                       no Maven run here
#   LORAKIT_BUILD_DIR   Maven output folder name (default target; parallel work uses target-NAME)
#   MVN_OFFLINE=1       pass -o to Maven (everything already in ~/.m2)
set -euo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"
start=$SECONDS
junit=$(sed -n 's:.*<junit.version>\(5\.[0-9]*\.[0-9]*\)</junit.version>.*:\1:p' pom.xml | head -1)
platform="1.${junit#5.}"   # JUnit console launcher: Platform 1.X.Y for JUnit 5.X.Y
dep_plugin=org.apache.maven.plugins:maven-dependency-plugin:3.8.1
# Third-party jars come from copy-dependencies; lorakit's own are the thin module jars (the reactor would hand out
# the shaded CLI/JMH jars instead, which hold everything twice). JMH and its dependencies are left out: the GPU
# classes do not use them; nor JUnit (the console launcher brings its own: two copies of an engine clash); nor
# Jinjava and what only it brings (chat templates of instruction data, which no GPU check step renders: 5 MiB).
jinjava_groups=com.hubspot.jinjava,com.hubspot.immutables,com.google.guava,com.google.code.findbugs,com.google.errorprone,com.google.j2objc,com.google.re2j,org.checkerframework,org.javassist,org.yaml,com.fasterxml.jackson.dataformat,com.fasterxml.jackson.datatype,commons-net,ch.obermuhlner,com.googlecode.java-ipv6
maven_args() {   # one per line
  printf '%s\n' "$dep_plugin:copy-dependencies" -DincludeScope=runtime "-DoutputDirectory=$1" \
    -DexcludeGroupIds=ai.lorakit,org.openjdk.jmh,org.apache.commons,net.sf.jopt-simple,org.junit,org.junit.jupiter,org.junit.platform,org.opentest4j,org.apiguardian,$jinjava_groups \
    "$dep_plugin:copy" "-Dartifact=org.junit.platform:junit-platform-console-standalone:$platform"
}
deps=""
case "${1:-}" in
  --maven-args) [[ $# -eq 2 ]] || { echo "usage: $0 --maven-args DIR" >&2; exit 2; }; maven_args "$2"; exit 0 ;;
  --deps) [[ $# -eq 2 ]] || { echo "usage: $0 --deps DIR" >&2; exit 2; }; deps="$(cd "$2" && pwd)" ;;
  "") ;;
  *) echo "usage: $0 [--deps DIR | --maven-args DIR]" >&2; exit 2 ;;
esac
bd="${LORAKIT_BUILD_DIR:-target}"
bundle="build/gpu-bundle"
limit=$((64 * 1024 * 1024))
mvn_flags=(-B -ntp -q "-Dlorakit.buildDir=$bd")
[[ "${MVN_OFFLINE:-0}" == 1 ]] && mvn_flags+=(-o)

. ci/jdk.sh
command -v nvcc >/dev/null 2>&1 || { echo "ci/gpu-bundle.sh: nvcc not found: the bundle needs the fatbin and liblorakit.so" >&2; exit 1; }

# 1. the runtime (cached under build/jre; packed once per runtime)
ci/jre.sh build/jre
mkdir -p "$bundle"
rm -rf "$bundle/jre"    # an unpacked runtime must not travel: it alone is ~44 MiB
# repacked unless the packed runtime is the one linked (same stamp: JDK build and module list)
if [[ ! -f "$bundle/jre.tar.gz" || "$(cat "$bundle/jre.stamp" 2>/dev/null)" != "$(cat build/jre/lorakit-jre.stamp)" ]]; then
  tar -C build -czf "$bundle/jre.tar.gz.tmp" jre
  mv "$bundle/jre.tar.gz.tmp" "$bundle/jre.tar.gz"
  cp build/jre/lorakit-jre.stamp "$bundle/jre.stamp"
fi

# 2. jars: the module jars and their third-party dependencies, from this build or from the caller's (--deps)
t=$SECONDS
rm -rf "$bundle/lib" "$bundle/test" "$bundle/tools" "$bundle/bin" "$bundle/peers"
mkdir -p "$bundle/lib" "$bundle/test" "$bundle/tools" "$bundle/bin" "$bundle/peers"
if [[ -z "$deps" ]]; then
  deps="$root/build/gpu-bundle-deps"
  rm -rf "$deps"
  mapfile -t margs < <(maven_args "$deps")
  mvn "${mvn_flags[@]}" -DskipTests package "${margs[@]}"
fi
console_jar="$deps/junit-platform-console-standalone-$platform.jar"
[[ -f "$console_jar" ]] || { echo "ci/gpu-bundle.sh: $console_jar missing (see --maven-args)" >&2; exit 1; }
cp "$console_jar" "$bundle/tools/"
find "$deps" -maxdepth 1 -name '*.jar' ! -name 'junit-platform-console-standalone-*' -exec cp {} "$bundle/lib/" \;
version=$(sed -n '0,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' pom.xml)
for m in java-bindings adapters models benchmarks; do
  cp "$m/$bd/lorakit-$m-$version.jar" "$bundle/lib/"
done
cp "java-bindings/$bd/lorakit-java-bindings-$version-tests.jar" "$bundle/test/"
echo "ci/gpu-bundle.sh: jars $((SECONDS - t)) s"

bindings_jar="$bundle/lib/lorakit-java-bindings-$version.jar"
for res in ai/lorakit/kernels/lorakit.fatbin ai/lorakit/native/linux-x86_64/liblorakit.so; do
  if ! unzip -l "$bindings_jar" "$res" >/dev/null 2>&1; then
    echo "ci/gpu-bundle.sh: $bindings_jar has no $res (was nvcc skipped?)" >&2
    exit 1
  fi
done

# 3. jcuda-natives without the JNI libraries lorakit never loads (NVRTC, nvPTXCompiler)
for j in "$bundle"/lib/jcuda-natives-*.jar; do
  [[ -f "$j" ]] || continue
  /usr/bin/python3 - "$j" <<'EOF'
import sys, zipfile, os
src = sys.argv[1]; tmp = src + ".tmp"
with zipfile.ZipFile(src) as zin, zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zout:
    for item in zin.infolist():
        if "JNvrtc" in item.filename or "JNvPTXCompiler" in item.filename:
            continue
        zout.writestr(item, zin.read(item.filename))
os.replace(tmp, src)
EOF
done

# 4. every module the code needs is in the runtime (jdeps over the jars and the test classes)
t=$SECONDS
need="$(cd "$bundle" && "$JAVA_HOME/bin/jdeps" --multi-release 25 --ignore-missing-deps --print-module-deps \
  --module-path lib --class-path "$(printf '%s:' lib/*.jar tools/*.jar)" lib/*.jar test/*.jar tools/*.jar 2>/dev/null \
  | tail -1)"
have=",$(build/jre/bin/java --list-modules | sed 's/@.*//' | paste -sd, -),$(ci/jre.sh --excluded),"   # what was linked
missing=""
for mod in ${need//,/ }; do
  [[ "$have" == *",$mod,"* ]] || missing+=" $mod"
done
if [[ -z "$need" || -n "$missing" ]]; then
  echo "ci/gpu-bundle.sh: the runtime lacks modules the bundle's code needs:${missing:- (jdeps printed nothing)}" >&2
  echo "  add them to ci/jre.sh's modules (or, with a reason, to its excluded list)" >&2
  exit 1
fi
echo "ci/gpu-bundle.sh: jdeps: the code needs $need; the runtime has them ($((SECONDS - t)) s)"

# 5. the C launcher and the peers
cc -O2 -std=c11 -Wall -Wextra -Werror -o "$bundle/bin/launch_overhead" cuda-kernels/cuda/bench/launch_overhead.c -ldl
cp benchmarks/peers/*.py "$bundle/peers/"

# 6. sizes: what travels = the bundle (carried) + the working tree (tracked and untracked, not ignored)
bundle_bytes=$(du -sb "$bundle" | cut -f1)
tree_bytes=$( { git ls-files -z; git ls-files -z --others --exclude-standard; } \
  | xargs -0 -r stat -c %s 2>/dev/null | awk '{s += $1} END {print s + 0}')
total=$((bundle_bytes + tree_bytes))
mib() { awk -v b="$1" 'BEGIN {printf "%.1f MiB", b / 1048576}'; }
{
  echo "lorakit GPU bundle"
  echo "commit   $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet 2>/dev/null || echo ' (+ uncommitted changes)')"
  echo "date     $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "jdk      $(cat build/jre/lorakit-jre.stamp)"
  echo "junit    console standalone $platform"
  echo "modules  needed by the code (jdeps): $need"
  echo "bundle   $(mib "$bundle_bytes")"
  echo "tree     $(mib "$tree_bytes")"
} > "$bundle/BUNDLE.txt"
echo "ci/gpu-bundle.sh: bundle $(mib "$bundle_bytes") + working tree $(mib "$tree_bytes") = $(mib "$total") (limit 64 MiB), $((SECONDS - start)) s"
du -sh "$bundle"/* | sed 's/^/  /'
if (( total > limit )); then
  echo "ci/gpu-bundle.sh: too large to travel: $(mib "$total") > 64 MiB" >&2
  exit 1
fi
