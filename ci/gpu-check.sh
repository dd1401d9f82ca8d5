#!/usr/bin/env bash
# ci/gpu-check.sh [OUTDIR] [--dry-run]: the one prepared script for the GPU machine (GPU.md). It runs in the
# repository root there, with build/gpu-bundle/ carried next to the working tree (ci/gpu-bundle.sh makes it):
#   1. facts      nvidia-smi, driver and CUDA versions, where libcuda.so.1 and libcublas(Lt).so.* are (ldconfig -p
#                 and the Python site-packages nvidia/*/lib folders), an NVIDIA OpenCL ICD, the Java used (a system
#                 Java >= 25, else the bundled runtime), python3 with torch/peft/transformers; then the Java probe
#                 (the first CUDA call)
#   2. contract   the fast tier against its twins on each binding (GpuCheck fast-tier), then the JUnit contract
#                 suite (+ the CUDA *IT tests) through the console launcher on every backend that opens (cuda-ffm,
#                 cuda-jcuda, opencl when an ICD exists), with -Dlorakit.test.requireCuda=true
#   3. benchmarks GpuCheck micro (every LoRA-family op vs the frozen cuBLAS GEMM, d=4096 r=16 N=16384) with
#                 peers/peft_layers.py; launch overhead per binding vs bin/launch_overhead (C); the GPT-2 124M LoRA
#                 step (GpuCheck gpt2) with peers/gpt2_finetune_peft.py (eager and torch.compile); the interop check
#                 (peers/interop_peft.py make-base -> lorakit CLI train + export-peft -> GpuCheck interop-logits ->
#                 interop_peft.py compare)
#   4. results    at most 8 files in OUTDIR (default $OUT, else build/gpu-check): gpu-check.log (everything, via
#                 tee), summary.json, contract.json, fast_tier.json, micro.json, launch.json, gpt2.json,
#                 interop.json; a short table printed last.
# Every step has its own timeout and the whole run a budget (GPU_CHECK_BUDGET seconds, default 450): a step that
# fails or times out is recorded and the script goes on; one that no longer fits is recorded as skipped. Exit
# status: 0 when every step passed, 1 otherwise.
#
# --dry-run (a machine without a GPU, e.g. CI): does everything up to the first CUDA call -- facts, finding Java and
# the jars, listing the contract suite through the console launcher, compiling the peers and the C launcher --
# then the probe reports "no CUDA device" and the script exits 0. Without build/gpu-bundle it uses the Maven
# outputs of the last build (LORAKIT_BUILD_DIR, default target): models/<dir>/lorakit.jar + the benchmarks jar.
# Environment: GPU_CHECK_BUDGET (seconds), LORAKIT_GPU_BUNDLE (another bundle folder), LORAKIT_CUBLAS (a libcublas
# for -Dlorakit.cublas; found automatically in python3's site-packages when the loader cache has none), JAVA_HOME.
set -uo pipefail
cd "$(dirname "$0")/.."
root="$(pwd)"

dry=0
outdir=""
for a in "$@"; do
  case "$a" in
    --dry-run) dry=1 ;;
    -h|--help) sed -n '2,30p' "$0"; exit 0 ;;
    -*) echo "ci/gpu-check.sh: unknown option $a" >&2; exit 2 ;;
    *) outdir="$a" ;;
  esac
done
outdir="${outdir:-${OUT:-build/gpu-check}}"
mkdir -p "$outdir"
outdir="$(cd "$outdir" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/lorakit-gpu-check.XXXXXX")"
budget="${GPU_CHECK_BUDGET:-450}"
t_start=$SECONDS

# ------------------------------------------------------------------------------------------------ helpers

steps="$work/steps.tsv"
: > "$steps"
facts="$work/facts.tsv"
: > "$facts"
fact() { printf '%s\t%s\n' "$1" "$2" >> "$facts"; echo "  $1: $2"; }
record() { printf '%s\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >> "$steps"; }   # name status seconds detail
banner() { echo; echo "=== $* ($(( SECONDS - t_start )) s)"; }

# run_step NAME TIMEOUT CMD...: runs CMD under its own timeout (capped by what is left of the budget), records ok /
# FAIL(rc) / TIMEOUT / skipped. Returns CMD's status (124 on timeout, 125 when skipped).
run_step() {
  local name="$1" limit="$2"
  shift 2
  local left=$(( budget - (SECONDS - t_start) - 10 ))
  if (( left < 15 )); then
    echo "--- $name: skipped (out of time: $left s of the ${budget} s budget left)"
    record "$name" skipped 0 "out of time"
    return 125
  fi
  (( limit > left )) && limit=$left
  echo "--- $name (timeout ${limit} s): $*"
  local t0=$SECONDS rc
  timeout --kill-after=10 "$limit" "$@"
  rc=$?
  local dt=$(( SECONDS - t0 ))
  if (( rc == 0 )); then
    record "$name" ok "$dt" ""
  elif (( rc == 124 || rc == 137 )); then
    record "$name" TIMEOUT "$dt" "killed after ${limit} s"
  else
    record "$name" "FAIL($rc)" "$dt" ""
  fi
  echo "--- $name: rc=$rc, ${dt} s"
  return $rc
}

java_major() { "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java.specification.version = //p'; }

# ------------------------------------------------------------------------------------------- layout + Java

bundle="${LORAKIT_GPU_BUNDLE:-$root/build/gpu-bundle}"
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

find_java() {
  local j
  for j in "${JAVA_HOME:-/nonexistent}/bin/java" "$(command -v java 2>/dev/null)"; do
    if [[ -n "$j" && -x "$j" ]] && (( $(java_major "$j" || echo 0) >= 25 )) 2>/dev/null; then
      java="$j"; java_from="system ($j)"; return 0
    fi
  done
  if [[ -f "$bundle/jre.tar.gz" ]]; then
    local dest="${TMPDIR:-/tmp}/lorakit-jre-$(cksum < "$bundle/jre.tar.gz" | cut -d' ' -f1)"
    if [[ ! -x "$dest/jre/bin/java" ]]; then
      mkdir -p "$dest" && tar -xzf "$bundle/jre.tar.gz" -C "$dest" || return 1
    fi
    java="$dest/jre/bin/java"; java_from="bundled jlink runtime ($dest/jre)"; return 0
  fi
  if [[ -x "$bundle/jre/bin/java" ]]; then
    java="$bundle/jre/bin/java"; java_from="bundled jlink runtime"; return 0
  fi
  if [[ -f ci/jdk.sh ]] && ( . ci/jdk.sh >/dev/null 2>&1 ); then
    java="$(. ci/jdk.sh >/dev/null 2>&1; echo "$JAVA_HOME/bin/java")"; java_from="ci/jdk.sh ($java)"; return 0
  fi
  return 1
}

jflags=(--enable-native-access=ALL-UNNAMED --add-modules jdk.incubator.vector --sun-misc-unsafe-memory-access=allow
        -XX:+UseParallelGC)
gpucheck=()      # the java command lines, set once Java is found (arrays, so that timeout can run them)
gpucheck_sync=()
lorakit_cli=()

main() {
  echo "lorakit GPU check $(date -u +%Y-%m-%dT%H:%M:%SZ)$([[ $dry == 1 ]] && echo ' (dry run)'); results in $outdir"
  echo "commit $(git rev-parse --short HEAD 2>/dev/null || cat "$bundle/BUNDLE.txt" 2>/dev/null | sed -n 's/^commit *//p')"
  [[ -f "$bundle/BUNDLE.txt" ]] && sed 's/^/  bundle: /' "$bundle/BUNDLE.txt"

  # ---------------------------------------------------------------------------------------------- 1. facts
  banner "1. facts"
  fact layout "$layout"
  if command -v nvidia-smi >/dev/null 2>&1; then
    timeout 30 nvidia-smi || true
    fact gpu "$(timeout 20 nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>&1 | head -1)"
    fact cuda_driver_api "$(timeout 20 nvidia-smi 2>/dev/null | sed -n 's/.*CUDA Version: *\([0-9.]*\).*/\1/p' | head -1)"
  else
    fact gpu "none (no nvidia-smi)"
  fi
  command -v nvcc >/dev/null 2>&1 && fact nvcc "$(nvcc --version | grep -m1 release)"
  local libcuda
  libcuda="$(ldconfig -p 2>/dev/null | grep -m1 'libcuda\.so\.1 ' | sed 's/.*=> //' || true)"
  if [[ -z "$libcuda" ]]; then   # not in the loader cache: look where drivers are mounted, and tell the JVM
    local d
    for d in /usr/local/nvidia/lib64 /usr/local/nvidia/lib /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat; do
      if [[ -e "$d/libcuda.so.1" ]]; then
        libcuda="$d/libcuda.so.1 (not in ldconfig; added to LD_LIBRARY_PATH)"
        export LD_LIBRARY_PATH="$d${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
        break
      fi
    done
  fi
  fact libcuda "${libcuda:-none}"
  fact libcublas_ldconfig "$(ldconfig -p 2>/dev/null | grep -E 'libcublas(Lt)?\.so\.[0-9]+ ' | sed 's/.*=> //' | tr '\n' ' ')"
  if command -v python3 >/dev/null 2>&1; then
    fact python3 "$(command -v python3) $(python3 --version 2>&1)"
    fact libcublas_python "$(timeout 30 python3 - <<'EOF' 2>/dev/null
import glob, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + [p for p in sys.path if p.endswith("-packages")])
hits = sorted({f for r in roots for f in glob.glob(r + "/nvidia/*/lib/libcublas*.so*")})
print(" ".join(hits) or "none")
EOF
)"
    # cuBLAS only in a Python environment's nvidia/cublas/lib (e.g. /opt/torch/.venv): point lorakit at it
    local pyblas
    pyblas="$(sed -n 's/^libcublas_python\t//p' "$facts" | tr ' ' '\n' | grep -m1 -E 'libcublas\.so\.1[23]$' || true)"
    if ! ldconfig -p 2>/dev/null | grep -q 'libcublas\.so\.1[23] ' && [[ -n "$pyblas" && -z "${LORAKIT_CUBLAS:-}" ]]; then
      export LORAKIT_CUBLAS="$pyblas"
    fi
  else
    fact python3 "none"
  fi
  if [[ -n "${LORAKIT_CUBLAS:-}" ]]; then
    jflags+=("-Dlorakit.cublas=$LORAKIT_CUBLAS")
    fact cublas_for_lorakit "$LORAKIT_CUBLAS (-Dlorakit.cublas)"
  fi
  local icd="none"
  if ls /etc/OpenCL/vendors/*.icd >/dev/null 2>&1; then
    icd="$(ls /etc/OpenCL/vendors/ | tr '\n' ' ')"
  fi
  fact opencl_icd "$icd"
  if ! find_java; then
    fact java "none: no Java >= 25 and no bundled runtime (run ci/gpu-bundle.sh on the development machine)"
    record java FAIL 0 "no Java >= 25"
    return 1
  fi
  fact java "$java_from: $("$java" -version 2>&1 | head -1)"
  gpucheck=("$java" "${jflags[@]}" -cp "$cp_main" ai.lorakit.bench.gpu.GpuCheck)
  # correctness runs synchronise after every launch, so an asynchronous fault names the launch that caused it
  gpucheck_sync=("$java" "${jflags[@]}" -Dlorakit.gpu.debugSync=true -cp "$cp_main" ai.lorakit.bench.gpu.GpuCheck)
  lorakit_cli=("$java" "${jflags[@]}" -cp "$cp_main" ai.lorakit.cli.Main)
  local missing=""
  for f in ${cp_main//:/ } "$test_jar"; do
    [[ "$f" == *'*' ]] && f="${f%\*}"
    [[ -e "$f" ]] || missing+=" $f"
  done
  if [[ -n "$missing" ]]; then
    fact jars "MISSING:$missing (run ci/gpu-bundle.sh, or mvn package for the dry run)"
    record jars FAIL 0 "missing:$missing"
    return 1
  fi
  fact jars "ok ($cp_main; tests $test_jar)"
  [[ -f "$console" ]] && fact junit_console "$console" || fact junit_console "not found ($console)"

  if [[ $dry == 1 ]]; then
    # what the real run needs, checked without touching CUDA
    if [[ ! -f "$console" && "$layout" != bundle* ]] && command -v mvn >/dev/null 2>&1; then
      echo "fetching the JUnit console launcher $platform into ~/.m2 (for the listing below)"
      timeout 180 mvn -B -ntp -q org.apache.maven.plugins:maven-dependency-plugin:3.8.1:get \
        -Dartifact="org.junit.platform:junit-platform-console-standalone:$platform" -Dtransitive=false \
        >/dev/null 2>&1 || echo "  (could not fetch it: the listing is skipped)"
    fi
    if [[ -f "$console" ]]; then
      # discovery loads every contract test class (no test runs, no CUDA call); a class that does not resolve
      # is only logged by JUnit, so its SEVERE line fails the step here
      run_step "contract suite listing" 120 sh -c '"$@" > "$0" 2>&1; rc=$?; cat "$0";
          if grep -q "SEVERE\|resolution failed" "$0"; then exit 3; fi; exit $rc' "$work/discover.txt" \
        "$java" "${jflags[@]}" -jar "$console" discover --class-path "$test_jar:$cp_list" \
        --select-package ai.lorakit.gpu.contract --include-classname '^.*(Tests?|IT)$' --disable-banner \
        --disable-ansi-colors --details-theme=ascii
    fi
    if command -v python3 >/dev/null 2>&1; then
      run_step "peers compile" 60 python3 -c "import py_compile, sys; [py_compile.compile(f, doraise=True, cfile='$work/' + f.split('/')[-1] + 'c') for f in sys.argv[1:]]" "$peers"/*.py
    fi
    if [[ ! -x "$c_launcher" ]] && command -v cc >/dev/null 2>&1; then
      run_step "C launcher build" 60 cc -O2 -std=c11 -Wall -Wextra -Werror -o "$c_launcher" \
        cuda-kernels/cuda/bench/launch_overhead.c -ldl
    fi
  elif [[ -x "$(command -v python3)" ]]; then
    fact python_packages "$(timeout 60 python3 -c 'import torch, peft, transformers; print("torch", torch.__version__, "cuda", torch.version.cuda, "gpu", torch.cuda.is_available(), "| peft", peft.__version__, "| transformers", transformers.__version__)' 2>&1 | tail -1)"
  fi

  banner "probe (the first CUDA call)"
  "${gpucheck[@]}" probe
  local prc=$?
  if (( prc == 3 )); then
    if [[ $dry == 1 ]]; then
      record probe "no CUDA device" 0 ""
      return 0
    fi
    record probe "FAIL(no CUDA device)" 0 ""
    return 1
  elif (( prc != 0 )); then
    record probe "FAIL($prc)" 0 ""
    return 1
  fi
  record probe ok 0 ""
  if [[ $dry == 1 ]]; then
    echo "dry run: a CUDA device is present, stopping before the first launch"
    return 0
  fi

  # ------------------------------------------------------------------------------------------- 2. contract
  banner "2. fast tier vs portable twins, then the contract suite"
  for b in ffm jcuda; do
    run_step "fast tier ($b)" 90 "${gpucheck_sync[@]}" fast-tier --binding "$b" --out "$work/fast_tier_$b.json"
  done
  local props=(-Dlorakit.test.requireCuda=true)
  [[ "$icd" == *nvidia* ]] && props+=(-Dlorakit.test.requireOpenCl=true)
  # NCCL from the python3 that holds torch (nvidia-nccl-cu13 wheel): NcclIT's one-rank device all-reduce
  local nccl_lib
  nccl_lib=$(timeout 30 python3 -c 'import nvidia.nccl, os; print(os.path.join(list(nvidia.nccl.__path__)[0], "lib"))' 2>/dev/null || true)
  [[ -n "$nccl_lib" && -d "$nccl_lib" ]] && props+=(-Dlorakit.nccl="$nccl_lib")
  run_step "contract suite" 180 "$java" "${jflags[@]}" "${props[@]}" -jar "$console" execute \
    --class-path "$test_jar:$cp_list" --disable-ansi-colors \
    --select-package ai.lorakit.gpu.contract --select-package ai.lorakit.gpu.cuda \
    --select-package ai.lorakit.gpu.ffm --select-package ai.lorakit.gpu.jcuda --select-package ai.lorakit.gpu.blas \
    --select-package ai.lorakit.gpu.dist --select-class ai.lorakit.gpu.DeviceBinariesTest \
    --include-classname '^.*(Tests?|IT)$' --disable-banner --details=tree --details-theme=ascii \
    --reports-dir "$work/junit"

  # ----------------------------------------------------------------------------------------- 3. benchmarks
  banner "3. benchmarks, peers, interop"
  run_step "micro (lorakit, ffm)" 150 "${gpucheck[@]}" micro --binding ffm --out "$work/micro.json"
  if command -v python3 >/dev/null 2>&1; then
    run_step "micro peer (peft_layers.py)" 150 env PYTHONUNBUFFERED=1 python3 "$peers/peft_layers.py" \
      --out "$work/peer_layers.json"
  fi
  for b in jcuda ffm; do
    run_step "launch overhead ($b)" 45 "${gpucheck[@]}" launch --binding "$b" --out "$work/launch_$b.json"
  done
  local fatbin="$work/lorakit.fatbin"
  python3 - "$cp_main" "$fatbin" <<'EOF' || unzip -p "$(ls ${cp_main%\*}lorakit-java-bindings-*.jar 2>/dev/null | grep -v tests | head -1)" ai/lorakit/kernels/lorakit.fatbin > "$fatbin" 2>/dev/null
import glob, sys, zipfile
cp, out = sys.argv[1], sys.argv[2]
jars = [j for p in cp.split(":") for j in (glob.glob(p) if "*" in p else [p])]
for j in jars:
    try:
        with zipfile.ZipFile(j) as z:
            if "ai/lorakit/kernels/lorakit.fatbin" in z.namelist():
                open(out, "wb").write(z.read("ai/lorakit/kernels/lorakit.fatbin"))
                sys.exit(0)
    except (OSError, zipfile.BadZipFile):
        pass
sys.exit(1)
EOF
  if [[ ! -x "$c_launcher" ]] && command -v cc >/dev/null 2>&1; then
    cc -O2 -o "$c_launcher" cuda-kernels/cuda/bench/launch_overhead.c -ldl || true
  fi
  if [[ -x "$c_launcher" && -s "$fatbin" ]]; then
    run_step "launch overhead (C)" 45 sh -c '"$1" "$2" 256 40 > "$3"; rc=$?; cat "$3"; exit $rc' _ \
      "$c_launcher" "$fatbin" "$work/launch_c.json"
  else
    record "launch overhead (C)" FAIL 0 "no C launcher or no fatbin"
  fi
  run_step "gpt2 step (lorakit, ffm)" 150 "${gpucheck[@]}" gpt2 --binding ffm --out "$work/gpt2_lorakit.json"
  if command -v python3 >/dev/null 2>&1; then
    run_step "gpt2 peer (PEFT eager + compile)" 200 env PYTHONUNBUFFERED=1 python3 "$peers/gpt2_finetune_peft.py" \
      --out "$work/peer_gpt2.json"
    interop
  fi
  return 0
}

interop() {
  local d="$work/interop"
  mkdir -p "$d"
  local tokens
  if ! run_step "interop: make base (transformers)" 90 sh -c 'python3 "$1" make-base "$2" > "$3"' _ \
       "$peers/interop_peft.py" "$d/base" "$d/tokens.txt"; then
    return 0
  fi
  tokens="$(tail -1 "$d/tokens.txt")"
  local backend=cuda-ffm
  if ! run_step "interop: lorakit train (cuda-ffm)" 120 "${lorakit_cli[@]}" train --model "$d/base" --data "$d/base.txt" \
       --tokenizer bytes --backend "$backend" --steps 40 --batch 4 --seq-len 64 --lr 2e-2 --r 8 --alpha 16 \
       --eval-every 0 --checkpoint-every 0 --log-every 10 --out "$d/run"; then
    backend=cpu
    run_step "interop: lorakit train (cpu fallback)" 120 "${lorakit_cli[@]}" train --model "$d/base" --data "$d/base.txt" \
      --tokenizer bytes --backend cpu --steps 40 --batch 4 --seq-len 64 --lr 2e-2 --r 8 --alpha 16 \
      --eval-every 0 --checkpoint-every 0 --log-every 10 --out "$d/run" || return 0
  fi
  run_step "interop: lorakit export-peft" 60 "${lorakit_cli[@]}" export-peft "$d/run" --out "$d/adapter" || return 0
  run_step "interop: lorakit logits (ffm)" 60 "${gpucheck[@]}" interop-logits --binding ffm --model "$d/base" \
    --adapter "$d/adapter" --tokens "$tokens" --out "$d/lorakit_logits.json" || return 0
  run_step "interop: PEFT loads the adapter, logits compared" 90 python3 "$peers/interop_peft.py" compare \
    "$d/base" "$d/adapter" "$d/lorakit_logits.json" --out "$work/interop.json"
  echo "interop: trained on $backend" >> "$work/interop.note"
}

# ------------------------------------------------------------------------------------------ 4. results

summarize() {
  local py=python3
  command -v python3 >/dev/null 2>&1 || py=""
  if [[ -z "$py" ]]; then
    echo "(no python3: results stay in $work)"
    cat "$steps"
    return
  fi
  python3 - "$work" "$outdir" "$dry" <<'EOF'
import glob, json, os, re, sys, xml.etree.ElementTree as ET
work, out, dry = sys.argv[1], sys.argv[2], sys.argv[3] == "1"

def load(name):
    p = os.path.join(work, name)
    try:
        return json.load(open(p))
    except (OSError, ValueError):
        return None

def dump(name, obj):
    if obj is not None:
        with open(os.path.join(out, name), "w") as f:
            json.dump(obj, f, indent=1)

steps = [l.rstrip("\n").split("\t") for l in open(os.path.join(work, "steps.tsv")) if l.strip()]
facts = dict(l.rstrip("\n").split("\t", 1) for l in open(os.path.join(work, "facts.tsv")) if "\t" in l)

# contract: per backend (the parameterized invocation names carry it: "[3] cuda-ffm"), from the XML reports
contract = None
reports = glob.glob(os.path.join(work, "junit", "*.xml"))
if reports:
    per, failures = {}, []
    for rep in reports:
        for tc in ET.parse(rep).getroot().iter("testcase"):
            name = tc.get("name", "")
            out_el = tc.find("system-out")
            disp = re.findall(r"display-name: (.*)", out_el.text or "") if out_el is not None else []
            last = disp[-1].split(" > ")[-1] if disp else name
            m = re.search(r"(cpu-naive|cpu|opencl|cuda-ffm|cuda-jcuda)\b", last)
            cls = tc.get("classname", "")
            if m:
                be = m.group(1)
            elif ".gpu.jcuda." in cls:
                be = "cuda-jcuda"
            elif ".gpu.ffm." in cls:
                be = "cuda-ffm"
            elif ".gpu.cuda." in cls or ".gpu.blas." in cls:
                be = "cuda (device/cuBLAS tests)"
            else:
                be = "other"
            st = per.setdefault(be, {"passed": 0, "failed": 0, "skipped": 0})
            if tc.find("failure") is not None or tc.find("error") is not None:
                st["failed"] += 1
                el = tc.find("failure") if tc.find("failure") is not None else tc.find("error")
                failures.append({"class": tc.get("classname"), "test": name,
                                 "message": (el.get("message") or "")[:400]})
            elif tc.find("skipped") is not None:
                st["skipped"] += 1
            else:
                st["passed"] += 1
    contract = {"per_backend": per, "failures": failures[:200]}

fast = {b: load("fast_tier_%s.json" % b) for b in ("ffm", "jcuda")}
fast = {k: v for k, v in fast.items() if v is not None} or None
micro = {"lorakit": load("micro.json"), "peft": load("peer_layers.json")}
launch = {b: load("launch_%s.json" % b) for b in ("c", "jcuda", "ffm")}
gpt2 = {"lorakit": load("gpt2_lorakit.json"), "peft": load("peer_gpt2.json")}
interop = load("interop.json")
if interop is not None and os.path.exists(os.path.join(work, "interop.note")):
    interop["note"] = open(os.path.join(work, "interop.note")).read().strip()

table = []   # (what, value, target / note)
for name, status, secs, detail in steps:
    table.append((name, status, (secs + " s " + detail).strip()))
if contract:
    for be, st in sorted(contract["per_backend"].items()):
        table.append(("contract " + be, "%d passed, %d failed, %d skipped" % (st["passed"], st["failed"], st["skipped"]), ""))
if fast:
    for b, r in fast.items():
        cases = r.get("cases", [])
        table.append(("fast tier " + b, "%d/%d ok" % (sum(c["ok"] for c in cases), len(cases)) if cases else "not run",
                      r.get("error", r.get("skipped", ""))[:80]))
ml = micro["lorakit"] or {}
for row in ml.get("rows", []):
    if "ratio" in row or "share_of_copy" in row:
        v = row.get("ratio", row.get("share_of_copy"))
        tgt = row.get("target")
        table.append((row["op"], "%.3f" % v, ("target %s %s" % (tgt, "met" if row.get("met") else "MISSED")) if tgt else ""))
mp = micro["peft"] or {}
for row in mp.get("rows", []):
    if "fwd_ratio_vs_gemm" in row:
        table.append(("peft " + row["method"], "fwd %.3f, fwd+bwd %.3f" % (row["fwd_ratio_vs_gemm"], row["fwd_bwd_ratio_vs_gemms"]), "x frozen GEMMs"))
c_us = (launch.get("c") or {}).get("launch_us_median")
for b in ("jcuda", "ffm"):
    l = launch.get(b) or {}
    if "launch_us_median" in l:
        ratio = l["launch_us_median"] / c_us if c_us else None
        table.append(("launch " + b, "%.2f us" % l["launch_us_median"] + (" (%.2f x C)" % ratio if ratio else ""), "target <= 1.2 x C"))
if c_us:
    table.append(("launch C", "%.2f us" % c_us, ""))
lk = (gpt2["lorakit"] or {}).get("tokens_per_s")
if lk:
    table.append(("gpt2 lorakit", "%.0f tok/s" % lk, ""))
for row in (gpt2["peft"] or {}).get("rows", []):
    if "tokens_per_s" in row:
        table.append(("gpt2 peft " + row["mode"], "%.0f tok/s" % row["tokens_per_s"],
                      ("lorakit %.2f x (target %s)" % (lk / row["tokens_per_s"], "1.5" if row["mode"] == "eager" else "1.0")) if lk else ""))
if interop:
    table.append(("interop", "ok" if interop.get("ok") else "FAIL", "max |diff| %.2e, adapter moves %.2e" % (interop.get("max_abs_diff", float("nan")), interop.get("adapter_moves_logits_by", float("nan")))))

failed = [s for s in steps if s[1] not in ("ok", "no CUDA device") and not (dry and s[1] == "skipped")]
summary = {"dry_run": dry, "facts": facts, "steps": [dict(zip(("step", "status", "seconds", "detail"), s)) for s in steps],
           "table": [dict(zip(("what", "value", "note"), t)) for t in table], "ok": not failed}
dump("summary.json", summary)
if not dry:
    dump("contract.json", contract)
    dump("fast_tier.json", fast)
    dump("micro.json", micro)
    dump("launch.json", launch)
    dump("gpt2.json", gpt2)
    dump("interop.json", interop)
w = max([len(t[0]) for t in table] + [10])
print()
print("%-*s  %-28s  %s" % (w, "what", "result", "note"))
for t in table:
    print("%-*s  %-28s  %s" % (w, t[0], t[1], t[2]))
print("GPU check: %s" % ("no CUDA device (dry run ok)" if dry and not failed else ("all steps ok" if not failed else "%d step(s) not ok" % len(failed))))
sys.exit(0 if not failed else 1)
EOF
}

{
  main
  rc=$?
  banner "4. results"
  summarize
  src=$?
  (( rc == 0 )) && rc=$src
  echo "ci/gpu-check.sh: $(( SECONDS - t_start )) s, exit $rc"
  exit $rc
} 2>&1 | tee "$outdir/gpu-check.log"
status=${PIPESTATUS[0]}
rm -rf "$work"
exit "$status"
