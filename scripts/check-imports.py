#!/usr/bin/env python3
"""The one-way rule of ARCHITECTURE.md, checked over the source.

Reads every `crate::…`, `super::…` and `self::…` path under src/ (and a
child module named bare, `dir::resolve` in `cache/mod.rs`) — in `use` lines,
brace groups included, and inline, test modules too — resolves each to the
module file it names, and fails when

  * the modules import each other in a circle (directly or through others), or
  * anything under src/ but `commands/` itself (and `lib.rs`, which mounts it)
    imports `crate::commands`.

A module's use of its own parent (`use super::Store` in `cache/file.rs`) is
not an arrow here: a folder's `mod.rs` is the room's front door, and what it
declares for its children (a trait they implement, a type they share) is
theirs to use — Rust's visibility is built around it. `main.rs` is the
binary, not a module of the library, and is not read.

    scripts/check-imports.py           # check; exit 1 and say why on failure
    scripts/check-imports.py --graph   # print the arrows, one `from -> to` a line
"""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"


def module_of(path: Path) -> str:
    """The module path of a source file: src/cache/dir.rs is crate::cache::dir."""
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] in ("mod", "lib"):
        parts.pop()
    return "::".join(["crate", *parts])


def strip(text: str) -> str:
    """The code without comments, string and char literals (kept as blanks)."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif text.startswith("/*", i):
            depth, i = 1, i + 2
            while i < n and depth:
                if text.startswith("/*", i):
                    depth, i = depth + 1, i + 2
                elif text.startswith("*/", i):
                    depth, i = depth - 1, i + 2
                else:
                    i += 1
            out.append(" ")
        elif (m := re.match(r'(?:b|c)?r(#*)"', text[i:])) and not re.match(r"\w", text[i - 1 : i] or " "):
            end = text.find('"' + m.group(1), i + len(m.group(0)))
            i = n if end < 0 else end + 1 + len(m.group(1))
            out.append('""')
        elif c == '"':
            i += 1
            while i < n and text[i] != '"':
                i += 2 if text[i] == "\\" else 1
            i += 1
            out.append('""')
        elif c == "'" and re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:]):
            m = re.match(r"'(\\.|[^\\'])'|'\\u\{[0-9a-fA-F]+\}'", text[i:])
            i += len(m.group(0))
            out.append("' '")
        else:
            out.append(c)
            i += 1
    return "".join(out)


def expand(tree: str) -> list[str]:
    """The paths of a use tree: `a::{b, c::{d, self}}` is a::b, a::c::d, a::c."""
    tree = re.sub(r"\s+", "", re.sub(r"\s+as\s+\w+", "", tree))
    depth = 0
    for i, c in enumerate(tree):
        if c == "{":
            if depth == 0:
                prefix, inner = tree[:i], tree[i + 1 : tree.rindex("}")]
                items, level, start = [], 0, 0
                for j, d in enumerate(inner):
                    level += d == "{"
                    level -= d == "}"
                    if d == "," and level == 0:
                        items.append(inner[start:j])
                        start = j + 1
                items.append(inner[start:])
                paths = []
                for item in filter(None, items):
                    for sub in expand(item):
                        paths.append(prefix.rstrip(":") if sub == "self" else prefix + sub)
                return paths
            depth += 1
    return [tree]


def absolute(path: str, scope: list[str], modules) -> list[str] | None:
    """`path` as segments from the crate root, seen from module `scope`."""
    segs = [s for s in path.split("::") if s]
    if not segs:
        return None
    if segs[0] == "crate":
        return segs
    here = list(scope)
    if segs[0] == "self":
        return here + segs[1:]
    if segs[0] != "super":
        # A child module by its bare name (`dir::resolve` in cache/mod.rs).
        child = "::".join(here + segs[:1])
        return here + segs if child in modules else None
    while segs and segs[0] == "super":
        here.pop()
        segs = segs[1:]
    return here + segs


def read_paths(path: Path, module: str):
    """(scope, path) for every crate-relative path in the file, with the
    inline module (e.g. `mod tests`) it appears in."""
    code = strip(path.read_text())
    base = module.split("::")
    scopes = [(base, -1)]  # (module segments, brace depth it closes at)
    depth = 0
    token = re.compile(
        r"\bmod\s+(\w+)\s*\{|\buse\s+([^;]*);|(?<![\w:])((?:\w+)(?:\s*::\s*\w+)+)|[{}]"
    )
    for m in token.finditer(code):
        text = m.group(0)
        if m.group(1):
            scopes.append((scopes[-1][0] + [m.group(1)], depth))
            depth += 1
        elif text == "{":
            depth += 1
        elif text == "}":
            depth -= 1
            if len(scopes) > 1 and scopes[-1][1] == depth:
                scopes.pop()
        elif m.group(2) is not None:
            # A use tree's braces are its own: they do not nest modules.
            tree = m.group(2).strip()
            if tree.startswith("::"):
                continue
            for p in expand(tree):
                yield scopes[-1][0], p
        else:
            yield scopes[-1][0], re.sub(r"\s+", "", m.group(3))


def graph():
    files = {module_of(p): p for p in SRC.rglob("*.rs") if p.name != "main.rs"}
    arrows: dict[str, set[str]] = {m: set() for m in files}
    for module, path in files.items():
        for scope, p in read_paths(path, module):
            segs = absolute(p, scope, files)
            if not segs:
                continue
            # The longest prefix that is a module file.
            for k in range(len(segs), 0, -1):
                target = "::".join(segs[:k])
                if target in files:
                    break
            else:
                continue
            if target == module or module.startswith(target + "::"):
                continue  # itself, or its own parent (see the top)
            arrows[module].add(target)
    return arrows


def circles(arrows):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, found = {}, {}, [], set(), []
    counter = [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(arrows[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(arrows):
        if v not in index:
            visit(v)
    return found


def shortest_cycle(comp, arrows):
    """One shortest circle through the modules of a component, as a path."""
    inside = set(comp)
    best = None
    for start in sorted(comp):
        came = {start: None}
        queue = [start]
        found = None
        while queue and found is None:
            nxt = []
            for v in queue:
                for w in sorted(arrows[v] & inside):
                    if w == start:
                        found = v
                        break
                    if w not in came:
                        came[w] = v
                        nxt.append(w)
                if found is not None:
                    break
            queue = nxt
        if found is None:
            continue
        path = [start]
        v = found
        while v != start:
            path.append(v)
            v = came[v]
        path = [start] + list(reversed(path[1:])) + [start]
        if best is None or len(path) < len(best):
            best = path
    return best


def main():
    arrows = graph()
    if "--graph" in sys.argv[1:]:
        for a in sorted(arrows):
            for b in sorted(arrows[a]):
                print(f"{a} -> {b}")
        return 0
    failed = False
    for comp in circles(arrows):
        circle = " -> ".join(shortest_cycle(comp, arrows))
        print(f"import circle: {circle} ({len(comp)} modules tied in all)", file=sys.stderr)
        failed = True
    for module, targets in sorted(arrows.items()):
        if module in ("crate",) or module == "crate::commands" or module.startswith("crate::commands::"):
            continue
        for t in sorted(targets):
            if t == "crate::commands" or t.startswith("crate::commands::"):
                print(f"{module} imports {t}: commands/ is the top floor, nothing under src/ uses it", file=sys.stderr)
                failed = True
    if failed:
        print("the rule of ARCHITECTURE.md is broken: arrows run one way (see above)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
