#!/usr/bin/env bash
# Runs every libFuzzer harness built in BUILD/fuzz/ for SECONDS each, from its
# seed corpus tests/fuzz/corpus/<name>/ (new inputs go to BUILD/corpus/<name>/,
# not into the repository). Fails on the first harness that crashes, leaks
# or times out; the input is left in BUILD/crashes/ (add it to the seed corpus
# as crash-<what> once fixed: make check then replays it).
# Usage: tests/fuzz/run.sh BUILD SECONDS
set -euo pipefail
build=${1:?usage: run.sh BUILD SECONDS}
seconds=${2:?usage: run.sh BUILD SECONDS}
src=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$build/crashes"
status=0
summary=""
for harness in "$build"/fuzz/*; do
  [ -x "$harness" ] || continue
  name=$(basename "$harness")
  mkdir -p "$build/corpus/$name"
  log="$build/fuzz-$name.log"
  echo "fuzz: $name for ${seconds} s (log: $log)"
  if "$harness" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/crashes/$name-" "$build/corpus/$name" "$src/corpus/$name" >"$log" 2>&1; then
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1)
    summary+="  $name: ${execs:-?} runs in ${seconds} s, $cov, no crash"$'\n'
  else
    status=1
    summary+="  $name: FAILED, see $log and $build/crashes/"$'\n'
    tail -40 "$log"
    break
  fi
done
printf 'fuzz summary:\n%s' "$summary"
exit $status
