#!/usr/bin/env bash
# Every test: format, lints, unit and integration tests (real OpenBao,
# installed into a venv under target/ when not found; the agent's tests
# install the Python and npm SeaTable SDKs under target/tmp themselves), the plugin tests
# (pytest in a venv under target/ with the real seatable-api and httpie),
# the packages (scripts/package-test.sh), a short fuzz run of every parser,
# and the demo (and its sandbox, demo.sh --keep).
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> prerequisites"
# Besides Rust and Python 3, the tests drive these real tools. zsh is
# installed here when missing (as root, with apt-get); the others are named.
if ! command -v zsh >/dev/null 2>&1 && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing zsh (the shell functions are tested in bash and zsh) ..."
  apt-get -qq update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get -qq install -y zsh >/dev/null
fi
missing=()
for tool in cargo python3 git curl bash zsh kubectl unshare setpriv node npm; do
  command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "the tests need: ${missing[*]} — install them (Debian: apt-get install git curl zsh util-linux nodejs npm; kubectl from the Kubernetes packages)" >&2
  exit 2
fi
if [ "$(id -u)" != 0 ]; then
  echo "note: not root — the local-user attack tests create throwaway users and will fail (CI runs as root)" >&2
fi

echo "==> cargo fmt --check"
cargo fmt --all -- --check
# The packages need the release build: LTO and one codegen unit, minutes of
# CPU. It starts now at the lowest priority, so that it takes the cores the
# tests leave idle (their waits on servers, the one-core fuzz runs); the
# package step waits for it. Its locks (the release directories) are not
# the tests', and it dies with this script.
mkdir -p target/tmp
setpriv --pdeathsig KILL -- nice -n 19 cargo build --quiet --locked --release -p seatable-cred --bin seatable-cred \
  >target/tmp/release-build.log 2>&1 &
release_build=$!
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> one-way imports (ARCHITECTURE.md: no circle among src/ modules, nothing imports commands)"
python3 scripts/check-imports.py
echo "==> TLS dependencies (rustls with ring; no OpenSSL, no aws-lc)"
./scripts/no-openssl.sh
echo "==> cargo test"
cargo test --workspace
cargo build --quiet --workspace --bins

echo "==> plugin tests (pytest, real seatable-api and httpie)"
venv=target/tmp/plugins-venv
if [ ! -x "$venv/bin/pytest" ]; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet pytest==8.3.5 seatable-api==4.0.0 httpie==3.2.4
fi
# Our two packages are reinstalled every run, so the tests see this checkout.
"$venv/bin/pip" install --quiet --no-deps --force-reinstall ./plugins/python ./plugins/httpie
rm -rf plugins/*/build plugins/*/*.egg-info   # setuptools builds in the source tree
PATH="$PWD/$venv/bin:$PATH" "$venv/bin/pytest" -q -p no:cacheprovider plugins
echo "==> contrib: the systemd user units (the agent and its socket)"
if command -v systemd-analyze >/dev/null 2>&1; then
  # ExecStart names ~/.cargo/bin/seatable-cred: verify against a throwaway
  # home where that is this build.
  vhome="$(mktemp -d)"; trap 'rm -rf "$vhome"' EXIT
  mkdir -p "$vhome/.cargo/bin" "$vhome/run" && chmod 700 "$vhome/run"
  ln -s "$PWD/$(ls -d target/*/debug/seatable-cred | head -1)" "$vhome/.cargo/bin/seatable-cred"
  HOME="$vhome" XDG_RUNTIME_DIR="$vhome/run" systemd-analyze verify --user \
    contrib/systemd/seatable-cred.socket contrib/systemd/seatable-cred.service
else
  echo "systemd-analyze not found: the units are not verified here"
fi
echo "==> fuzz (a short run of every target)"
./scripts/fuzz.sh
echo "==> packages: .deb, tarball, OCI image and wheels, built twice, installed and run"
if ! wait "$release_build"; then
  cat target/tmp/release-build.log; echo "the release build failed" >&2; exit 1
fi
./scripts/package-test.sh
echo "==> demo"
./scripts/demo.sh >/dev/null
echo "==> demo --keep: the sandbox, its printed lines run as printed"
./scripts/sandbox-test.sh
echo "all tests passed"
