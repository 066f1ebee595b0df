"""The package's shape: which module may import which.

Read from the source (module-level imports, not those under TYPE_CHECKING), so
that a cycle or a wrong dependency shows before it shows at run time.
"""

from __future__ import annotations

import ast
import pathlib

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "loom_models"


def module_name(path: pathlib.Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_at_run_time(path: pathlib.Path) -> set[str]:
    """The package's modules that `path` imports when it is imported."""
    tree = ast.parse(path.read_text())
    package = module_name(path) if path.name == "__init__.py" else module_name(path).rsplit(".", 1)[0]
    found = set()
    for node in tree.body:  # module level only: imports inside functions run later, if at all
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        for child in ast.walk(node) if isinstance(node, (ast.Try, ast.If)) else [node]:
            if isinstance(child, ast.ImportFrom) and child.level:
                base = package.rsplit(".", child.level - 1)[0] if child.level > 1 else package
                target = "%s.%s" % (base, child.module) if child.module else base
                found |= {target} | {"%s.%s" % (target, alias.name) for alias in child.names}
            elif isinstance(child, ast.Import):
                found |= {alias.name for alias in child.names}
            elif isinstance(child, ast.ImportFrom) and child.module and child.module.startswith("loom_models"):
                found |= {child.module} | {"%s.%s" % (child.module, alias.name) for alias in child.names}
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: imports_at_run_time(path) & set(modules) - {name} for name, path in modules.items()}


def test_errors_imports_no_module_of_the_package():
    assert graph()["loom_models.errors"] == set()


def test_no_module_imports_itself_through_others():
    # A module importing its own package (`from . import x`) meets that package
    # half-imported, by design: not a cycle of ours.
    edges = {module: {t for t in targets if not module.startswith(t + ".")} for module, targets in graph().items()}
    visiting, done, cycles = [], set(), []

    def visit(module):
        if module in done:
            return
        if module in visiting:
            cycles.append([*visiting[visiting.index(module) :], module])
            return
        visiting.append(module)
        for target in sorted(edges.get(module, ())):
            visit(target)
        visiting.pop()
        done.add(module)

    for module in sorted(edges):
        visit(module)
    assert cycles == []
