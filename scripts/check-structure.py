#!/usr/bin/env python3
"""Structure checks the compiler does not make (run by .ci/run):

1. No import cycle between the modules of the `shared` crate: a module (a file) may not
   use, directly or through others, a module that uses it back. A reference counts
   wherever it is written (`use` lines and paths in code, tests included), and it counts
   against the module that defines the name (a name re-exported by a `mod.rs` is followed
   to the module it comes from).
2. No source file outside `tests/`, `testkit/` and `node_modules/` is longer than 700
   lines (tests inside a file count).

Prints what it finds and exits 1 if anything is wrong.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
MAX_LINES = 700
SOURCE_SUFFIXES = {".rs", ".js", ".mjs", ".py", ".sh", ".css", ".html"}


def module_of(path: pathlib.Path, src: pathlib.Path) -> tuple:
    rel = path.relative_to(src).with_suffix("")
    parts = list(rel.parts)
    if parts in (["lib"], ["main"]):
        return ("crate",)
    if parts[-1] == "mod":
        parts = parts[:-1]
    return ("crate", *parts)


def strip(text: str) -> str:
    """Source without comments, strings and character literals (good enough for paths)."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    text = re.sub(r'r#*"(?:.|\n)*?"#*', '""', text)
    text = re.sub(r'"(?:\\.|[^"\\])*"', '""', text)
    text = re.sub(r"'(?:\\.|[^'\\])'", "' '", text)
    return text


def flatten_inline_modules(text: str) -> str:
    """Inside an inline `mod name { ... }` (tests, serde helpers), `super` is the file's own
    module: rewrite it to `self` so every path is relative to the file."""
    out, i = [], 0
    for m in re.finditer(r"\bmod\s+\w+\s*\{", text):
        if m.start() < i:
            continue
        depth, j = 1, m.end()
        while j < len(text) and depth:
            depth += text[j] == "{"
            depth -= text[j] == "}"
            j += 1
        out.append(text[i : m.end()])
        out.append(flatten_inline_modules(text[m.end() : j]).replace("super::", "self::"))
        i = j
    out.append(text[i:])
    return "".join(out)


def expand_use(tree: str) -> list:
    """`a::{b, c::{d, e}}` -> ["a::b", "a::c::d", "a::c::e"] (renames and globs dropped)."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [re.sub(r"as\w+$", "", tree).rstrip(":").removesuffix("::*")]
    prefix, inner = tree[:brace], tree[brace + 1 : tree.rfind("}")]
    items, depth, start = [], 0, 0
    for i, c in enumerate(inner):
        depth += c == "{"
        depth -= c == "}"
        if c == "," and depth == 0:
            items.append(inner[start:i])
            start = i + 1
    items.append(inner[start:])
    out = []
    for item in filter(None, items):
        if item == "self":
            out.append(prefix.rstrip(":"))
        else:
            out.extend(expand_use(prefix + item))
    return out


def check_cycles() -> list:
    src = ROOT / "shared" / "src"
    files = {module_of(p, src): p for p in src.rglob("*.rs")}
    modules = set(files)
    edges = {m: set() for m in modules}
    # (module, name) -> the module a `pub use` there takes the name from.
    reexports = {}
    for module, path in files.items():
        for tree in re.findall(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]+);", strip(path.read_text())):
            for item in expand_use(tree):
                parts = item.split("::")
                origin = list(module) if parts[0] in ("self", "super") else None
                if parts[0] == "crate":
                    origin = ["crate"]
                    parts = parts[1:]
                elif origin is None:
                    if tuple(list(module) + [parts[0]]) not in modules:
                        continue
                    origin = list(module)
                for p in parts[:-1]:
                    if p == "super":
                        origin = origin[:-1]
                    elif p != "self":
                        origin.append(p)
                if tuple(origin) in modules:
                    reexports[(module, parts[-1])] = tuple(origin)

    def follow(target: tuple, name: str) -> tuple:
        seen = set()
        while (target, name) in reexports and (target, name) not in seen:
            seen.add((target, name))
            target = reexports[(target, name)]
        return target

    for module, path in files.items():
        text = flatten_inline_modules(strip(path.read_text()))
        is_mod_file = path.name in ("mod.rs", "lib.rs")
        here = module if is_mod_file else module[:-1]  # where `mod x;` children live
        children = set(re.findall(r"\bmod\s+(\w+)\s*;", text))
        paths = []
        for tree in re.findall(r"\buse\s+([^;]+);", text):
            paths.extend(expand_use(tree))
        body = re.sub(r"\buse\s+[^;]+;", "", text)
        paths.extend(re.findall(r"\b(?:crate|super|self)(?:::\w+)+", body))
        paths.extend(
            m for m in re.findall(r"\b(\w+(?:::\w+)+)", body) if m.split("::")[0] in children
        )
        for raw in paths:
            parts = raw.split("::")
            if parts[0] == "crate":
                target = ["crate"]
            elif parts[0] in ("super", "self"):
                target = list(module)
            elif parts[0] in children:
                target = list(here)
                parts = ["self"] + parts
            else:
                continue  # another crate
            rest = parts[1:] if parts[0] == "crate" else parts
            for p in rest:
                if p == "super":
                    target = target[:-1]
                elif p == "self":
                    continue
                elif tuple(target + [p]) in modules:
                    target.append(p)
                else:
                    target = list(follow(tuple(target), p))
                    break
            target = tuple(target)
            if target != module and target in modules:
                edges[module].add(target)
    # Strongly connected components (Tarjan).
    index, low, stack, on, out, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v)
        on.add(v)
        for w in edges[v]:
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
                out.append(comp)

    sys.setrecursionlimit(10000)
    for v in sorted(modules):
        if v not in index:
            visit(v)
    problems = []
    for comp in out:
        names = sorted("::".join(m) for m in comp)
        detail = [
            f"    {'::'.join(a)} -> {'::'.join(b)}"
            for a in sorted(comp)
            for b in sorted(edges[a])
            if b in comp
        ]
        problems.append("import cycle between " + ", ".join(names) + "\n" + "\n".join(detail))
    return problems


def check_lengths() -> list:
    problems = []
    for path in sorted(ROOT.rglob("*")):
        rel = path.relative_to(ROOT)
        if (
            path.suffix not in SOURCE_SUFFIXES
            or not path.is_file()
            or any(p in ("tests", "testkit", "node_modules", "target", ".git") for p in rel.parts)
        ):
            continue
        lines = path.read_text(errors="replace").count("\n")
        if lines > MAX_LINES:
            problems.append(f"{rel}: {lines} lines (at most {MAX_LINES})")
    return problems


def main() -> int:
    problems = check_cycles() + check_lengths()
    for p in problems:
        print(p)
    print(f"structure: {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
