#!/usr/bin/env bash
# Mutation testing of the pure modules — the output formats (src/protocol/),
# JWT claims, the SeaTable answer, the cache entry format, the retry policy
# and time — against the unit tests: of the bugs cargo-mutants plants one at
# a time, how many does `cargo test --lib` catch? What is mutated, the test
# options and the equivalent mutants skipped (each with its reason) are in
# .cargo/mutants.toml, so plain `cargo mutants` does the same. Each mutant is
# built in a copy of the tree (the source stays untouched); results land in
# target/mutants.out/.
#
# Not part of ./scripts/test.sh: about 10 minutes on 2 cores. Run it when
# those modules or their tests change, and record the score in TESTING.md.
# cargo-mutants is installed under target/tools when it is not on PATH.
#
#   ./scripts/mutants.sh                   # every mutant
#   ./scripts/mutants.sh -F src/time.rs    # one module (-F: a regex on the names --list shows)
#   ./scripts/mutants.sh --list            # the mutants, without running them
set -euo pipefail
cd "$(dirname "$0")/.."
if ! cargo mutants --version >/dev/null 2>&1; then
  if [ ! -x target/tools/bin/cargo-mutants ]; then
    echo "installing cargo-mutants into target/tools ..."
    cargo install --quiet --locked --root target/tools cargo-mutants@27.1.0
  fi
  export PATH="$PWD/target/tools/bin:$PATH"
fi

status=0
cargo mutants "$@" || status=$?
# 0: every mutant caught; 2: some missed; 3: some timed out. Anything else
# (a usage error, a failing baseline) leaves no score to report.
case "$status" in
  0 | 2 | 3) ;;
  *) exit "$status" ;;
esac
for arg in "$@"; do
  case "$arg" in --list | --list-files) exit 0 ;; esac
done

out=target/mutants.out
count() { if [ -f "$out/$1.txt" ]; then wc -l <"$out/$1.txt"; else echo 0; fi; }
caught=$(count caught) missed=$(count missed) timeout=$(count timeout) unviable=$(count unviable)
viable=$((caught + missed + timeout))
if [ "$missed" -gt 0 ] || [ "$timeout" -gt 0 ]; then
  echo
  echo "not caught:"
  cat "$out/missed.txt" "$out/timeout.txt" 2>/dev/null | sed 's/^/  /'
fi
echo
# Timeouts count as not caught: a test that hangs proves nothing.
awk -v c="$caught" -v v="$viable" -v m="$missed" -v t="$timeout" -v u="$unviable" 'BEGIN {
  printf "mutation score: %d of %d viable mutants caught (%.1f%%); %d missed, %d timed out, %d unviable\n",
    c, v, v ? 100 * c / v : 0, m, t, u
}'
exit "$status"
