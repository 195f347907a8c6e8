#!/usr/bin/env bash
# `./scripts/demo.sh --keep` as README's "Try it by hand" uses it: the
# sandbox comes up, every line it prints for "another terminal" works as
# printed (without a terminal, `init` takes the proposals), the token
# commands reach the stand-in's account API, and its stop signal stops both
# servers and removes the sandbox — SIGTERM here: a job started in the
# background of a script ignores SIGINT (Ctrl-C's), and demo.sh traps both
# the same way. Part of ./scripts/test.sh.
set -euo pipefail
cd "$(dirname "$0")/.."

out="$(mktemp /dev/shm/seatable-cred-sandbox-test.XXXXXX)"
setpriv --pdeathsig KILL -- ./scripts/demo.sh --keep >"$out" 2>&1 &
demo=$!
stop() { kill -TERM "$demo" 2>/dev/null || true; wait "$demo" 2>/dev/null || true; rm -f "$out"; }
trap stop EXIT
fail() { echo "sandbox-test: $*" >&2; sed 's/^/    /' "$out" >&2; exit 1; }

# Bounded by the demo's build (first run: minutes) and the servers' start.
for _ in $(seq 1 1200); do
  grep -q '^==> ready$' "$out" && break
  kill -0 "$demo" 2>/dev/null || fail "demo.sh --keep exited before it was ready"
  sleep 0.5
done
grep -q '^==> ready$' "$out" || fail "no sandbox within 10 minutes"

# The lines for "another terminal", as printed (the comments go with them).
mapfile -t lines < <(sed -n '/^    In another terminal:$/,/^    Ctrl-C/p' "$out" | sed -n 's/^      //p')
[ "${#lines[@]}" -ge 6 ] || fail "expected the lines to type, got: ${lines[*]}"
case "${lines[0]}" in source\ *) ;; *) fail "the first line is not 'source …': ${lines[0]}" ;; esac
script="$(printf '%s\n' "${lines[@]}")"
got="$(bash -euo pipefail -c "$script" </dev/null 2>&1)" || { echo "$got" >&2; fail "a printed line failed"; }
for want in '"cached":true' '[profiles.mine] written' 'ok    exchange' 'IN VAULT' 'API token(s) in 3 base(s) of team 1'; do
  grep -qF -- "$want" <<<"$got" || { echo "$got" >&2; fail "no '$want' in what the lines printed"; }
done
env_file="${lines[0]#source }"
bao_url="$(sed -n 's/^export VAULT_ADDR="\(.*\)"$/\1/p' "$env_file")"
work="$(dirname "$env_file")"

# Stopped: both servers stop, the sandbox is gone.
kill -TERM "$demo"
for _ in $(seq 1 100); do kill -0 "$demo" 2>/dev/null || break; sleep 0.2; done
! kill -0 "$demo" 2>/dev/null || fail "demo.sh --keep did not stop on SIGTERM"
trap - EXIT
if curl -s -o /dev/null --max-time 5 "$bao_url/v1/sys/health"; then fail "OpenBao still answers at $bao_url"; fi
[ ! -e "$work" ] || fail "$work is still there"
rm -f "$out"
echo "sandbox: demo.sh --keep came up, its ${#lines[@]} lines worked as printed, stopping it removed it"
