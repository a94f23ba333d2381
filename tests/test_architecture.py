"""The house rules, checked: no import cycle, small modules and functions, one room per concept.

These read the source (``ast``), they import nothing. A module over 400 lines or a function over 60
must say why in a ``# size:`` comment (in the module's first lines, or inside the function).
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "medforget"
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 60


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def sources() -> dict[str, tuple[Path, str]]:
    return {module_name(p): (p, p.read_text()) for p in sorted(PACKAGE.rglob("*.py"))}


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)


def imported_modules(name: str, tree: ast.Module, known: set[str]) -> set[str]:
    """Every medforget module this one imports, anywhere (function bodies too), except under TYPE_CHECKING."""
    found: set[str] = set()
    skip: set[int] = set()
    for node in ast.walk(tree):
        if _type_checking_block(node):
            skip.update(id(n) for n in ast.walk(node))
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for t in targets:
            if t in known and t != name:
                found.add(t)
    return found


def import_graph() -> dict[str, set[str]]:
    src = sources()
    known = set(src)
    return {name: imported_modules(name, ast.parse(text), known) for name, (_, text) in src.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            if state.get(m) == 1:
                return [*stack[stack.index(m) :], m]
            if m not in state and (cycle := visit(m)):
                return cycle
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (cycle := visit(n)):
            return cycle
    return None


def test_the_import_graph_has_no_cycle() -> None:
    graph = import_graph()
    assert len(graph) > 40  # the walk found the package
    assert "medforget.verify.metrics" in graph["medforget.verify.report"]  # and real edges
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_compute_rooms_do_not_render_or_write() -> None:
    """Training, evaluating and judging return objects; only the write path and the CLI touch Rich or files."""
    graph = import_graph()
    rooms = ("engine", "evaluation", "verify", "methods", "baseline")
    compute = [n for n in graph if n.count(".") and n.split(".")[1] in rooms]
    assert compute
    for name in compute:
        forbidden = {m for m in graph[name] if m.startswith(("medforget.render", "medforget.cli", "medforget.ledger"))}
        assert not forbidden, f"{name} imports {forbidden}"
        text = sources()[name][1]
        assert "import rich" not in text and "from rich" not in text, f"{name} uses Rich directly; log instead"


def test_modules_and_functions_are_small_or_say_why() -> None:
    too_long = []
    for name, (_, text) in sources().items():
        lines = text.splitlines()
        if len(lines) > MAX_MODULE_LINES and not any("# size:" in ln for ln in lines[:40]):
            too_long.append(f"{name}: {len(lines)} lines")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1  # type: ignore[operator]
                body = lines[node.lineno - 1 : node.end_lineno]
                if length > MAX_FUNCTION_LINES and not any("# size:" in ln for ln in body):
                    too_long.append(f"{name}.{node.name}: {length} lines")
    assert not too_long, "over the limit without a '# size:' reason:\n" + "\n".join(too_long)


def test_public_functions_document_what_they_take_and_return() -> None:
    """Public functions of the library's entry points have docstrings (Args/Returns where they take options)."""
    missing = []
    for name in ("medforget.unlearn", "medforget.session", "medforget.baseline", "medforget.train",
                 "medforget.tune", "medforget.engine", "medforget.evaluation.evaluate"):  # fmt: skip
        tree = ast.parse(sources()[name][1])
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_") and not ast.get_docstring(node):
                missing.append(f"{name}.{node.name}")
    assert not missing, missing
