"""The structure the redesign promised (issue 11), read from the source with ``ast`` (no imports, fast):
each op's name is a string in its family's module only; no import circles in ``cnnspec/``; no backend imports
the front end; op modules import only the ops, the graph, the settings models and the standard library."""

from __future__ import annotations

import ast
import functools
import sys
from collections.abc import Iterator
from pathlib import Path

from cnnspec.ops import REGISTRY

PACKAGE = Path(__file__).resolve().parents[1] / "cnnspec"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


SOURCES = {module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}
TREES = {name: ast.parse(path.read_text(encoding="utf-8")) for name, path in SOURCES.items()}


@functools.cache
def imports(name: str, *, module_level: bool) -> tuple[str, ...]:
    """The modules ``name`` imports, at module level (executed on import) or inside functions (each
    module's tree is walked once per kind: several tests ask)."""
    return tuple(_imports(name, module_level))


def _imports(name: str, module_level: bool) -> Iterator[str]:
    tree = TREES[name]
    package = name if SOURCES[name].name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom | ast.Import) and _in_function(tree, node) != module_level:
            if isinstance(node, ast.Import):
                yield from (alias.name for alias in node.names)
                continue
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            for alias in node.names:  # `from pkg import module` imports the module
                yield f"{base}.{alias.name}" if f"{base}.{alias.name}" in SOURCES else base


def _in_function(tree: ast.Module, target: ast.AST) -> bool:
    if tree not in _NESTED:
        _NESTED[tree] = {id(child) for node in ast.walk(tree) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                         for child in ast.walk(node)}
    return id(target) in _NESTED[tree]


_NESTED: dict[ast.Module, set[int]] = {}


def own(target: str) -> str | None:
    """The module of ``cnnspec`` that an import names (its longest known prefix), or None."""
    while target and target not in SOURCES:
        target = target.rpartition(".")[0]
    return target or None


def graph(module_level: bool) -> dict[str, set[str]]:
    edges: dict[str, set[str]] = {}
    for name in SOURCES:
        targets = {own(t) for t in imports(name, module_level=module_level) if t.startswith("cnnspec")}
        edges[name] = {t for t in targets if t and t != name and not name.startswith(t + ".")}
    return edges


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(edges[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(10_000, sys.getrecursionlimit()))
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return found


def test_no_import_circles_at_module_level() -> None:
    assert cycles(graph(module_level=True)) == []


def test_no_import_circles_counting_imports_inside_functions() -> None:
    at_import, deferred = graph(module_level=True), graph(module_level=False)
    assert cycles({name: at_import[name] | deferred[name] for name in at_import}) == []


def test_no_backend_imports_the_front_end() -> None:
    found = [(name, target) for name in SOURCES if name.startswith("cnnspec.compile")
             for level in (True, False) for target in imports(name, module_level=level)
             if target.startswith("cnnspec.frontend")]
    assert found == []


def test_only_the_command_line_imports_the_commands() -> None:
    """The layers stand on each other downwards: the editor, the API and the reports never reach up into a
    command module (what they share lives below, e.g. ``cnnspec.errors.capped``)."""
    found = [(name, target) for name in SOURCES if not name.startswith(("cnnspec.commands", "cnnspec.cli"))
             for level in (True, False) for target in imports(name, module_level=level)
             if target.startswith("cnnspec.commands")]
    assert found == []


def test_op_modules_import_only_ops_ir_settings_and_the_standard_library() -> None:
    allowed = ("cnnspec.ops", "cnnspec.ir", "cnnspec.settings", "__future__")
    found = [(name, target) for name in SOURCES if name.startswith("cnnspec.ops")
             for level in (True, False) for target in imports(name, module_level=level)
             if not (target.startswith(allowed) or target.split(".")[0] in sys.stdlib_module_names)]
    assert found == []


def op_name_uses(tree: ast.Module) -> Iterator[str]:
    """Strings used as an op's name: compared (``node.op == "conv"``, ``op in ("add", ...)``), as dict keys
    (per-op tables) and as subscripts (``REGISTRY["conv"]``). Messages, docstrings and settings values that
    happen to spell an op (``mode: linear``) are not uses."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Compare):
            for side in (node.left, *node.comparators):
                items = side.elts if isinstance(side, ast.Tuple | ast.List | ast.Set) else [side]
                yield from (item.value for item in items if isinstance(item, ast.Constant))
        elif isinstance(node, ast.Dict):
            yield from (key.value for key in node.keys if isinstance(key, ast.Constant))
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            yield node.slice.value


# Strings that spell an op but name something else; each (op name, module) with the reason.
NOT_OP_USES = {
    ("conv", "cnnspec.compile.dot.style"): "family colours: the conv, linear and reshape families share ops' names",
    ("linear", "cnnspec.compile.dot.style"): "family colours",
    ("reshape", "cnnspec.compile.dot.style"): "family colours",
    ("identity", "cnnspec.compile.dot.style"): "the edge style of an identity shortcut",
    ("identity", "cnnspec.compile.dot.writer"): "the edge style of an identity shortcut (legend)",
    ("identity", "cnnspec.frontend.spec"): "residual's `shortcut: identity` setting",
    ("concat", "cnnspec.frontend.spec"): "the `concat:` construct (sugar elaborated to the op)",
    ("concat", "cnnspec.frontend.schema"): "the `concat:` construct's schema example and summary",
    ("conv", "cnnspec.frontend.schema"): "a YAML example of the constructs (data, not a use)",
    ("conv", "cnnspec.frontend.spec"): "a YAML example of `layers` (data, not a use)",
    ("concat", "cnnspec.lsp.completion"): "the `concat:` construct's completion text",
    ("add", "cnnspec.frontend.spec"): "the `add: {of: [...]}` construct (sugar elaborated to the op)",
    ("add", "cnnspec.frontend.schema"): "the `add:` construct's schema example and summary",
    ("add", "cnnspec.lsp.completion"): "the `add:` construct's completion text",
    ("global_avgpool", "cnnspec.frontend.schema"): "a YAML example of `gate` (data, not a use)",
    ("global_avgpool", "cnnspec.frontend.spec"): "a YAML example of `gate`'s body (data, not a use)",
    ("mul", "cnnspec.frontend.spec"): "the `mul: {of: [...]}` construct (sugar elaborated to the op)",
    ("mul", "cnnspec.frontend.schema"): "the `mul:` construct's schema example and summary",
    ("mul", "cnnspec.lsp.completion"): "the `mul:` construct's completion text",
}


def test_each_op_name_is_used_only_in_its_family_module() -> None:
    home = {name: f"cnnspec.ops.{type(op).__module__.rpartition('.')[2]}" for name, op in REGISTRY.items()}
    found = sorted((name, module) for module, tree in TREES.items()
                   for name in {u for u in op_name_uses(tree) if isinstance(u, str)} & set(home)
                   if module != home[name] and (name, module) not in NOT_OP_USES)
    assert found == []
