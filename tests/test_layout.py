"""The package's layout: no import cycle (function-level imports included) and no module reaching
into another module's private names; tests use public names only."""
from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("nmjax", "converters")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def absolute(module: str, node: ast.ImportFrom, is_package: bool) -> str:
    """The absolute module an ImportFrom names (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    base = module.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - node.level + 1]
    return ".".join(base + ([node.module] if node.module else []))


def imports(module: str, path: Path, known: set[str]) -> list[tuple[str, str | None]]:
    """(imported module, imported name or None) of every import in `path`, at any depth."""
    tree = ast.parse(path.read_text())
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, None) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            target = absolute(module, node, path.name == "__init__.py")
            for a in node.names:
                sub = f"{target}.{a.name}"
                found.append((sub, None) if sub in known else (target, a.name))
    return [(m, n) for m, n in found if m in known]


def import_graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {m: {t for t, _ in imports(m, p, known) if t != m} for m, p in modules.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in graph[v]:
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def private_uses(path: Path, module: str, known: set[str]) -> list[str]:
    """`from m import _x` and `m._x` where m is another module of the packages."""
    tree = ast.parse(path.read_text())
    aliases, bad = {}, []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            target = absolute(module, node, path.name == "__init__.py")
            for a in node.names:
                sub = f"{target}.{a.name}"
                if sub in known:
                    aliases[a.asname or a.name] = sub
                elif target in known and a.name.startswith("_") and target != module:
                    bad.append(f"{path.name}:{node.lineno} from {target} import {a.name}")
        elif isinstance(node, ast.Import):
            for a in node.names:
                if a.name in known:
                    aliases[a.asname or a.name] = a.name
    for node in ast.walk(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name)
                and node.value.id in aliases and node.attr.startswith("_")
                and not node.attr.startswith("__") and aliases[node.value.id] != module):
            bad.append(f"{path.name}:{node.lineno} {node.value.id}.{node.attr}")
    return bad


def test_no_import_cycle():
    assert cycles(import_graph()) == []


def test_no_module_uses_another_modules_private_names():
    modules = package_modules()
    known = set(modules)
    bad = [u for m, p in modules.items() for u in private_uses(p, m, known)]
    assert bad == []


def test_tests_use_public_names_only():
    known = set(package_modules())
    bad = [u for p in sorted((ROOT / "tests").glob("*.py"))
           for u in private_uses(p, "tests." + p.stem, known)]
    assert bad == []


def test_modules_and_functions_stay_small():
    """No module over 400 lines, no function over 60: each reads in one sitting."""
    long_modules, long_functions = [], []
    for module, path in package_modules().items():
        text = path.read_text()
        if text.count("\n") > 400:
            long_modules.append(module)
        for node in ast.walk(ast.parse(text)):
            if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
                    and node.end_lineno - node.lineno >= 60):
                long_functions.append(f"{module}.{node.name}")
    assert long_modules == [] and long_functions == []
