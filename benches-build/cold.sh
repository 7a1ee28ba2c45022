#!/usr/bin/env bash
# Cold first build of a component crate: `#[airssys::component]` against
# plain `wit_bindgen::generate!` on the same world (airssys:ext/component of
# the shipped contract), each from an empty target directory, dependencies
# included, wasm32-wasip2 debug: what a user's first `cargo build` costs.
#
# The fixtures (tests/fixtures/components/bench-airssys, bench-plain) are
# crates of their own workspace, outside the airssys one, so cargo resolves
# airssys's features as it does for a user's component crate (not unified
# with the workspace's host crates). Sources are fetched first (downloads
# are not timed); the runs alternate between the two fixtures so that load
# from other jobs on the machine falls on both; the median of RUNS is
# compared, for the wall time and for the CPU time (user + system) of the
# build, which is the steadier figure on a shared machine.
#
# Usage: benches-build/cold.sh [RUNS]   (default 3)
# Per-crate times: CARGO_COLD_TIMINGS=1 benches-build/cold.sh 1 (cargo's
# --timings report, kept under target/cold-timings/).
# Needs: the wasm32-wasip2 target (rustup target add wasm32-wasip2), GNU
# time at /usr/bin/time (Debian/Ubuntu: apt-get install time) and bc.
set -euo pipefail

usage() {
  echo "usage: benches-build/cold.sh [RUNS]   (RUNS: builds of each fixture, a positive integer, default 3)" >&2
  echo "       CARGO_COLD_TIMINGS=1 benches-build/cold.sh 1   (also cargo's per-crate --timings report)" >&2
}
fail() { echo "cold.sh: $*" >&2; exit 2; }

case "${1:-}" in
  -h | --help) usage; exit 0 ;;
esac
[ $# -le 1 ] || { usage; exit 2; }
root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || { usage; fail "RUNS must be a positive integer, got \`$runs\`"; }
[ -x /usr/bin/time ] || fail "GNU time is needed at /usr/bin/time (the shell's \`time\` cannot write CPU times to a file); install it, e.g. \`apt-get install time\`"
command -v bc >/dev/null || fail "bc is needed for the ratios; install it, e.g. \`apt-get install bc\`"
rustc --print target-list >/dev/null 2>&1 || fail "rustc not found; install Rust with rustup (https://rustup.rs)"
[ -d "$(rustc --print sysroot)/lib/rustlib/wasm32-wasip2" ] ||
  fail "the wasm32-wasip2 target is not installed; run \`rustup target add wasm32-wasip2\`"
fixtures="$root/tests/fixtures/components"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/airssys-cold.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT
timings=()
if [ -n "${CARGO_COLD_TIMINGS:-}" ]; then
  timings=(--timings)
fi

cold() { # fixture-dir -> "WALL CPU" seconds of a first build into an empty target dir
  local dir="$fixtures/$1" target="$scratch/target"
  rm -rf "$target"
  # CPU = user + system time of cargo and every rustc it ran: the work the
  # build does, which load from other jobs on the machine changes far less
  # than the wall time.
  /usr/bin/time -f '%e %U %S' -o "$scratch/time" env CARGO_TARGET_DIR="$target" \
    cargo build -q "${timings[@]}" --target wasm32-wasip2 --manifest-path "$dir/Cargo.toml" >&2 ||
    fail "building $dir failed (cargo's messages above); the fixture must build before it can be timed"
  if [ -n "${CARGO_COLD_TIMINGS:-}" ]; then
    mkdir -p "$root/target/cold-timings"
    cp "$target"/cargo-timings/cargo-timing.html "$root/target/cold-timings/$1.html"
  fi
  rm -rf "$target"
  awk '{printf "%.2f %.2f\n", $1, $2 + $3}' "$scratch/time"
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for dir in bench-airssys bench-plain; do
  [ -f "$fixtures/$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$fixtures/$dir/Cargo.lock"
  cargo fetch -q --manifest-path "$fixtures/$dir/Cargo.toml" ||
    fail "cargo fetch failed for $fixtures/$dir (no network? the sources are fetched before timing)"
done
printf 'load average at the start: %s (the ratios are steadier on a quiet machine)\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

a_wall=() a_cpu=() p_wall=() p_cpu=()
for i in $(seq "$runs"); do
  read -r w c < <(cold bench-airssys); a_wall+=("$w"); a_cpu+=("$c")
  read -r w c < <(cold bench-plain); p_wall+=("$w"); p_cpu+=("$c")
  printf 'run %s: airssys %6.2f s wall %6.2f s CPU, plain %6.2f s wall %6.2f s CPU (load %s)\n' \
    "$i" "${a_wall[-1]}" "${a_cpu[-1]}" "${p_wall[-1]}" "${p_cpu[-1]}" "$(cut -d' ' -f1-3 /proc/loadavg)"
done
m() { printf '%s\n' "$@" | median; }
aw=$(m "${a_wall[@]}") ac=$(m "${a_cpu[@]}") pw=$(m "${p_wall[@]}") pc=$(m "${p_cpu[@]}")
printf 'cold #[airssys::component]    %7.2f s wall %7.2f s CPU (median of %s)\n' "$aw" "$ac" "$runs"
printf 'cold wit_bindgen::generate!   %7.2f s wall %7.2f s CPU (median of %s)\n' "$pw" "$pc" "$runs"
printf 'ratio wall %s, CPU %s (target <= 1.3)\n' "$(echo "scale=2; $aw / $pw" | bc)" "$(echo "scale=2; $ac / $pc" | bc)"
