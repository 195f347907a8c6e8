#!/usr/bin/env bash
# Fuzzes every parser of outside input with cargo fuzz (libFuzzer), each
# target for FUZZ_SECONDS (default 10), starting from the committed corpora
# in fuzz/corpus/. New inputs go to a scratch directory, not the corpus;
# a crash fails the run and leaves the input in fuzz/artifacts/.
#
# Runs on stable Rust: no sanitizer (the code under test is safe Rust, so
# the findings that matter are panics, hangs and runaway memory).
# cargo-fuzz is installed under target/tools when it is not on PATH.
#
#   ./scripts/fuzz.sh                                   # 10 s per target, debug build
#   FUZZ_SECONDS=600 FUZZ_RELEASE=1 ./scripts/fuzz.sh   # a longer hunt, optimised
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${FUZZ_SECONDS:-10}"
# A debug build compiles in half the time; plenty for a short run.
profile=(--dev)
[ -n "${FUZZ_RELEASE:-}" ] && profile=()
if ! cargo fuzz --version >/dev/null 2>&1; then
  if [ ! -x target/tools/bin/cargo-fuzz ]; then
    echo "installing cargo-fuzz into target/tools ..."
    cargo install --quiet --locked --root target/tools cargo-fuzz@0.13.2
  fi
  export PATH="$PWD/target/tools/bin:$PATH"
fi
cd fuzz
cargo fuzz build "${profile[@]}" --sanitizer none
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
for target in $(cargo fuzz list); do
  mkdir -p "$scratch/$target"
  printf '%-18s ' "$target"
  if ! cargo fuzz run "${profile[@]}" --sanitizer none "$target" "$scratch/$target" "corpus/$target" -- \
      -max_total_time="$seconds" -max_len=8192 -rss_limit_mb=1024 -timeout=5 \
      >"$scratch/$target.log" 2>&1; then
    echo "FAILED"
    tail -40 "$scratch/$target.log"
    exit 1
  fi
  grep -E '^#[0-9]+[[:space:]]+DONE' "$scratch/$target.log" | tail -1 || echo ok
done
