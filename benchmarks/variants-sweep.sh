#!/usr/bin/env bash
# Regenerates the variants tables of issue 14 with their learning-rate sweeps (about an hour on the 2-core dev
# machine when it is quiet):
#   benchmarks/results/variants-brown.{md,json,png}           GPT-2 default fine-tuned on Brown fiction
#   benchmarks/results/variants-brownpos-llama.{md,json,png}  default-llama on Brown part-of-speech instructions
# Usage: benchmarks/variants-sweep.sh [--task all|brown|brownpos-llama] [--resume true] [other VariantsTable options]
#   --resume true   skips the runs already in the JSON (continue an interrupted regeneration)
#   WORK=dir        scratch folder for the runs' adapters (default /tmp/lorakit-variants-sweep)
# The jar is copied before the runs, so rebuilding the tree meanwhile does not disturb them.
set -euo pipefail
cd "$(dirname "$0")/.."
. ci/jdk.sh
export PATH="$JAVA_HOME/bin:$PATH"
MAVEN_OPTS="${MAVEN_OPTS:--Xmx1g}" mvn -B -ntp -q -o -Dlorakit.buildDir=target -pl benchmarks -am package -DskipTests
WORK="${WORK:-/tmp/lorakit-variants-sweep}"
mkdir -p "$WORK"
JAR="$WORK/benchmarks-$$.jar"
cp benchmarks/target/benchmarks.jar "$JAR"
trap 'rm -f "$JAR"' EXIT
task=all
args=()
while [ $# -gt 0 ]; do
  if [ "$1" = --task ]; then task="$2"; shift 2; else args+=("$1"); shift; fi
done
case "$task" in
  all|brown|brownpos-llama) ;;
  *) echo "variants-sweep.sh: unknown --task '$task'; choose all, brown or brownpos-llama" >&2; exit 2 ;;
esac
run() { java --add-modules jdk.incubator.vector --enable-native-access=ALL-UNNAMED -cp "$JAR" \
  ai.lorakit.bench.variants.VariantsTable "$@" ${args[@]+"${args[@]}"}; }
start=$(date +%s)
if [ "$task" = all ] || [ "$task" = brown ]; then
  run --task brown --seeds 2 --steps 150 --eval-every 25 --eval-batches 8 --final-eval-batches 32 --work "$WORK/brown"
fi
if [ "$task" = all ] || [ "$task" = brownpos-llama ]; then   # steps, batch and eval sizes: InstructionRun's table settings
  run --task brownpos-llama --seeds 2 --work "$WORK/brownpos-llama"
fi
echo "variants-sweep.sh: $task done in $(( $(date +%s) - start )) s"
