#!/usr/bin/env bash
# The soak test of issue #12: ten components (four well-behaved, six
# hostile) in one runtime for SECONDS (default 300), with the host's
# resident memory and thread count sampled; prints the peaks. Outside CI:
# it takes minutes. Usage: scripts/soak.sh [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
export AIRSSYS_SOAK_SECS="${1:-300}"
cargo test -p airssys-runtime --test soak -- --ignored --nocapture 2>&1 | grep -E "^soak:|test result|panicked|FAILED|assert"
