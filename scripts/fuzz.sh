#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for SECONDS each (default 45) on its
# corpus in fuzz/corpus/<target>/, and fails on the first crash, panic, leak,
# timeout or out-of-memory. Installs what is missing: a nightly toolchain
# (AddressSanitizer is nightly-only) and cargo-fuzz itself. Where no nightly
# can be had, it fuzzes on the default toolchain without a sanitizer, which
# still catches every panic, overflow and hang in this (unsafe-free) crate.
#
#   scripts/fuzz.sh [SECONDS] [TARGET...]
#
# fuzz/corpus/<target>/ holds the seeds and is only read: inputs found during a
# run go to fuzz/target/corpus/<target>/ (ignored; kept between local runs).
# A crash leaves its input in fuzz/artifacts/<target>/ and
# cargo-fuzz prints how to replay and minimise it (keep the minimised input in
# fuzz/regressions/<target>/, which this script replays first).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${1:-45}"
shift || true
toolchain=nightly
sanitizer=address
if ! rustup run nightly rustc --version >/dev/null 2>&1 && ! rustup toolchain install nightly --profile minimal; then
  toolchain="$(rustup show active-toolchain | cut -d' ' -f1)"
  sanitizer=none
  echo "fuzz: no nightly toolchain; fuzzing on $toolchain without AddressSanitizer" >&2
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
  cargo install cargo-fuzz --locked
fi

cd fuzz
if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list)
fi

# One build for all targets; each run below reuses it.
cargo "+$toolchain" fuzz build -s "$sanitizer"

for target in "${targets[@]}"; do
  mkdir -p "target/corpus/$target"
  if [ -d "regressions/$target" ] && [ -n "$(ls -A "regressions/$target")" ]; then
    echo "== $target: replaying regressions/$target"
    cargo "+$toolchain" fuzz run -s "$sanitizer" "$target" "regressions/$target"/* -- -runs=0
  fi
  echo "== $target: ${seconds}s"
  # -rss_limit_mb bounds memory (the component's messages are capped well below it);
  # -timeout flags a single input that takes over 10 s (bcrypt at cost 10 takes well under).
  cargo "+$toolchain" fuzz run -s "$sanitizer" "$target" "target/corpus/$target" "corpus/$target" -- \
    -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 -print_final_stats=1
done
echo "fuzz: ${#targets[@]} targets ran ${seconds}s each without a crash"
