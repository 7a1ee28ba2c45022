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
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
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
    cargo build -q "${timings[@]}" --target wasm32-wasip2 --manifest-path "$dir/Cargo.toml"
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
  cargo fetch -q --manifest-path "$fixtures/$dir/Cargo.toml"
done

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
