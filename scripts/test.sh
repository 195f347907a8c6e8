#!/usr/bin/env bash
# Every test: format, lints, unit and integration tests (real OpenBao,
# installed into a venv under target/ when not found), and the demo.
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "==> cargo test"
cargo test --workspace
echo "==> demo"
./scripts/demo.sh >/dev/null
echo "all tests passed"
