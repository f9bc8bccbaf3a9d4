#!/usr/bin/env bash
# make -f Makefile.dist bench: runs every benchmark under tests/bench/ against
# the optimised build and prints one table (also written as JSON).
set -euo pipefail
BIN=${1:-build/bin}
BENCH=${2:-$(dirname "$BIN")/bench}
shift 2 2>/dev/null || true
exec timeout 1800 python3 "$(dirname "$0")/bench.py" "$BIN" "$BENCH" "$@"
