#!/usr/bin/env bash
# Clean-build cost of the client crate and of cfstream against the
# `cloudflare` crate 0.14 (rustls-tls), same machine, same run, each build
# in a fresh target directory. Prints one line per build and the ratios.
# Usage: crates/perf/build-cost.sh [ROUNDS]   (results: docs/performance.md)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
rounds="${1:-1}"
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# The baseline: an empty library that depends on cloudflare 0.14.
mkdir -p "$scratch/cf014/src"
cat > "$scratch/cf014/Cargo.toml" <<'TOML'
[package]
name = "cf014-build"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
cloudflare = { version = "=0.14.0", default-features = false, features = ["rustls-tls"] }

[workspace]
TOML
: > "$scratch/cf014/src/lib.rs"
(cd "$scratch/cf014" && cargo generate-lockfile -q && cargo fetch -q)
cargo fetch -q --locked

build() { # name profile-flag dir args...
    local name="$1" profile="$2" dir="$3"; shift 3
    local target="$scratch/target-$name-$profile-$RANDOM"
    local t0 t1
    t0=$(date +%s.%N)
    (cd "$dir" && CARGO_TARGET_DIR="$target" cargo build -q $profile "$@" >/dev/null 2>&1)
    t1=$(date +%s.%N)
    rm -rf "$target"
    echo "$name ${profile:---debug} $(echo "$t1 - $t0" | bc)"
}

for _ in $(seq "$rounds"); do
    for profile in "" "--release"; do
        build cloudflare-0.14 "$profile" "$scratch/cf014"
        build cloudflare-stream-downloads "$profile" . --locked -p cloudflare-stream-downloads
        build cfstream "$profile" . --locked -p cfstream
    done
done | tee "$scratch/results"

echo
awk '{ t[$1" "$2] += $3; n[$1" "$2]++ } END {
    for (p in n) mean[p] = t[p] / n[p];
    for (profile in a) {}
    split("--debug --release", ps, " ");
    for (i = 1; i <= 2; i++) {
        pr = ps[i]; base = mean["cloudflare-0.14 " pr];
        printf "%s: cloudflare-0.14 %.1f s; cloudflare-stream-downloads %.1f s (%.2fx); cfstream %.1f s (%.2fx)\n",
            pr, base, mean["cloudflare-stream-downloads " pr], mean["cloudflare-stream-downloads " pr] / base,
            mean["cfstream " pr], mean["cfstream " pr] / base;
    }
}' "$scratch/results"
