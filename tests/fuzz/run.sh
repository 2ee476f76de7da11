#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan) and fuzzes each for a bounded time:
#   tests/fuzz/run.sh [SECONDS_PER_HARNESS]      (default: FUZZ_SECONDS or 60)
# Each starts from its seed corpus (tests/fuzz/corpus/H/) and the inputs that once crashed
# it (tests/fuzz/regressions/H/, replayed first: they must pass). A crash stops the run
# with its input saved under build-fuzz/crashes/; add it to regressions/ with the fix.
# Prints one line per harness: executions, exec/s, coverage (edges), corpus size.
set -euo pipefail
cd "$(dirname "$0")/../.."
SECS=${1:-${FUZZ_SECONDS:-60}}
command -v clang >/dev/null || {
  echo "==> installing clang (Debian package) for the fuzzers" >&2
  sudo=(); [ "$(id -u)" -ne 0 ] && sudo=(sudo)
  "${sudo[@]}" apt-get update -qq
  "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends clang >&2
}
CC=clang cmake -S . -B build-fuzz -DCMAKE_BUILD_TYPE=Debug -DDRISK_FUZZ=ON >/dev/null
cmake --build build-fuzz -j"$(nproc)" --target fuzz_body fuzz_import fuzz_ts fuzz_model >/dev/null
mkdir -p build-fuzz/crashes
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
for h in body import ts model; do
  work=build-fuzz/corpus-$h
  rm -rf "$work"; mkdir -p "$work"
  reg=tests/fuzz/regressions/$h
  if [ -d "$reg" ] && [ -n "$(ls -A "$reg")" ]; then
    build-fuzz/fuzz_$h "$reg"/* > "build-fuzz/$h-regressions.log" 2>&1 ||
      { echo "fuzz $h: a regression input crashes again:"; tail -30 "build-fuzz/$h-regressions.log"; exit 1; }
  fi
  seeds=(tests/fuzz/corpus/$h); [ -d "$reg" ] && seeds+=("$reg")
  maxlen=8192; [ "$h" = model ] && maxlen=65536
  if ! build-fuzz/fuzz_$h -max_total_time="$SECS" -max_len=$maxlen -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix=build-fuzz/crashes/$h- -print_final_stats=1 \
       "$work" "${seeds[@]}" > "build-fuzz/$h.log" 2>&1; then
    echo "fuzz $h: crash (input in build-fuzz/crashes/):"; tail -40 "build-fuzz/$h.log"; exit 1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "build-fuzz/$h.log" | grep -o '[0-9]*$')
  rate=$(grep -o 'stat::average_exec_per_sec: *[0-9]*' "build-fuzz/$h.log" | grep -o '[0-9]*$')
  cov=$(grep -o 'cov: [0-9]*' "build-fuzz/$h.log" | tail -1 | grep -o '[0-9]*$')
  corp=$(ls "$work" | wc -l)
  echo "fuzz $h: ${SECS}s, $runs executions, $rate exec/s, coverage $cov edges, corpus $corp new inputs"
done
