#!/usr/bin/env bash
# `token audit` at scale: a team of 500 bases and 5,000 API tokens in the
# SeaTable stand-in, 1,000 of the tokens kept in Vault under one prefix
# (10 folders of 100 secrets, KV v2), audited end to end — account info,
# every page of the team's tokens, the prefix listed and every secret read.
#
#   ./bench/audit.sh              # measures, and updates its section of BENCHMARKS.md
#   ./bench/audit.sh OUT_DIR      # measures into OUT_DIR only (bench/run.sh does this)
#
# Needs hyperfine (Debian: apt-get install hyperfine), curl and python3.
# Starts its own OpenBao dev server and stand-in on loopback.
set -euo pipefail
source "$(dirname "$0")/../scripts/lib.sh"
cd "$ROOT"

RUNS="${BENCH_AUDIT_RUNS:-10}"
for tool in hyperfine python3; do
  command -v "$tool" >/dev/null || { echo "bench needs $tool (Debian: apt-get install $tool)" >&2; exit 2; }
done
if [ -n "${1:-}" ]; then
  OUT="$1"; SPLICE=0
else
  OUT="$ROOT/target/bench-audit"; SPLICE=1
  rm -rf "$OUT"
  echo "==> release build"
  cargo build --release --quiet --workspace --bins
fi
mkdir -p "$OUT"
PROFILE_DIR=release
BIN="$BUILD_DIR/release/seatable-cred"

echo "==> token audit: 500 bases, 5,000 API tokens, 1,000 secrets under the Vault prefix"
make_work_dir bench-audit
start_bao audit-root-token
start_standin
export VAULT_ADDR="$BAO_URL" VAULT_TOKEN=audit-root-token
unset BAO_ADDR BAO_TOKEN SEATABLE_CRED_SECRET SEATABLE_CRED_PROFILE SEATABLE_CRED_CONFIG
# The team, its admin, the admin's account token in Vault, and 1,000 of the
# tokens in Vault: written with 16 requests in flight (a process per secret
# would take a minute).
python3 - "$STANDIN_URL" "$BAO_URL" "$OUT/audit-team.json" <<'PY'
import json, sys, urllib.request
from concurrent.futures import ThreadPoolExecutor
standin, bao, out = sys.argv[1:4]
def post(url, body, headers=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json", **(headers or {})})
    with urllib.request.urlopen(req, timeout=60) as r:
        text = r.read()
        return json.loads(text) if text.strip() else None
team = post(standin + "/_standin/team", {"org_id": 1, "bases": 500, "tokens": 5000, "workspaces": 20})
admin = post(standin + "/_standin/accounts",
             {"email": "admin@team.local", "password": "bench-pw", "org_id": 1, "is_org_staff": True})
vault = {"X-Vault-Token": "audit-root-token"}
post(bao + "/v1/secret/data/bench-admin/account", {"data": {"account_token": admin["token"]}}, vault)
kept = team["tokens"][:1000]
def put(i):
    t = kept[i]
    post(f"{bao}/v1/secret/data/bench-team/f{i % 10}/{t['app_name']}", {"data": {"api_token": t["api_token"]}}, vault)
with ThreadPoolExecutor(16) as pool:
    list(pool.map(put, range(len(kept))))
json.dump({"bases": len(team["bases"]), "tokens": len(team["tokens"]), "secrets": len(kept)}, open(out, "w"))
PY
export SEATABLE_SERVER_URL="$STANDIN_URL" SEATABLE_CRED_ACCOUNT_SECRET=secret/bench-admin/account
export SEATABLE_CRED_CACHE=none XDG_CONFIG_HOME="$WORK/config"
AUDIT=("$BIN" token audit -o json --vault-prefix secret/bench-team)

# One run checked: every token listed, exactly the 1,000 found in Vault.
"${AUDIT[@]}" -v >"$WORK/audit.json" 2>"$WORK/audit.log"
python3 - "$WORK/audit.json" "$WORK/audit.log" "$OUT/audit-facts.json" <<'PY'
import json, re, sys
rows = json.load(open(sys.argv[1]))
kept = sum(1 for r in rows if r["vault_secret"])
assert len(rows) == 5000, f"{len(rows)} rows, not 5000"
assert kept == 1000, f"{kept} kept in Vault, not 1000"
line = next(l for l in open(sys.argv[2]) if "audited the team's API tokens" in l)
facts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", line)}
facts["kept"] = kept
import datetime
facts["date"] = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
json.dump(facts, open(sys.argv[3], "w"))
print(f"    {len(rows)} tokens, {kept} kept in Vault, {facts['pages']} pages, {facts['secrets']} secrets read")
PY
hyperfine -N --style basic --warmup 1 --runs "$RUNS" --export-json "$OUT/audit.json" \
  -n "token audit: 5,000 tokens, 1,000 Vault secrets" "${AUDIT[*]}" 2>&1 | grep -E '^(Benchmark|  Time)' || true

if [ "$SPLICE" = 1 ]; then
  python3 "$ROOT/bench/report.py" --audit "$OUT" "$ROOT/BENCHMARKS.md"
  echo "==> updated the token audit section of BENCHMARKS.md"
  sed -n '/^## `token audit`/,/^## [^`]/p' "$ROOT/BENCHMARKS.md" | sed -n '1,12p'
fi
