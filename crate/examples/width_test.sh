#!/usr/bin/env bash
# The same short runs with AVX-512 kernels and with AVX2 kernels must give the same bits (`make
# width-test`). run_fingerprint.rs prints one digest per run; it runs as built, then from a copy
# of the crate whose `gemm` leaves out its AVX-512 kernels (its `x86-v4` feature) and with
# DIGITS_SIMD=avx2 (our own loops and Winograd kernels at AVX2), so that this machine runs the
# kernels an AVX2 machine runs. The two builds share the build folder: only `gemm` and this
# crate compile again.
set -euo pipefail
cd "$(dirname "$0")/../.."
CARGO="${CARGO:-cargo}"

if ! grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
    echo "width-test: this CPU has no AVX-512, so both builds would run gemm's AVX2 kernels; nothing to compare here"
    exit 0
fi
if ! grep -q '^gemm = .*"x86-v4"' crate/Cargo.toml; then
    echo "width-test: crate/Cargo.toml's gemm has no x86-v4 feature to turn off; update $0" >&2
    exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cp -r Cargo.toml Cargo.lock crate "$tmp/"
sed -i '/^gemm = /s/, "x86-v4"//' "$tmp/crate/Cargo.toml"
if grep -q '^gemm = .*x86-v4' "$tmp/crate/Cargo.toml"; then
    echo "width-test: could not turn off gemm's x86-v4 feature in a copy of crate/Cargo.toml; update $0" >&2
    exit 1
fi

"$CARGO" run --quiet --example run_fingerprint > "$tmp/avx512.txt"
CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}" DIGITS_SIMD=avx2 \
    "$CARGO" run --quiet --manifest-path "$tmp/Cargo.toml" --example run_fingerprint > "$tmp/avx2.txt"
cat "$tmp/avx512.txt"
if cmp -s "$tmp/avx512.txt" "$tmp/avx2.txt"; then
    echo "width-test: the AVX2 kernels (gemm's and ours) gave the same bits as the AVX-512 ones in every run above"
else
    echo "width-test: the AVX2 kernels (gemm's and ours) gave other bits than the AVX-512 ones:" >&2
    diff "$tmp/avx512.txt" "$tmp/avx2.txt" >&2 || true
    exit 1
fi
