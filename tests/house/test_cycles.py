"""No import cycles: in the Python packages (app/, workers/, ml/, imaging/, textwords/) and in the browser's ES modules.

A cycle makes two modules one idea in two files: neither can be read, tested or moved alone, and an
import order decides whether the program starts. A lazy import inside a function is still an edge
here (it only hides the cycle from the interpreter); an import under ``if TYPE_CHECKING:`` is not
(it never runs). Python's graph is grimp's, the one import-linter checks its contracts on.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

import grimp

from tests.conftest import ROOT

PACKAGES = ("app", "workers", "ml", "imaging", "textwords")
JS_ROOT = ROOT / "frontend" / "js"


def cycles(edges: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """The strongly connected components of more than one node (or one importing itself), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1 or v in edges.get(v, ()):
                found.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return sorted(found)


def python_imports() -> dict[str, set[str]]:
    # No cache: grimp's on-disk cache answered with a module's imports from before an edit.
    graph = grimp.build_graph(*PACKAGES, exclude_type_checking_imports=True, cache_dir=None)
    ours = {m for m in graph.modules if m.split(".")[0] in PACKAGES}
    return {m: graph.find_modules_directly_imported_by(m) & ours for m in ours}


# import x from "./a.js"; import { y } from "../b.js"; import "./c.js"; export { z } from "./d.js"; import("./e.js")
_JS_IMPORT = re.compile(r"""(?:^|[\s;])(?:import|export)\b[^'";]*?\bfrom\s*["']([^"']+)["']"""
                        r"""|(?:^|[\s;])import\s*["']([^"']+)["']"""
                        r"""|\bimport\s*\(\s*["']([^"']+)["']\s*\)""", re.MULTILINE)


def js_imports(root=JS_ROOT) -> dict[str, set[str]]:
    """Each module's relative imports (static and dynamic), as paths under ``root``."""
    edges: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.js")):
        name = path.relative_to(root).as_posix()
        text = re.sub(r"//[^\n]*|/\*.*?\*/", "", path.read_text(), flags=re.DOTALL)  # no commented imports
        targets = set()
        for m in _JS_IMPORT.finditer(text):
            spec = next(g for g in m.groups() if g)
            if spec.startswith("."):
                targets.add((path.parent / spec).resolve().relative_to(root.resolve()).as_posix())
        edges[name] = targets
    return edges


def test_no_import_cycle_in_the_python_packages():
    assert cycles(python_imports()) == [], "import cycles: break them along their seams"


def test_no_import_cycle_in_the_browser_modules():
    edges = js_imports()
    assert "app.js" in edges and "views/label.js" in edges
    assert cycles(edges) == []


def test_the_cycle_finder_finds_cycles_and_the_js_parser_reads_every_import_form(tmp_path):
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"a"}}) == [["a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []
    (tmp_path / "views").mkdir()
    (tmp_path / "app.js").write_text('import { a } from "./api.js";\nimport * as v from "./views/v.js";\n'
                                     '// import { x } from "./gone.js";\n')
    (tmp_path / "api.js").write_text('export { b } from "./dom.js";\nimport "./side.js";\n')
    (tmp_path / "views" / "v.js").write_text('import {\n  go,\n} from "../app.js";\n'
                                             'import("../lazy.js").then(() => 1);\n')
    edges = js_imports(tmp_path)
    assert edges["app.js"] == {"api.js", "views/v.js"}
    assert edges["api.js"] == {"dom.js", "side.js"}
    assert edges["views/v.js"] == {"app.js", "lazy.js"}
    assert cycles(edges) == [["app.js", "views/v.js"]]
