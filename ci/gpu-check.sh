#!/usr/bin/env bash
# ci/gpu-check.sh: the one prepared script for the GPU machine (GPU.md; commands, carry list and timeouts in
# ci/GPU-CHECK.md). It runs in the repository root there, with build/gpu-bundle/ (ci/gpu-bundle.sh) carried next to
# the working tree. The GPU machine has no Java, no Maven and no network: Java is the bundle's jlinked runtime.
#
#   ci/gpu-check.sh --pass correctness OUT   (budget 240 s) facts; probe; `lorakit info`; the fast tier against its
#                                             portable twins on ffm and jcuda; the JUnit suite with
#                                             -Dlorakit.test.requireCuda=true: the contract suite on cuda-ffm and
#                                             cuda-jcuda, cuBLAS, CUDA Graph capture/replay, JCuda pointer interop,
#                                             the fake-driver tests; NCCL's one-rank device all-reduce (NcclIT);
#                                             GPT-2 training steps of every method per CUDA backend against cpu
#   ci/gpu-check.sh --pass perf OUT          (budget 420 s) facts; the microbenchmarks and PEFT's layers; launch
#                                             overhead (jcuda, ffm, C); the GPT-2 step (tokens/s, device memory) and
#                                             the PEFT peer (eager, then torch.compile); the PEFT interop check
#   ci/gpu-check.sh --rehearse [OUT]         (no GPU; ci/test.sh) unpacks the bundle with a copy of the working tree
#                                             into a fresh temporary folder and runs both passes there under
#                                             `env -i PATH=/usr/bin:/bin HOME=<fresh>`: the bundle's own runtime, no
#                                             system Java, no Maven, no ~/.m2. Every step that needs no GPU runs; a
#                                             GPU step runs until its first CUDA call ("no CUDA device": skipped).
#   ci/gpu-check.sh [OUT] --dry-run          (no GPU) facts, Java, the contract suite listing, the peers compiled,
#                                             the C launcher, the probe ("no CUDA device"); exit 0. Without a bundle
#                                             it uses the Maven outputs of the last build and the JDK of ci/jdk.sh.
#
# Steps: each has its own timeout (seconds, in the table below each call) and the pass a budget (GPU_CHECK_BUDGET
# overrides it). A step starts only when its timeout fits in what is left, or when at least 30 s are left (it is
# then cut at the budget); a step that does not start, or is cut by the budget, is "not run (budget)", never failed.
# Steps are ordered by importance, so what the budget drops is the least important.
# Results, written as soon as each step ends (a killed pass still returns every finished step):
#   OUT/steps/NN-name.log    the step's output          OUT/steps/NN-name.json   {step, status, seconds, detail}
#   OUT/steps.tsv            one line per finished step  OUT/*.json               what the steps measured
#   OUT/gpu-check.log        everything (tee)            OUT/summary.json         all of it, and the table printed last
# Status: passed | failed | skipped (with the reason: a python package missing, no CUDA device in a rehearsal, a
# step it needs did not pass) | not run (budget). Exit status: 1 when a step failed, else 0 (2: usage).
# Environment: GPU_CHECK_BUDGET, LORAKIT_GPU_BUNDLE (another bundle folder), LORAKIT_BUILD_DIR (dry run without a
# bundle), OUT (the default OUT).
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

mode=""
pass=""
rehearsal=0     # set by the rehearsal for the passes it runs (an argument: env -i leaves no variable)
outdir=""
usage() { sed -n '2,38p' "$0"; }
while (( $# > 0 )); do
  case "$1" in
    --pass)
      [[ $# -ge 2 ]] || { echo "ci/gpu-check.sh: --pass needs correctness or perf" >&2; exit 2; }
      pass="$2"; mode=pass; shift 2
      [[ "$pass" == correctness || "$pass" == perf ]] \
        || { echo "ci/gpu-check.sh: unknown pass '$pass' (correctness or perf)" >&2; exit 2; } ;;
    --dry-run) mode=dry-run; shift ;;
    --rehearse) mode=rehearse; shift ;;
    --rehearsal) rehearsal=1; shift ;;
    -h|--help) usage; exit 0 ;;
    -*) echo "ci/gpu-check.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    *) outdir="$1"; shift ;;
  esac
done
if [[ -z "$mode" ]]; then
  echo "ci/gpu-check.sh: say what to run: --pass correctness OUT, --pass perf OUT, --rehearse or --dry-run" >&2
  exit 2
fi
bundle="${LORAKIT_GPU_BUNDLE:-$root/build/gpu-bundle}"

# ------------------------------------------------------------------------------------------------ rehearsal

# The working tree as it travels (tracked and untracked files that git does not ignore) + the bundle, in a fresh
# folder; then both passes under env -i with the bundle's runtime. Prints the time per pass.
rehearse() {
  local out="${outdir:-build/gpu-check-rehearsal}"
  if [[ ! -f "$bundle/jre.tar.gz" || ! -d "$bundle/lib" ]]; then
    echo "ci/gpu-check.sh --rehearse: no bundle in $bundle (run ci/gpu-bundle.sh first)" >&2
    return 1
  fi
  mkdir -p "$out" && out="$(cd "$out" && pwd)"
  rm -rf "${out:?}"/correctness "${out:?}"/perf
  local tmp home
  tmp="$(mktemp -d "${TMPDIR:-/tmp}/lorakit-rehearsal.XXXXXX")"
  home="$(mktemp -d "${TMPDIR:-/tmp}/lorakit-rehearsal-home.XXXXXX")"
  local t0=$SECONDS
  mkdir -p "$tmp/repo/build"
  if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
    { git ls-files -z --cached --others --exclude-standard; } \
      | tar --null --ignore-failed-read -T - -cf - 2>/dev/null | tar -xf - -C "$tmp/repo"
  else
    tar --exclude=./build --exclude='./*/target*' -cf - . | tar -xf - -C "$tmp/repo"
  fi
  cp -r "$bundle" "$tmp/repo/build/gpu-bundle"
  echo "rehearsal: working tree + bundle in $tmp/repo ($(du -sh "$tmp/repo" | cut -f1), $((SECONDS - t0)) s)"
  local rc=0 p t
  for p in correctness perf; do
    t=$SECONDS
    env -i PATH=/usr/bin:/bin HOME="$home" bash "$tmp/repo/ci/gpu-check.sh" --pass "$p" --rehearsal "$out/$p"
    local prc=$?
    echo "rehearsal: pass $p: exit $prc, $((SECONDS - t)) s" | tee -a "$out/times.txt"
    (( prc != 0 )) && rc=1
  done
  rm -rf "$tmp" "$home"
  echo "rehearsal: $((SECONDS - t0)) s in all, exit $rc; results in $out"
  return $rc
}

if [[ "$mode" == rehearse ]]; then
  rm -f "${outdir:-build/gpu-check-rehearsal}/times.txt" 2>/dev/null
  rehearse
  exit $?
fi

# --------------------------------------------------------------------------------------- steps and results

case "$mode" in
  pass) budget="${GPU_CHECK_BUDGET:-$([[ $pass == correctness ]] && echo 240 || echo 420)}" ;;
  *) budget="${GPU_CHECK_BUDGET:-240}" ;;
esac
outdir="${outdir:-${OUT:-build/gpu-check}}"
mkdir -p "$outdir/steps" || { echo "ci/gpu-check.sh: cannot create $outdir" >&2; exit 2; }
outdir="$(cd "$outdir" && pwd)"
rm -f "$outdir"/steps/* "$outdir/steps.tsv"
: > "$outdir/steps.tsv"
work="$(mktemp -d "${TMPDIR:-/tmp}/lorakit-gpu-check.XXXXXX")"
t_start=$SECONDS
nstep=0
min_start=30          # a step may start cut to the budget when at least this much is left
reserve=5             # seconds kept for the summary at the end
declare -A status_of  # step name -> status

json_str() {   # a JSON string literal of $1
  local s="${1//\\/\\\\}"
  s="${s//\"/\\\"}"
  s="${s//$'\t'/ }"
  s="${s//$'\n'/ }"
  s="${s//$'\r'/ }"
  printf '"%s"' "$s"
}

# record NAME STATUS SECONDS DETAIL: the step's result, on disk at once
record() {
  local name="$1" st="$2" secs="$3" detail="$4" id="$5"
  status_of["$name"]="$st"
  printf '%s\t%s\t%s\t%s\n' "$name" "$st" "$secs" "$detail" >> "$outdir/steps.tsv"
  printf '{"step": %s, "status": %s, "seconds": %s, "detail": %s, "log": %s}\n' "$(json_str "$name")" \
    "$(json_str "$st")" "$secs" "$(json_str "$detail")" "$(json_str "steps/$id.log")" > "$outdir/steps/$id.json"
  echo "--- $name: $st${detail:+ ($detail)}, ${secs} s"
}

banner() { echo; echo "=== $* ($(( SECONDS - t_start )) s of ${budget} s)"; }

# skip NAME REASON: recorded as skipped without running
skip() {
  nstep=$((nstep + 1))
  local id
  id="$(printf '%02d' "$nstep")-$(echo "$1" | tr -c 'a-zA-Z0-9\n' '-' | tr -s '-' | sed 's/-$//')"
  : > "$outdir/steps/$id.log"
  record "$1" skipped 0 "$2" "$id"
}

# step NAME TIMEOUT CMD...: runs CMD under its own timeout, output to the console and steps/NN-name.log.
# CMD's exit status: 0 passed; 3 "no CUDA device" (GpuCheck; skipped in a rehearsal, else failed); 4 skipped (the
# reason is CMD's last output line); 124/137 timed out (failed, or not run (budget) when cut by the budget).
# Returns 0 when the step passed.
step() {
  local name="$1" limit="$2"
  shift 2
  nstep=$((nstep + 1))
  local id
  id="$(printf '%02d' "$nstep")-$(echo "$name" | tr -c 'a-zA-Z0-9\n' '-' | tr -s '-' | sed 's/-$//')"
  local log="$outdir/steps/$id.log"
  local left=$(( budget - reserve - (SECONDS - t_start) )) cut=0
  if (( left < limit )); then
    if (( left < min_start )); then
      : > "$log"
      record "$name" "not run (budget)" 0 "$(( left > 0 ? left : 0 )) s of the ${budget} s budget left, the step may take ${limit} s" "$id"
      return 1
    fi
    cut=1
    limit=$left
  fi
  echo "--- $name (timeout ${limit} s$([[ $cut == 1 ]] && echo ', cut to the budget'))"
  echo "    $*"
  local t0=$SECONDS rc
  # a child bash gets the helpers and the Java command line (timeout runs programs, not functions)
  timeout --kill-after=5 "$limit" bash -c "$(declare -p java cp_main cp_list test_jar console jflags py_missing \
      outdir work c_launcher 2>/dev/null); $(declare -f gpucheck gpucheck_sync lorakit_cli peer junit_list junit_run \
      make_base fatbin_out c_launch); \"\$@\"" _ "$@" < /dev/null 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  local dt=$(( SECONDS - t0 ))
  case "$rc" in
    0) record "$name" passed "$dt" "" "$id"; return 0 ;;
    3) if [[ $rehearsal == 1 || $mode == dry-run ]]; then
         record "$name" skipped "$dt" "no CUDA device (stops before the first CUDA call)" "$id"
       else
         record "$name" failed "$dt" "no CUDA device" "$id"
       fi ;;
    4) record "$name" skipped "$dt" "$(tail -1 "$log")" "$id" ;;
    124|137)
      if [[ $cut == 1 ]]; then
        record "$name" "not run (budget)" "$dt" "cut after ${limit} s: the pass budget ran out" "$id"
      else
        record "$name" failed "$dt" "timed out after ${limit} s" "$id"
      fi ;;
    *) record "$name" failed "$dt" "exit $rc: $(grep -v '^\s*$' "$log" | tail -1 | cut -c1-200)" "$id" ;;
  esac
  return 1
}

# needs NAME DEP...: true when every DEP passed, else NAME is skipped with the reason
needs() {
  local name="$1" d
  shift
  for d in "$@"; do
    if [[ "${status_of[$d]:-not run}" != passed ]]; then
      skip "$name" "needs '$d' (${status_of[$d]:-not run})"
      return 1
    fi
  done
  return 0
}

# ------------------------------------------------------------------------------------------- layout + Java

version=$(sed -n '0,/<version>/s:.*<version>\(.*\)</version>.*:\1:p' pom.xml)
junit=$(sed -n 's:.*<junit.version>\(5\.[0-9]*\.[0-9]*\)</junit.version>.*:\1:p' pom.xml | head -1)
platform="1.${junit#5.}"
peers="$root/benchmarks/peers"
if [[ -d "$bundle/lib" ]]; then
  layout="bundle $bundle"
  cp_main="$bundle/lib/*"                                   # the java launcher expands this wildcard ...
  cp_list="$(printf '%s:' "$bundle"/lib/*.jar)"             # ... the JUnit console launcher does not
  cp_list="${cp_list%:}"
  test_jar="$(ls "$bundle"/test/*-tests.jar 2>/dev/null | head -1)"
  console="$(ls "$bundle"/tools/junit-platform-console-standalone-*.jar 2>/dev/null | head -1)"
  c_launcher="$bundle/bin/launch_overhead"
else
  bd="${LORAKIT_BUILD_DIR:-target}"
  layout="maven outputs ($bd/)"
  cp_main="$root/models/$bd/lorakit.jar:$root/benchmarks/$bd/lorakit-benchmarks-$version.jar"
  cp_list="$cp_main"
  test_jar="$root/java-bindings/$bd/lorakit-java-bindings-$version-tests.jar"
  console="$HOME/.m2/repository/org/junit/platform/junit-platform-console-standalone/$platform/junit-platform-console-standalone-$platform.jar"
  c_launcher="$work/launch_overhead"
fi

# Java: the bundle's runtime whenever there is a bundle (what the GPU machine has), else (dry run on a development
# machine) the JDK of ci/jdk.sh. The runtime is unpacked once per machine into TMPDIR (both passes share it).
java=""
java_from=""
find_java() {
  if [[ -f "$bundle/jre.tar.gz" ]]; then
    local dest
    dest="${TMPDIR:-/tmp}/lorakit-jre-$(cksum < "$bundle/jre.tar.gz" | cut -d' ' -f1)"
    if [[ ! -x "$dest/jre/bin/java" ]]; then
      rm -rf "$dest.tmp" && mkdir -p "$dest.tmp" && tar -xzf "$bundle/jre.tar.gz" -C "$dest.tmp" \
        && rm -rf "$dest" && mv "$dest.tmp" "$dest" || return 1
    fi
    java="$dest/jre/bin/java"; java_from="the bundle's runtime ($dest/jre)"
    return 0
  fi
  if [[ $rehearsal == 1 ]]; then
    return 1     # never the system's Java
  fi
  if [[ -f ci/jdk.sh ]] && ( . ci/jdk.sh >/dev/null 2>&1 ); then
    java="$(. ci/jdk.sh >/dev/null 2>&1; echo "$JAVA_HOME/bin/java")"; java_from="ci/jdk.sh ($java)"
    return 0
  fi
  return 1
}

jflags=(--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector --sun-misc-unsafe-memory-access=allow
        -XX:+UseParallelGC)
py_missing=""    # python packages the peers need and this python3 lacks ("" = all there)

# ---------------------------------------------------------------------------------------------- the steps

facts() {
  local f="$outdir/facts.txt"
  {
    echo "layout: $layout"
    echo "commit: $(git rev-parse --short HEAD 2>/dev/null || sed -n 's/^commit *//p' "$bundle/BUNDLE.txt" 2>/dev/null)"
    [[ -f "$bundle/BUNDLE.txt" ]] && sed 's/^/bundle: /' "$bundle/BUNDLE.txt"
    if command -v nvidia-smi >/dev/null 2>&1; then
      echo "gpu: $(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
      echo "cuda (driver API): $(timeout 20 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
    else
      echo "gpu: none (no nvidia-smi)"
    fi
    local libcuda d
    libcuda="$(ldconfig -p 2>/dev/null | grep -m1 'libcuda\.so\.1 ' | sed 's/.*=> //' || true)"
    if [[ -z "$libcuda" ]]; then   # not in the loader cache: look where drivers are mounted, and tell the JVM
      for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat; do
        if [[ -e "$d/libcuda.so.1" ]]; then
          libcuda="$d/libcuda.so.1 (not in the loader cache: added to LD_LIBRARY_PATH)"
          export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
          break
        fi
      done
    fi
    echo "libcuda.so.1: ${libcuda:-none}"
    echo "libcublas (loader): $(ldconfig -p 2>/dev/null | grep -E 'libcublas(Lt)?\.so\.[0-9]+ ' | sed 's/.*=> //' | tr '\n' ' ')"
    echo "libnccl (loader): $(ldconfig -p 2>/dev/null | grep -E 'libnccl\.so\.[0-9]+ ' | sed 's/.*=> //' | tr '\n' ' ')"
    echo "opencl icd: $(ls /etc/OpenCL/vendors/ 2>/dev/null | tr '\n' ' ')"
    echo "glibc: $(ldd --version 2>/dev/null | head -1)"
    if command -v python3 >/dev/null 2>&1; then
      echo "python3: $(command -v python3) $(python3 --version 2>&1)"
      timeout 60 python3 - <<'EOF' 2>&1
import importlib, os
for name in ("torch", "peft", "transformers", "nvidia.cublas", "nvidia.nccl"):
    try:
        m = importlib.import_module(name)
        where = getattr(m, "__version__", None) or os.path.dirname(getattr(m, "__file__", None) or list(m.__path__)[0])
        print("python %s: %s" % (name, where))
    except Exception as e:
        print("python %s: missing (%s)" % (name, type(e).__name__))
EOF
    else
      echo "python3: none"
    fi
  } > "$f" 2>&1
  cat "$f"
  py_missing="$(sed -n 's/^python \(torch\|peft\|transformers\): missing.*/\1/p' "$f" | tr '\n' ' ' | sed 's/ $//')"
  command -v python3 >/dev/null 2>&1 || py_missing="python3"
  if ! find_java; then
    echo "java: none (no bundle with a runtime; run ci/gpu-bundle.sh)"
    return 1
  fi
  echo "java: $java_from: $("$java" -version 2>&1 | head -1)" | tee -a "$f"
  local missing="" x
  for x in ${cp_main//:/ } "$test_jar" "$console"; do
    [[ "$x" == *'*' ]] && x="${x%\*}"
    [[ -e "$x" ]] || missing+=" $x"
  done
  if [[ -n "$missing" ]]; then
    echo "jars missing:$missing (run ci/gpu-bundle.sh, or mvn package for the dry run)"
    return 1
  fi
  return 0
}

# a java command line (arrays, so that timeout can run them)
gpucheck() { "$java" "${jflags[@]}" -cp "$cp_main" ai.lorakit.bench.gpu.GpuCheck "$@"; }
# correctness runs synchronise after every launch, so an asynchronous fault names the launch that caused it
gpucheck_sync() { "$java" "${jflags[@]}" -Dlorakit.gpu.debugSync=true -cp "$cp_main" ai.lorakit.bench.gpu.GpuCheck "$@"; }
lorakit_cli() { "$java" "${jflags[@]}" -cp "$cp_main" ai.lorakit.cli.Main "$@"; }
# python3 with the peers' packages, or exit 4 ("skipped") naming the missing ones
peer() {
  if [[ -n "$py_missing" ]]; then
    echo "python package missing: $py_missing"
    return 4
  fi
  PYTHONUNBUFFERED=1 python3 "$@"
}

# JUnit: the listing (discovery loads every class; a class that does not resolve is only logged by JUnit, so its
# SEVERE line fails the step) and the run
junit_list() {
  "$java" "${jflags[@]}" -jar "$console" discover --class-path "$test_jar:$cp_list" \
    --select-package ai.lorakit.gpu.contract --include-classname '^.*(Tests?|IT)$' --disable-banner \
    --disable-ansi-colors --details-theme=ascii > "$work/discover.txt" 2>&1
  local rc=$?
  cat "$work/discover.txt"
  if grep -q "SEVERE\|resolution failed" "$work/discover.txt"; then
    return 5
  fi
  return $rc
}

junit_run() {   # junit_run PROPS... -- SELECTORS...
  local props=()
  while [[ "$1" != -- ]]; do props+=("$1"); shift; done
  shift
  "$java" "${jflags[@]}" "${props[@]}" -jar "$console" execute --class-path "$test_jar:$cp_list" \
    --disable-ansi-colors --disable-banner --details=tree --details-theme=ascii --include-classname '^.*(Tests?|IT)$' \
    --reports-dir "$outdir/junit" "$@"
}
nccl_it=ai.lorakit.gpu.dist.NcclIT
nogpu_selectors=(--select-package ai.lorakit.gpu.cuda --select-package ai.lorakit.gpu.ffm
                 --select-package ai.lorakit.gpu.jcuda --select-package ai.lorakit.gpu.blas
                 --select-package ai.lorakit.gpu.dist --select-class ai.lorakit.gpu.DeviceBinariesTest)

make_base() {   # make_base SCRIPT DIR TOKENS: the tiny transformers GPT-2 and the probe tokens
  peer "$1" make-base "$2" > "$3"
  local rc=$?
  cat "$3"
  return $rc
}

fatbin_out() {   # the fatbin of the bindings jar, for the C launcher
  unzip -p "$(ls ${cp_main%\*}lorakit-java-bindings-*.jar 2>/dev/null | grep -v tests | head -1)" \
    ai/lorakit/kernels/lorakit.fatbin > "$1" 2>/dev/null || \
    (cd "$work" && "${java%/java}/jar" xf "$(ls ${cp_main%\*}lorakit-java-bindings-*.jar | grep -v tests | head -1)" \
      ai/lorakit/kernels/lorakit.fatbin 2>/dev/null && mv ai/lorakit/kernels/lorakit.fatbin "$1")
  [[ -s "$1" ]]
}

c_launch() {   # the C baseline of the launch-overhead benchmark
  if [[ ! -x "$c_launcher" ]]; then
    echo "no C launcher ($c_launcher): ci/gpu-bundle.sh builds it"
    return 1
  fi
  if ! ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 ' && [[ -z "${LD_LIBRARY_PATH:-}" ]]; then
    echo "no CUDA device: no libcuda.so.1"
    return 3
  fi
  local fb="$work/lorakit.fatbin"
  fatbin_out "$fb" || { echo "no fatbin in the bindings jar"; return 1; }
  "$c_launcher" "$fb" 256 40 > "$outdir/launch_c.json" && cat "$outdir/launch_c.json"
}

pass_correctness() {
  banner "probe and info"
  step "probe" 20 gpucheck probe   # without a device every GPU step below fails fast with "no CUDA device"
  step "lorakit info" 15 lorakit_cli info

  banner "fast tier vs portable twins"
  step "fast tier (ffm)" 25 gpucheck_sync fast-tier --binding ffm --out "$outdir/fast_tier_ffm.json"
  step "fast tier (jcuda)" 25 gpucheck_sync fast-tier --binding jcuda --out "$outdir/fast_tier_jcuda.json"

  banner "JUnit: contract suite, cuBLAS, CUDA graphs, interop, fake-driver tests"
  if [[ $rehearsal == 1 ]]; then
    # no GPU: every test that needs none runs (the CUDA ITs abort on their assumption); the contract suite
    # (cpu/opencl here) is listed only: CI runs it through Maven
    step "junit: no-GPU tests of the bundle" 60 junit_run -Dlorakit.test.requireCuda=false -- "${nogpu_selectors[@]}"
    step "junit: contract suite listing" 40 junit_list
  else
    local props=(-Dlorakit.test.requireCuda=true)
    grep -qi nvidia <(ls /etc/OpenCL/vendors/ 2>/dev/null) && props+=(-Dlorakit.test.requireOpenCl=true)
    step "junit: contract suite + CUDA tests" 90 junit_run "${props[@]}" -- \
      --exclude-classname "^${nccl_it//./\\.}\$" --select-package ai.lorakit.gpu.contract "${nogpu_selectors[@]}"
    # its own line in the summary (issue 12): NCCL (found by LibraryLocator, no -Dlorakit.nccl needed where the
    # nvidia-nccl wheel is in the python3 on PATH) makes a one-rank communicator and all-reduces on the device
    step "nccl: one-rank device all-reduce" 20 junit_run -Dlorakit.test.requireCuda=true -- \
      --select-class "$nccl_it"
  fi

  banner "training steps of every method, CUDA against cpu"
  step "training (ffm vs cpu)" 30 gpucheck_sync train --binding ffm --out "$outdir/train_ffm.json"
  step "training (jcuda vs cpu)" 30 gpucheck_sync train --binding jcuda --out "$outdir/train_jcuda.json"
}

pass_perf() {
  banner "microbenchmarks"
  step "micro (lorakit, ffm)" 90 gpucheck micro --binding ffm --out "$outdir/micro.json"
  step "micro peer (PEFT layers)" 90 peer "$peers/peft_layers.py" --out "$outdir/peer_layers.json"
  step "launch overhead (ffm)" 25 gpucheck launch --binding ffm --out "$outdir/launch_ffm.json"
  step "launch overhead (jcuda)" 25 gpucheck launch --binding jcuda --out "$outdir/launch_jcuda.json"
  step "launch overhead (C)" 20 c_launch

  banner "GPT-2 step"
  step "gpt2 step (lorakit, ffm)" 60 gpucheck gpt2 --binding ffm --out "$outdir/gpt2_lorakit.json"
  step "gpt2 peer (PEFT eager)" 60 peer "$peers/gpt2_finetune_peft.py" --modes eager --out "$outdir/peer_gpt2_eager.json"

  banner "interop with PEFT"
  local d="$work/interop"
  mkdir -p "$d"
  step "interop: base model (transformers)" 40 make_base "$peers/interop_peft.py" "$d/base" "$d/tokens.txt"
  if needs "interop: lorakit train (cuda-ffm)" "interop: base model (transformers)"; then
    step "interop: lorakit train (cuda-ffm)" 40 lorakit_cli train --model "$d/base" --data "$d/base.txt" \
      --tokenizer bytes --backend cuda-ffm --steps 40 --batch 4 --seq-len 64 --lr 2e-2 --r 8 --alpha 16 \
      --eval-every 0 --checkpoint-every 0 --log-every 10 --out "$d/run"
  fi
  if needs "interop: export-peft" "interop: lorakit train (cuda-ffm)"; then
    step "interop: export-peft" 20 lorakit_cli export-peft "$d/run" --out "$d/adapter"
  fi
  if needs "interop: lorakit logits (ffm)" "interop: export-peft"; then
    step "interop: lorakit logits (ffm)" 30 gpucheck interop-logits --binding ffm --model "$d/base" \
      --adapter "$d/adapter" --tokens "$(tail -1 "$d/tokens.txt")" --out "$d/lorakit_logits.json"
  fi
  if needs "interop: PEFT compares the logits" "interop: lorakit logits (ffm)"; then
    step "interop: PEFT compares the logits" 40 peer "$peers/interop_peft.py" compare "$d/base" "$d/adapter" \
      "$d/lorakit_logits.json" --out "$outdir/interop.json"
  fi

  banner "torch.compile peer (last: its compilation alone can take 60-120 s)"
  step "gpt2 peer (PEFT torch.compile)" 150 peer "$peers/gpt2_finetune_peft.py" --modes compile \
    --out "$outdir/peer_gpt2_compile.json"
}

pass_dry_run() {
  if [[ ! -f "$console" && "$layout" != bundle* ]] && command -v mvn >/dev/null 2>&1; then
    echo "fetching the JUnit console launcher $platform into ~/.m2 (for the listing)"
    timeout 180 mvn -B -ntp -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
      -Dartifact="org.junit.platform:junit-platform-console-standalone:$platform" -Dtransitive=false \
      >/dev/null 2>&1 || echo "  (could not fetch it)"
  fi
  step "junit: contract suite listing" 120 junit_list
  if command -v python3 >/dev/null 2>&1; then
    step "peers compile" 60 python3 -c "import py_compile, sys; [py_compile.compile(f, doraise=True, cfile='$work/' + f.split('/')[-1] + 'c') for f in sys.argv[1:]]" "$peers"/*.py
  fi
  if [[ ! -x "$c_launcher" ]] && command -v cc >/dev/null 2>&1; then
    step "C launcher build" 60 cc -O2 -std=c11 -Wall -Wextra -Werror -o "$c_launcher" \
      cuda-kernels/cuda/bench/launch_overhead.c -ldl
  fi
  step "probe" 60 gpucheck probe
}

# ------------------------------------------------------------------------------------------------ summary

summarize() {
  if ! command -v python3 >/dev/null 2>&1; then
    echo "(no python3: the table is steps.tsv)"
    column -t -s $'\t' "$outdir/steps.tsv" 2>/dev/null || cat "$outdir/steps.tsv"
    ! grep -q $'\tfailed\t' "$outdir/steps.tsv"
    return
  fi
  python3 "$root/ci/gpu-check-summary.py" "$outdir" "$mode${pass:+ $pass}$([[ $rehearsal == 1 ]] && echo ' (rehearsal)')"
}

main() {
  echo "lorakit GPU check: $mode${pass:+ $pass}$([[ $rehearsal == 1 ]] && echo ' (rehearsal, no GPU)'), budget ${budget} s," \
       "$(date -u +%Y-%m-%dT%H:%M:%SZ); results in $outdir"
  banner "facts"
  nstep=$((nstep + 1))
  local t0=$SECONDS id="$(printf '%02d' "$nstep")-facts"
  facts > "$outdir/steps/$id.log" 2>&1   # in this shell: it sets java and py_missing
  local frc=$?
  cat "$outdir/steps/$id.log"
  if (( frc == 0 )); then
    record facts passed $((SECONDS - t0)) "" "$id"
  else
    record facts failed $((SECONDS - t0)) "$(tail -1 "$outdir/steps/$id.log")" "$id"
    return
  fi
  case "$mode" in
    pass) "pass_$pass" ;;
    dry-run) pass_dry_run ;;
  esac
}

{
  main
  banner "results"
  summarize
  rc=$?
  echo "ci/gpu-check.sh: $(( SECONDS - t_start )) s, exit $rc"
  exit $rc
} 2>&1 | tee "$outdir/gpu-check.log"
status=${PIPESTATUS[0]}
rm -rf "$work"
exit "$status"
