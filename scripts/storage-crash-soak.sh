#!/usr/bin/env sh
# Soak test of the redb storage's crash safety (not run in CI): kills a
# writer process with SIGKILL in the middle of durable writes ROUNDS times
# (default 1000) and checks after each kill that every acknowledged write
# is in the file, whole, and that usage is exact. The same test runs 20
# rounds in `cargo test -p airssys-runtime --test storage`.
#
# Usage: scripts/storage-crash-soak.sh [ROUNDS]
set -eu
rounds="${1:-1000}"
cd "$(dirname "$0")/.."
AIRSSYS_STORAGE_CRASH_ROUNDS="$rounds" exec cargo test -p airssys-runtime --test storage -- \
    --exact killed_writers_lose_no_acknowledged_write_and_leave_usage_exact --nocapture
