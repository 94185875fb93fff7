"""No function in app/, workers/, ml/ or bench/ over 60 lines, so each one reads in one screen.

A function's length is its lines from ``def`` to its last line, less its docstring: the house asks for
Google-style docstrings that name every argument and shape (docs/architecture.md, "Habits"), and a
rule that counted them would push towards thinner documentation, not shorter code. A function that
must stay one piece says why in a comment on its ``def`` line containing ``one piece:``.

``ALLOWED`` lists known offenders with their length (issue 15 split the last ones: it is empty). An
entry may not grow, one no longer needed is reported (a warning) so it is taken off, and nothing new
should join it: split the function, or give the reason on its ``def`` line.
"""

from __future__ import annotations

import ast
import warnings

from tests.conftest import ROOT

LIMIT = 60
PACKAGES = ("app", "workers", "ml", "bench")
ALLOWED: dict[str, int] = {}


def _length(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    lines = node.end_lineno - node.lineno + 1
    first = node.body[0]
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        lines -= first.end_lineno - first.lineno + 1
    return lines


def function_lengths(packages: tuple[str, ...] = PACKAGES) -> dict[str, int]:
    """``path:qualified.name`` -> length of every function over ``LIMIT`` without a ``one piece:`` reason."""
    found: dict[str, int] = {}
    for package in packages:
        for path in sorted((ROOT / package).rglob("*.py")):
            source = path.read_text()
            lines = source.splitlines()
            rel = path.relative_to(ROOT).as_posix()

            def visit(node: ast.AST, prefix: str, rel: str = rel, lines: list[str] = lines) -> None:
                for child in ast.iter_child_nodes(node):
                    if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                        name = f"{prefix}{child.name}"
                        n = _length(child)
                        if n > LIMIT and "one piece:" not in lines[child.lineno - 1]:
                            found[f"{rel}:{name}"] = n
                        visit(child, f"{name}.")
                    elif isinstance(child, ast.ClassDef):
                        visit(child, f"{prefix}{child.name}.")

            visit(ast.parse(source), "")
    return found


def test_no_function_is_over_the_limit_beyond_the_known_ones():
    found = function_lengths()
    new = {k: n for k, n in found.items() if k not in ALLOWED}
    assert new == {}, f"functions over {LIMIT} lines (split them, or say why on the def line: '# one piece: ...')"
    grown = {k: (ALLOWED[k], n) for k, n in found.items() if k in ALLOWED and n > ALLOWED[k]}
    assert grown == {}, "functions on the allow-list grew (was, now)"
    fixed = sorted(set(ALLOWED) - set(found))
    if fixed:
        warnings.warn(f"no longer over {LIMIT} lines, take them off ALLOWED: {fixed}", stacklevel=1)


def test_the_length_rule_counts_code_and_skips_the_docstring():
    fn = "def f(a):\n" + '    """Doc.\n\n    More.\n    """\n' + "    a += 1\n" * 5 + "    return a\n"
    node = ast.parse(fn).body[0]
    assert isinstance(node, ast.FunctionDef)
    assert _length(node) == 1 + 5 + 1
