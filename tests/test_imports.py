"""Import rules (issue 13): public names only, no import loops, and the layers import downwards only.

The checker reads the source with `ast` (nothing is imported), so it also sees imports inside functions and
under `if TYPE_CHECKING:`, the two places a loop usually hides.
"""

from __future__ import annotations

import ast
import shutil
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import xlsx_kpi

PACKAGE_DIR = Path(xlsx_kpi.__file__).parent


@dataclass(frozen=True)
class Import:
    module: str  # the importing module
    line: int
    target: str  # the xlsx_kpi module imported (a package stands for its __init__)
    name: str | None  # the name taken from it (`from target import name`), None for `import target`


def modules_of(package_dir: Path) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file under the package folder."""
    out: dict[str, Path] = {}
    for path in sorted(package_dir.rglob("*.py")):
        parts = [package_dir.name, *path.relative_to(package_dir).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def imports_in(module: str, path: Path, modules: dict[str, Path]) -> list[Import]:
    """Every import of a module of the same package, at any depth of the file (functions, TYPE_CHECKING)."""
    root = next(iter(modules)).split(".")[0]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out: list[Import] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == root:
                    out.append(Import(module, node.lineno, alias.name, None))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                source = ".".join([*base, node.module] if node.module else base)
            else:
                source = node.module or ""
            if source.split(".")[0] != root:
                continue
            for alias in node.names:
                submodule = f"{source}.{alias.name}"
                out.append(Import(module, node.lineno, submodule if submodule in modules else source, alias.name))
    return out


@cache  # the package is parsed once (~0.5 s) for all the tests here
def all_imports(package_dir: Path) -> list[Import]:
    modules = modules_of(package_dir)
    return [imp for name, path in modules.items() for imp in imports_in(name, path, modules)]


def is_private(name: str) -> bool:
    """`_helper` is private; a dunder such as `__version__` is the package's public metadata."""
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_imports(package_dir: Path) -> list[str]:
    """`from xlsx_kpi.x import _name` in another module, as 'module:line imports _name from x'."""
    return [
        f"{imp.module}:{imp.line} imports {imp.name} from {imp.target}"
        for imp in all_imports(package_dir)
        if imp.name is not None and is_private(imp.name) and imp.target != imp.module
    ]


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {name: set() for name in modules_of(package_dir)}
    for imp in all_imports(package_dir):
        if imp.target != imp.module and imp.target in graph:
            graph[imp.module].add(imp.target)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One loop per strongly connected component of the import graph, as a path that ends where it starts."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                components.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)

    cycles: list[list[str]] = []
    for component in components:
        start = min(component)
        # Breadth-first from start, inside the component, back to start: the shortest loop through it.
        paths = {start: [start]}
        queue = [start]
        loop: list[str] = []
        while queue and not loop:
            node = queue.pop(0)
            for nxt in sorted(graph[node] & component):
                if nxt == start:
                    loop = [*paths[node], start]
                    break
                if nxt not in paths:
                    paths[nxt] = [*paths[node], nxt]
                    queue.append(nxt)
        cycles.append(loop)
    return sorted(cycles)


# The layers of the package, bottom first (README "代码结构"). A module may import from its own layer and from
# the layers below; the packages of one layer, separated by "|", do not import each other.
LAYERS: list[tuple[str, ...]] = [
    ("xlsx_kpi", "xlsx_kpi.errors", "xlsx_kpi.safe_text"),  # the base: version, errors, safe output text
    ("xlsx_kpi.formats", "|", "xlsx_kpi.ooxml"),  # the formats as data | the xlsx package on disk
    ("xlsx_kpi.audit",),  # one filing: read, typed values, recalculation, rules, findings, report
    ("xlsx_kpi.outputs", "|", "xlsx_kpi.store", "|", "xlsx_kpi.selfreport"),  # written files | history | 自评报告
    ("xlsx_kpi.batch",),  # many files: which counts, annotated copies, history, the roll-up
    ("xlsx_kpi.api",),  # the documented library API the front ends call
    ("xlsx_kpi.web",),  # front end: the browser app
    ("xlsx_kpi.cli",),  # front end: the command line (its `serve` starts the web app)
]


def layer_of(module: str, layers: list[tuple[str, ...]]) -> tuple[int, str]:
    """(rank, group) of a module: the layer and the package of it with the longest matching prefix."""
    best: tuple[int, str] | None = None
    for rank, layer in enumerate(layers):
        for group in layer:
            if group != "|" and (module == group or module.startswith(group + ".")):
                if best is None or len(group) > len(best[1]):
                    best = (rank, group)
    if best is None:
        raise AssertionError(f"{module} is in no layer: add it to LAYERS")
    return best


def upward_imports(package_dir: Path, layers: list[tuple[str, ...]]) -> list[str]:
    """Imports against the layering, as 'module:line imports target (layer a -> layer b)'."""
    out: list[str] = []
    for imp in all_imports(package_dir):
        (rank, group), (target_rank, target_group) = layer_of(imp.module, layers), layer_of(imp.target, layers)
        sideways = rank == target_rank and group != target_group and "|" in layers[rank]
        if target_rank > rank or sideways:
            out.append(f"{imp.module}:{imp.line} imports {imp.target} ({group} -> {target_group})")
    return sorted(out)


def test_no_module_imports_a_private_name_of_another() -> None:
    assert private_imports(PACKAGE_DIR) == []


def test_the_import_graph_has_no_cycle() -> None:
    cycles = find_cycles(import_graph(PACKAGE_DIR))
    assert cycles == [], "import loops: " + "; ".join(" -> ".join(c) for c in cycles)


def test_the_graph_sees_the_layers_it_guards() -> None:
    graph = import_graph(PACKAGE_DIR)
    # The two loops of issue 13 were broken by moving the shared piece: Checked down, load_specs up.
    assert (
        "xlsx_kpi.audit.checked" in graph["xlsx_kpi.batch.check"]
        and "xlsx_kpi.audit.checked" in graph["xlsx_kpi.store.history"]
    )
    assert "xlsx_kpi.batch.check" not in graph["xlsx_kpi.store.history"]
    assert graph["xlsx_kpi.formats.catalog"] >= {"xlsx_kpi.formats.spec", "xlsx_kpi.formats.layout"}
    assert "xlsx_kpi.formats.layout" not in graph["xlsx_kpi.formats.spec"]
    # Imports inside a function count (the API imports its stages lazily), and subpackage modules are nodes.
    assert "xlsx_kpi.formats.catalog" in graph["xlsx_kpi.api"]
    assert "xlsx_kpi.audit.rules.crossfile" in graph["xlsx_kpi.api"]  # under TYPE_CHECKING
    assert "xlsx_kpi.api" in graph["xlsx_kpi.cli.check"] and "xlsx_kpi.api" in graph["xlsx_kpi.web.reviewer"]


def write_tree(root: Path, files: dict[str, str]) -> Path:
    package = root / "pkg"
    for name, text in files.items():
        path = package / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return package


CLEAN = {
    "__init__.py": "__version__ = '1'\n",
    "low.py": "def _helper() -> int:\n    return 1\n\n\ndef helper() -> int:\n    return _helper()\n",
    "high.py": "from pkg import __version__\nfrom pkg.low import helper\n",
    "sub/__init__.py": "from pkg.sub import leaf\n",
    "sub/leaf.py": "from .. import __version__\nfrom ..low import helper\n",
}


def test_checker_passes_a_clean_tree(tmp_path: Path) -> None:
    package = write_tree(tmp_path, CLEAN)
    assert private_imports(package) == []
    assert find_cycles(import_graph(package)) == []
    assert import_graph(package)["pkg.sub.leaf"] == {"pkg", "pkg.low"}


def test_checker_fails_on_an_upward_import_inside_a_function(tmp_path: Path) -> None:
    upward = CLEAN | {"low.py": CLEAN["low.py"] + "\n\ndef later() -> None:\n    from pkg.high import helper\n"}
    package = write_tree(tmp_path, upward)
    assert find_cycles(import_graph(package)) == [["pkg.high", "pkg.low", "pkg.high"]]


def test_checker_fails_on_a_type_checking_import_through_three_modules(tmp_path: Path) -> None:
    loop = CLEAN | {
        "sub/leaf.py": "from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from pkg.high import helper\n",
        "low.py": "import pkg.sub.leaf\n",
    }
    package = write_tree(tmp_path, loop)
    assert find_cycles(import_graph(package)) == [["pkg.high", "pkg.low", "pkg.sub.leaf", "pkg.high"]]


def test_checker_fails_on_a_private_import(tmp_path: Path) -> None:
    package = write_tree(tmp_path, CLEAN | {"high.py": "from pkg.low import _helper, helper\n"})
    assert private_imports(package) == ["pkg.high:1 imports _helper from pkg.low"]


def test_every_import_goes_down_the_layers() -> None:
    assert upward_imports(PACKAGE_DIR, LAYERS) == []


def test_every_module_is_in_a_layer() -> None:
    ranks = {name: layer_of(name, LAYERS)[0] for name in modules_of(PACKAGE_DIR)}
    assert ranks["xlsx_kpi.formats.spec"] == 1 and ranks["xlsx_kpi.audit.rules.scores"] == 2
    assert ranks["xlsx_kpi.cli"] == ranks["xlsx_kpi.cli.check"] == len(LAYERS) - 1
    assert ranks["xlsx_kpi.api"] == ranks["xlsx_kpi.web.app"] - 1


def test_layer_check_fails_on_an_upward_import_added_to_the_real_package(tmp_path: Path) -> None:
    # A copy of the real package with one deliberate upward import: the audit reaching up into the batch.
    copy = tmp_path / "xlsx_kpi"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "sheets"))
    values = copy / "audit" / "values.py"
    values.write_text(
        values.read_text(encoding="utf-8") + "\n\ndef later() -> None:\n    from xlsx_kpi.batch import check\n"
    )
    lines = values.read_text(encoding="utf-8").count("\n")
    assert upward_imports(copy, LAYERS) == [
        f"xlsx_kpi.audit.values:{lines} imports xlsx_kpi.batch.check (xlsx_kpi.audit -> xlsx_kpi.batch)"
    ]


def test_layer_check_fails_on_a_sideways_import_between_siblings(tmp_path: Path) -> None:
    layers = [("pkg",), ("pkg.low", "|", "pkg.sub"), ("pkg.high",)]
    package = write_tree(tmp_path, CLEAN | {"low.py": "from pkg.sub.leaf import x\n"})
    assert upward_imports(package, layers) == [
        "pkg.low:1 imports pkg.sub.leaf (pkg.low -> pkg.sub)",
        "pkg.sub.leaf:2 imports pkg.low (pkg.sub -> pkg.low)",
    ]
    assert (
        upward_imports(write_tree(tmp_path / "clean", CLEAN), [("pkg",), ("pkg.low",), ("pkg.sub",), ("pkg.high",)])
        == []
    )


# The front ends reach the library through its documented API only (issue 13): besides their own modules, the
# version, the errors and safe_text. `serve` (the CLI) starting the web app is one front end calling the other.
FRONT_ENDS = ("xlsx_kpi.cli", "xlsx_kpi.web")
FRONT_END_MAY_IMPORT = ("xlsx_kpi", "xlsx_kpi.api", "xlsx_kpi.errors", "xlsx_kpi.safe_text")


def front_end_violations(package_dir: Path) -> list[str]:
    """Imports by a front end of anything but the API, the base modules and the front ends, as 'module:line target'."""

    def is_front(module: str) -> bool:
        return any(module == f or module.startswith(f + ".") for f in FRONT_ENDS)

    return sorted(
        f"{imp.module}:{imp.line} {imp.target}"
        for imp in all_imports(package_dir)
        if is_front(imp.module) and not is_front(imp.target) and imp.target not in FRONT_END_MAY_IMPORT
    )


def test_front_ends_import_only_the_api() -> None:
    assert front_end_violations(PACKAGE_DIR) == []


def test_front_end_check_fails_on_a_front_end_reaching_past_the_api(tmp_path: Path) -> None:
    # A copy of the real package where the web app's unit pages import the history store directly, in a function,
    # and the CLI's rendering reads the spec types under TYPE_CHECKING: both are reported, nothing else.
    copy = tmp_path / "xlsx_kpi"
    shutil.copytree(PACKAGE_DIR, copy, ignore=shutil.ignore_patterns("__pycache__", "sheets"))
    unit = copy / "web" / "unit.py"
    unit.write_text(
        unit.read_text(encoding="utf-8") + "\n\ndef later() -> None:\n    from xlsx_kpi.store.history import History\n"
    )
    render = copy / "cli" / "render.py"
    text = render.read_text(encoding="utf-8")
    render.write_text(
        text.replace("if TYPE_CHECKING:\n", "if TYPE_CHECKING:\n    from xlsx_kpi.formats.spec import Catalog\n", 1)
    )
    unit_line = unit.read_text(encoding="utf-8").count("\n")
    render_line = 1 + render.read_text(encoding="utf-8").split("\n").index(
        "    from xlsx_kpi.formats.spec import Catalog"
    )
    assert front_end_violations(copy) == [
        f"xlsx_kpi.cli.render:{render_line} xlsx_kpi.formats.spec",
        f"xlsx_kpi.web.unit:{unit_line} xlsx_kpi.store.history",
    ]
    # The API itself may import any stage; the layer test still guards its direction.
    assert upward_imports(copy, LAYERS) == []
