#!/usr/bin/env bash
# benchmarks/scale-out/run.sh [repeats] [steps]: data-parallel scaling of `lorakit train` on the CPU backend, one
# thread per process (-XX:ActiveProcessorCount=1 sets the CPU backend's pool, CpuParallel, to 1 thread):
#   np1       1 process,  global batch 8
#   np2       2 ranks,    global batch 8 (4 each; strong scaling: same work per step, split)
#   np2-weak  2 ranks,    global batch 16 (8 each; weak scaling: each rank does np1's work)
# The embedded default model (GPT-2, 4 x 192, byte-level), LoRA r 8 on c_attn,c_proj,c_fc, brown:fiction, T 128.
# Prints one line per run: config, repeat, tokens/s, all-reduce ms/step, step ms. Runs interleaved so that load from
# other processes on the machine spreads over all configurations.
set -euo pipefail
cd "$(dirname "$0")/../.."
reps=${1:-3}
steps=${2:-30}
out=$(mktemp -d)
export LORAKIT_JAVA_OPTS="-XX:ActiveProcessorCount=1"
args=(train --backend cpu --data brown:fiction --steps "$steps" --seq-len 128 --eval-every 0 --eval-batches 1
      --checkpoint-every 0 --log-every "$steps" --warmup 2)
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)
./lorakit info >/dev/null   # builds the jar once, before any timing
for r in $(seq 1 "$reps"); do
  for cfg in np1 np2 np2-weak; do
    case $cfg in
      np1)      cmd=(./lorakit "${args[@]}" --batch 8) ;;
      np2)      cmd=("${mpi[@]}" ./lorakit "${args[@]}" --batch 8) ;;
      np2-weak) cmd=("${mpi[@]}" ./lorakit "${args[@]}" --batch 16) ;;
    esac
    log="$out/$cfg-$r.log"
    "${cmd[@]}" --out "$out/$cfg-$r" >"$log" 2>&1 || { echo "$cfg run $r failed:"; tail -5 "$log"; exit 1; }
    tps=$(grep -o '([0-9.]*k\? tokens/s)' "$log" | tr -d '(' | awk '{v=$1; if (v ~ /k$/) {sub(/k$/, "", v); v*=1000}; print v}')
    ar=$(grep -o 'all-reduce: [0-9.]* ms per step of [0-9.]* ms' "$log" | awk '{print $2, $7}' || true)
    echo "$cfg $r $tps ${ar:-0 -}"
  done
done
rm -rf "$out"
