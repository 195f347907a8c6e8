#!/usr/bin/env bash
# Sizes of the release artifacts (the OCI image above all) and the time of
# ./scripts/package.sh, written into BENCHMARKS.md's "Packages" section
# (replaced in place; the rest of the file is bench/run.sh's, which calls
# this at its end).
#
#   ./bench/package.sh
set -euo pipefail
cd "$(dirname "$0")/.."

echo "==> release build (not timed)"
cargo build --quiet --locked --release -p seatable-cred --bin seatable-cred
echo "==> ./scripts/package.sh (timed; the release build is up to date)"
start=$(date +%s%N)
./scripts/package.sh >target/package-bench.log 2>&1 || { cat target/package-bench.log; exit 1; }
end=$(date +%s%N)

load="$(cut -d' ' -f1 /proc/loadavg)"
python3 - "$(( (end - start) / 1000000 ))" "$(git rev-parse --short HEAD)" "$load" <<'PY'
import json, re, sys
from pathlib import Path

ms, commit, load = int(sys.argv[1]), sys.argv[2], sys.argv[3]
sizes = json.loads(Path("target/package/sizes.json").read_text())
art = sizes["artifacts"]
def mb(n): return f"{n / 1e6:.2f}"
def one(pattern):
    names = [n for n in art if re.fullmatch(pattern, n)]
    assert len(names) == 1, (pattern, names)
    return names[0]

deb, tgz, oci = one(r"seatable-cred_.*\.deb"), one(r"seatable-cred-.*\.tar\.gz"), one(r"seatable-cred-.*-oci\.tar")
wheels = sorted(n for n in art if n.endswith(".whl"))
rows = [
    ("OCI image: its one layer, compressed (what a registry stores and a node pulls)", mb(sizes["image_layers_bytes"]), "MB"),
    ("OCI image: root filesystem, unpacked", mb(sizes["image_rootfs_bytes"]), "MB"),
    (f"`{oci}` (the archive package.sh writes)", mb(art[oci]), "MB"),
    (f"`{deb}`", mb(art[deb]), "MB"),
    (f"`{tgz}`", mb(art[tgz]), "MB"),
] + [(f"`{w}`", f"{art[w] / 1e3:.1f}", "kB") for w in wheels] + [
    ("`./scripts/package.sh`, release build up to date (man pages, completions, .deb, tarball, image, wheels)", f"{ms / 1000:.1f}", "s"),
]
section = [
    "## Packages",
    "",
    "Measured by `./bench/package.sh`, which runs `./scripts/package.sh` (SPEC §14) and reads what it",
    "wrote to `target/dist/`. The image is `FROM scratch`: the static binary, Debian's CA roots, an",
    "`/etc/passwd` line for uid 65532 and the licences — nothing else. Building the release binary",
    "itself (LTO, one codegen unit) is not in the time below; it is what `cargo build --release` costs.",
    "",
    "| artifact | size | unit |",
    "|---|---:|---|",
    *[f"| {a} | {v} | {u} |" for a, v, u in rows],
    "",
    f"Built from commit `{commit}`; load average {load} on the machine below while timing (shared, 2 cores).",
]
bench = Path("BENCHMARKS.md")
text = bench.read_text()
block = "\n".join(section) + "\n"
found = re.search(r"^## Packages\n.*?(?=^## |\Z)", text, flags=re.M | re.S)
if found:
    text = text[: found.start()] + block + text[found.end():]
elif "\n## Machine and versions" in text:
    at = text.index("\n## Machine and versions") + 1
    text = text[:at] + block + "\n" + text[at:]
else:
    text = text.rstrip("\n") + "\n\n" + block
bench.write_text(text)
print(block)
PY
echo "==> wrote the Packages section of BENCHMARKS.md"
