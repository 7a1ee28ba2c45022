#!/usr/bin/env bash
# Build cost of #[airssys::component] against plain wit_bindgen::generate!
# on the same world (airssys:ext/component of the shipped contract).
#
# Both fixture crates are built once to warm their dependencies, then each is
# rebuilt from clean RUNS times (`cargo clean -p <fixture>` only, so only the
# fixture crate itself is compiled) and the median wall time is compared.
#
# Usage: benches-build/compare.sh [RUNS]   (default 3)
# Per-stage times of the macro: AIRSSYS_MACRO_TIMING=1 cargo build ... (stderr).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
runs="${1:-3}"
target="$root/target/fixtures"
fixtures="$root/tests/fixtures/components"
export CARGO_TARGET_DIR="$target"

build() { # fixture-dir package-name -> seconds for a clean crate build
  local dir="$fixtures/$1" pkg="$2"
  [ -f "$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$dir/Cargo.lock"
  cargo clean -q -p "$pkg" --target wasm32-wasip2 --manifest-path "$dir/Cargo.toml"
  local start end
  start=$(date +%s.%N)
  cargo build -q --target wasm32-wasip2 --manifest-path "$dir/Cargo.toml"
  end=$(date +%s.%N)
  echo "$end - $start" | bc
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for f in bench-airssys:airssys-fixture-bench-airssys bench-plain:airssys-fixture-bench-plain; do
  dir="${f%%:*}"
  [ -f "$fixtures/$dir/Cargo.lock" ] || cp "$root/Cargo.lock" "$fixtures/$dir/Cargo.lock"
  cargo build -q --target wasm32-wasip2 --manifest-path "$fixtures/$dir/Cargo.toml" # warm deps
done

airssys=$(for _ in $(seq "$runs"); do build bench-airssys airssys-fixture-bench-airssys; done | median)
plain=$(for _ in $(seq "$runs"); do build bench-plain airssys-fixture-bench-plain; done | median)
ratio=$(echo "scale=2; $airssys / $plain" | bc)
printf 'airssys::component  %6.2f s (median of %s)\n' "$airssys" "$runs"
printf 'wit_bindgen::generate! %6.2f s (median of %s)\n' "$plain" "$runs"
printf 'ratio %s (target <= 1.2)\n' "$ratio"
