#!/usr/bin/env bash
# What `serve`'s peer check costs per new connection: examples/peer_check
# opens N loopback connections and accepts each, looking its peer's owner up
# as the agent does (sock_diag), through the /proc/net/tcp fallback, or not
# at all; hyperfine times the runs, and the difference over N is the check's
# cost. With --background, 1000 more connections stay open meanwhile.
#
#   ./bench/peer.sh              # measures, and updates its section of BENCHMARKS.md
#   ./bench/peer.sh OUT_DIR      # measures into OUT_DIR only (bench/run.sh does this)
#
# Needs hyperfine (Debian: apt-get install hyperfine) and python3.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

command -v hyperfine >/dev/null || { echo "bench needs hyperfine (Debian: apt-get install hyperfine)" >&2; exit 2; }
if [ -n "${1:-}" ]; then
  OUT="$1"; SPLICE=0
else
  OUT="$ROOT/target/bench-peer"; SPLICE=1
  rm -rf "$OUT"
fi
mkdir -p "$OUT"
echo "==> release build of examples/peer_check"
cargo build --release --quiet --locked -p seatable-cred --example peer_check
PEER="$BUILD_DIR/release/examples/peer_check"

bench() { # NAME, hyperfine args...
  local name="$1"; shift
  echo "==> $name"
  hyperfine -N --style basic --export-json "$OUT/$name.json" "$@" 2>&1 | grep -E '^(Benchmark|  Time)' || true
}
bench peer --warmup 3 --runs 30 \
  -n "20000 connections, no lookup" "$PEER --connections 20000 --lookup none" \
  -n "20000 connections, sock_diag" "$PEER --connections 20000 --lookup diag" \
  -n "20000 connections, sock_diag, 1000 more open" "$PEER --connections 20000 --lookup diag --background 1000" \
  -n "20000 connections, no lookup, 1000 more open" "$PEER --connections 20000 --lookup none --background 1000"
bench peer-proc --warmup 1 --runs 5 \
  -n "200 connections, no lookup" "$PEER --connections 200 --lookup none" \
  -n "200 connections, /proc/net/tcp" "$PEER --connections 200 --lookup proc"
echo "{\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\", \"tcp_sockets\": $(($(wc -l </proc/net/tcp) + $(wc -l </proc/net/tcp6) - 2))}" >"$OUT/peer-facts.json"

if [ "$SPLICE" = 1 ]; then
  python3 "$ROOT/bench/report.py" --peer "$OUT" "$ROOT/BENCHMARKS.md"
  echo "==> updated the peer check's section of BENCHMARKS.md"
  sed -n '/^## `serve`: the peer check/,/^## /p' "$ROOT/BENCHMARKS.md" | sed '$d'
fi
