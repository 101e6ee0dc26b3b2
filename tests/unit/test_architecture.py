"""The import rules of docs/architecture.md, read from the package's source (every import, lazy ones too)."""

import ast
from pathlib import Path

import lakehouse

PACKAGE = Path(lakehouse.__file__).parent
# the pipeline's stages in order: a stage may import earlier stages, never a later one
STAGE_ORDER = ["lakehouse.ingest", "lakehouse.quality", "lakehouse.silver", "lakehouse.gold",
               "lakehouse.featurestore", "lakehouse.ml"]
TOOLING = ("lakehouse.tools", "lakehouse.simulator")
ENTRY_POINTS = ("lakehouse.cli",)  # the command line puts the operator's and the developer's commands together


def _imports() -> dict[str, set[str]]:
    graph = {}
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(("lakehouse", *path.relative_to(PACKAGE).with_suffix("").parts)).removesuffix(".__init__")
        found = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found |= {node.module} | {f"{node.module}.{a.name}" for a in node.names}
            elif isinstance(node, ast.Import):
                found |= {a.name for a in node.names}
        graph[module] = {m for m in found if m.startswith("lakehouse")}
    return graph


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_core_never_imports_tooling():
    offenders = {m: sorted(i for i in imported if any(_under(i, t) for t in TOOLING))
                 for m, imported in _imports().items()
                 if not any(_under(m, p) for p in TOOLING + ENTRY_POINTS)}
    assert {m: i for m, i in offenders.items() if i} == {}


def test_a_stage_never_imports_a_later_stage():
    def stage(module):
        return next((i for i, p in enumerate(STAGE_ORDER) if _under(module, p)), None)

    later = {}
    for module, imported in _imports().items():
        own = stage(module)
        if own is None:
            continue
        bad = sorted(i for i in imported if stage(i) is not None and stage(i) > own)
        if bad:
            later[module] = bad
    assert later == {}


def test_the_package_has_no_import_cycle():
    graph = _imports()
    modules = set(graph)
    edges = {m: {i for i in imported if i in modules and i != m} for m, imported in graph.items()}
    state: dict[str, int] = {}  # 1 on the path, 2 done

    def visit(m, path):
        state[m] = 1
        for n in edges[m]:
            if state.get(n) == 1:
                raise AssertionError(f"import cycle: {' -> '.join(path[path.index(n):] + [n])}")
            if n not in state:
                visit(n, path + [n])
        state[m] = 2

    for m in sorted(modules):
        if m not in state:
            visit(m, [m])
