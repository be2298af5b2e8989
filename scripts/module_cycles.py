#!/usr/bin/env python3
"""Fails if a crate's modules import each other in a cycle, or the domain
uses a backend, HTTP or the app around it.

Each crate's modules should read bottom-up: a module may use those below it,
never one that (through others) uses it. A module's edges are the
`crate::a::b` paths in its code (comments and its `#[cfg(test)]` tests are
left out: tests may reach anywhere). `mod.rs` and `lib.rs` only declare.
"""
import pathlib
import re
import sys

CRATES = ["jid/src", "shared/src", "client/src", "keysrv/src", "functions/src"]


def module_of(root: pathlib.Path, f: pathlib.Path) -> str:
    parts = list(f.relative_to(root).with_suffix("").parts)
    if parts[-1] in ("mod", "lib", "main"):
        parts = parts[:-1]
    return "::".join(parts)


def code(text: str) -> str:
    # Up to the first `#[cfg(test)]` (tests sit at the end of a file).
    text = text.split("#[cfg(test)]", 1)[0]
    return "\n".join(line.split("//", 1)[0] for line in text.splitlines())


def edges(root: pathlib.Path):
    files = [f for f in root.rglob("*.rs") if "tests" not in f.relative_to(root).parts and f.parent.name != "bin"]
    mods = {module_of(root, f): f for f in files}
    graph = {m: set() for m in mods}
    for m, f in mods.items():
        if f.name in ("mod.rs", "lib.rs", "main.rs"):
            continue
        body = code(f.read_text())
        # `use crate::{a, b::c}` and `crate::a::b` paths.
        paths = re.findall(r"crate::((?:[a-z_][a-z0-9_]*)(?:::[a-z_][a-z0-9_]*)*)", body)
        for group in re.findall(r"crate::\{([^}]*)\}", body):
            paths += [p.strip().split("::{")[0] for p in group.split(",") if p.strip()]
        for p in paths:
            segs = p.split("::")
            # The longest prefix that names a module.
            for n in range(len(segs), 0, -1):
                target = "::".join(segs[:n])
                if target in mods and target != m and target != "":
                    graph[m].add(target)
                    break
    return graph


def cycle(graph):
    state = {}

    def visit(m, stack):
        state[m] = 1
        stack.append(m)
        for n in sorted(graph[m]):
            if state.get(n) == 1:
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n, stack)
                if found:
                    return found
        stack.pop()
        state[m] = 2
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m, [])
            if found:
                return found
    return None


# The domain knows nothing of backends, HTTP or the process around it.
DOMAIN = pathlib.Path("shared/src/domain")
DOMAIN_MAY_NOT_USE = re.compile(r"\b(crate::(adapters|http|app|config)|aws_[a-z_]+::|lambda_http|axum|rusqlite|http::)")


def domain_leaks():
    for f in sorted(DOMAIN.rglob("*.rs")):
        if "tests" in f.relative_to(DOMAIN).parts:
            continue
        for n, line in enumerate(code(f.read_text()).splitlines(), 1):
            if DOMAIN_MAY_NOT_USE.search(line):
                yield f"{f}:{n}: the domain uses {DOMAIN_MAY_NOT_USE.search(line).group(0)!r}"


def main() -> int:
    failed = False
    for leak in domain_leaks():
        print(leak, file=sys.stderr)
        failed = True
    for crate in CRATES:
        root = pathlib.Path(crate)
        found = cycle(edges(root))
        if found:
            print(f"{crate}: modules import each other in a cycle: {' -> '.join(found)}", file=sys.stderr)
            failed = True
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
