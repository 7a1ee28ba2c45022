#!/usr/bin/env bash
# Builds and runs the fuzz targets of fuzz/ one after the other, each for a
# bounded time, and prints runs and findings per target. Exits non-zero when
# a target finds a crash (the input is saved in fuzz/artifacts/<target>/).
#
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#
# SECONDS_PER_TARGET defaults to 60; TARGETs default to every target
# (capability manifest wit_diff policy). Every target builds only
# airssys-contract and its dependencies (see docs/fuzzing.md).
#
# Needs the nightly toolchain and cargo-fuzz (`cargo install cargo-fuzz
# --version 0.13.2 --locked`). One libFuzzer process at a time (no -jobs:
# one job, one worker), under nice. Seeds are taken fresh from the repository
# on every run into fuzz/target/seeds/; what the fuzzer learns accumulates in
# fuzz/corpus/<target>/ (not committed). Environment:
#   FUZZ_SANITIZER   cargo-fuzz --sanitizer (default: none; see docs/fuzzing.md)
#   FUZZ_ARGS        extra libFuzzer flags, e.g. "-runs=1000000"
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(capability manifest wit_diff policy)
sanitizer=${FUZZ_SANITIZER:-none}

seeds=fuzz/target/seeds
rm -rf "$seeds"
mkdir -p "$seeds"

# ---- seeds and dictionaries, from the repository

# Capability strings: the adversarial table, the property tests' patterns
# and the examples' manifests, as a libFuzzer dictionary (entries with
# backslash escapes are left out: the dictionary syntax differs from Rust's).
capability_dict="$seeds/capability.dict"
grep -ohE '"(fs|net|kv|msg|log|proc|env):[^"\\]*"' \
    contract/tests/adversarial.rs contract/tests/capability_props.rs \
    examples/*/src/lib.rs examples/*/*/src/lib.rs 2>/dev/null |
    sort -u >"$capability_dict" || true
{
    for token in '"fs:read:"' '"net:connect:"' '"kv:write:"' '"msg:publish:"' \
        '"msg:request:"' '"log:write:"' '"proc:spawn:"' '"env:read:"' \
        '"/**"' '"/*"' '".>"' '".*"' '"*."' '"[::1]"' '"/8"' '"-65535"'; do
        echo "$token"
    done
} >>"$capability_dict"

# TOML: the fixtures' Component.toml files, the examples' policies and every
# ```toml block of docs/.
toml_seeds="$seeds/toml"
mkdir -p "$toml_seeds"
for f in runtime/tests/fixtures/*/Component.toml examples/*/policy.toml; do
    cp "$f" "$toml_seeds/$(echo "$f" | tr '/' '_')"
done
for doc in docs/*.md; do
    awk -v out="$toml_seeds/$(basename "$doc" .md)" '
        /^```toml/ { n++; file = out "_" n ".toml"; inside = 1; next }
        /^```/     { inside = 0; next }
        inside     { print > file }
    ' "$doc"
done

# WIT: the first line names the base (see fuzz/fuzz_targets/wit_diff.rs),
# the rest is a file's text.
wit_seeds="$seeds/wit_diff"
mkdir -p "$wit_seeds"
while IFS= read -r f; do
    { echo "$f"; cat "$f"; } >"$wit_seeds/$(echo "$f" | tr '/' '_')"
done < <(find wit -name '*.wit' | sort)
for case in contract/tests/diff_corpus/*/; do
    name=$(basename "$case")
    for side in old new; do
        for f in "$case$side"/*.wit; do
            if [ -f "$f" ]; then
                { echo "diff/$name"; cat "$f"; } >"$wit_seeds/${name}_$side.wit"
            fi
        done
    done
done

mkdir -p "$seeds/capability"
wit_dict=fuzz/dict/wit.dict

# The manifest decoder reads binary: its dictionary adds the section's magic
# and wasm headers; binary seeds are written by the target itself (below).
manifest_dict="$seeds/manifest.dict"
{
    cat "$capability_dict"
    printf '"ASYM\\x01"\n"\\x00asm\\x01\\x00\\x00\\x00"\n"\\x00asm\\x0d\\x00\\x01\\x00"\n"airssys:manifest"\n'
} >"$manifest_dict"
manifest_bin="$seeds/manifest_bin"
mkdir -p "$manifest_bin"

# ---- run

declare -A summary
notes=()
status=0
for target in "${targets[@]}"; do
    flags=(-O -s "$sanitizer")
    libfuzzer=(-max_total_time="$seconds" -print_final_stats=1 -timeout=20)
    case "$target" in
    capability) corpus_seeds=("$seeds/capability") libfuzzer+=(-dict="$capability_dict") ;;
    manifest) corpus_seeds=("$toml_seeds" "$manifest_bin") libfuzzer+=(-dict="$manifest_dict") ;;
    policy)
        corpus_seeds=("$toml_seeds")
        libfuzzer+=(-dict="$capability_dict")
        ;;
    wit_diff) corpus_seeds=("$wit_seeds") libfuzzer+=(-dict="$wit_dict" -max_len=16384) ;;
    *)
        echo "unknown target $target (capability, manifest, wit_diff, policy)" >&2
        exit 2
        ;;
    esac
    # shellcheck disable=SC2206
    libfuzzer+=(${FUZZ_ARGS:-})
    corpus=fuzz/corpus/$target
    artifacts=fuzz/artifacts/$target
    mkdir -p "$corpus" "$artifacts"

    printf '\n==> fuzz %s: build\n' "$target"
    start=$(date +%s)
    nice cargo +nightly fuzz build "${flags[@]}" "$target"
    built=$(($(date +%s) - start))

    if [ "$target" = manifest ]; then
        # One pass over the TOML seeds writes each manifest's binary forms
        # (section, module, component) with the project's own encoder.
        if ! AIRSSYS_FUZZ_EMIT="$manifest_bin" nice cargo +nightly fuzz run "${flags[@]}" \
            manifest "$toml_seeds"/* >"fuzz/target/manifest-seeds.log" 2>&1; then
            status=1
            tail -60 fuzz/target/manifest-seeds.log
            echo "fuzz manifest: FAILED on a seed (fuzz/target/manifest-seeds.log)"
        fi
    fi

    printf '==> fuzz %s: run %ss (built in %ss)\n' "$target" "$seconds" "$built"
    before=$(find "$artifacts" -type f | wc -l)
    log=fuzz/target/$target.log
    set +e
    nice cargo +nightly fuzz run "${flags[@]}" "$target" "$corpus" "${corpus_seeds[@]}" \
        -- "${libfuzzer[@]}" >"$log" 2>&1
    code=$?
    set -e
    after=$(find "$artifacts" -type f | wc -l)
    findings=$((after - before))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    if [ "$code" -ne 0 ] || [ "$findings" -ne 0 ]; then
        status=1
        tail -60 "$log"
        echo "fuzz $target: FAILED (exit $code, $findings new file(s) in $artifacts)"
    fi
    summary[$target]=$(printf '%-11s %8s %12s %10s %8s %9s' \
        "$target" "${built}s" "${runs:-?}" "${speed:-?}" "$units" "$findings")
    # Panics inside a dependency that the target skips on purpose (see the
    # target's doc comment): not findings, but worth seeing.
    skipped=$(grep -h 'panicked (input skipped)' "$log" || true)
    [ -z "$skipped" ] || notes+=("$target: $skipped")
done

printf '\n%-11s %8s %12s %10s %8s %9s\n' target build runs exec/s corpus findings
for target in "${targets[@]}"; do
    echo "${summary[$target]}"
done
for note in "${notes[@]}"; do
    echo "note: $note"
done
exit "$status"
