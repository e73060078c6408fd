#!/usr/bin/env bash
# What the static Linux binary costs against the default (dynamically linked)
# build of cfstream: clean build time and binary size, same machine, same run,
# each build in a fresh target directory, with dist's profile and the explicit
# target both builds need. Prints one line per build and the ratios.
# Usage: crates/perf/static-cost.sh [ROUNDS]   (results: docs/performance.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds="${1:-1}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
cargo fetch -q --locked

build() { # name rustflags
    local name="$1" flags="$2"
    local target="$scratch/target-$name-$RANDOM"
    local t0 t1 binary
    t0=$(date +%s.%N)
    CARGO_TARGET_DIR="$target" RUSTFLAGS="$flags" cargo build -q --locked -p cfstream \
        --profile dist --target x86_64-unknown-linux-gnu >/dev/null 2>&1
    t1=$(date +%s.%N)
    binary="$target/x86_64-unknown-linux-gnu/dist/cfstream"
    echo "$name $(echo "$t1 - $t0" | bc) $(stat -c %s "$binary") $(xz -9 -T1 -c "$binary" | wc -c) $(ldd "$binary" 2>&1 | grep -c '=>' || true)"
    rm -rf "$target"
}

echo "# build seconds bytes xz-bytes shared-libraries"
for _ in $(seq "$rounds"); do
    build default ""
    build static "-C target-feature=+crt-static"
done | tee "$scratch/results"

echo
awk '{ t[$1] += $2; s[$1] = $3; x[$1] = $4; n[$1]++ } END {
    d = t["default"] / n["default"]; st = t["static"] / n["static"];
    printf "default: %.1f s, %.1f MiB (%.1f MiB xz); static: %.1f s (%.2fx), %.1f MiB (%.2fx; %.1f MiB xz)\n",
        d, s["default"] / 1048576, x["default"] / 1048576, st, st / d, s["static"] / 1048576,
        s["static"] / s["default"], x["static"] / 1048576;
}' "$scratch/results"
