"""The shape of the library: imports in course order, no circle, small modules, short functions.

The import graph of ``course_lib`` is derived from the source (every ``import`` statement,
including those inside functions). A module may import only modules of its own step or of
earlier steps; ``viz``, ``widgets`` and ``checks`` may import any step and no step imports them
(the command lines may draw with ``viz``); nothing imports ``widgets`` or ``checks``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "course_lib"

#: course order, one entry per step (modules of one step may import each other, without a circle)
STEPS: tuple[tuple[str, ...], ...] = (
    ("config",),
    ("coco",),
    ("synthetic_render", "synthetic"),  # 00: the offline data
    ("heatmaps",),  # 02
    ("transforms",),  # 03
    ("data",),  # 03
    ("models",),  # 04 (and the high-resolution backbones of 09)
    ("heads",),  # 10: heads past the MSE heatmap, each with its targets, loss and decoder
    ("losses",),  # 05
    ("train",),  # 05 (course_lib/train/, its command line excepted)
    ("dark",),  # 06 and 07: the math both DARK decoders share
    ("native",),  # 07: the C++ decoder (decode's cpp backend dispatches to it)
    ("decode",),  # 06
    ("heatmaps_to_keypoints",),  # 07: the seed package's API
    ("evaluate_arrays", "evaluate_matching", "evaluate"),  # 08: the evaluator and its machinery
    ("predict",),  # 08: a trained network on crops, checkpoint to AP
)
COMMAND_LINES = ("validate", "infer", "train.__main__", "export", "tracking")  # programs, not steps
SHARED_BY_COMMAND_LINES = ("tracking",)  # a command line's helper: only command lines import it
ILLUSTRATIONS = ("viz", "widgets", "checks")  # may import any step; no step imports them
MAX_MODULE_LINES = 500
MAX_FUNCTION_LINES = 60
#: functions allowed to be longer, with the reason (keep this list short)
LONG_FUNCTIONS: dict[str, str] = {}


def module_name(path: Path) -> str:
    """``course_lib/train/config.py`` -> ``train.config``; a package's ``__init__`` is its name."""
    parts = list(path.relative_to(LIB).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def library_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(LIB.rglob("*.py")) if module_name(p)}


def imports_of(source: str, known: set[str]) -> set[str]:
    """The ``course_lib`` modules a source imports (``from course_lib import a`` names module
    ``a`` when it is one, else the package it is taken from)."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("course_lib.")]
            found |= {n.removeprefix("course_lib.") for n in names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module == "course_lib":
                found |= {a.name for a in node.names if a.name in known}
            elif node.module.startswith("course_lib."):
                base = node.module.removeprefix("course_lib.")
                subs = {f"{base}.{a.name}" for a in node.names} & known
                found |= subs or {base}
    return found


def import_graph() -> dict[str, set[str]]:
    modules = library_modules()
    known = set(modules)
    return {name: imports_of(path.read_text(encoding="utf-8"), known) - {name}
            for name, path in modules.items()}


def step_of(module: str) -> str:
    """The entry of :data:`STEPS` (or the role) a module belongs to."""
    if module in COMMAND_LINES:
        return module
    return module.split(".")[0]


def rank(module: str) -> float:
    step = step_of(module)
    for i, names in enumerate(STEPS):
        if step in names:
            return i
    if step in COMMAND_LINES:
        return len(STEPS)
    if step in ILLUSTRATIONS:
        return len(STEPS) + 1 + ILLUSTRATIONS.index(step)
    raise KeyError(module)


def order_problems(graph: dict[str, set[str]]) -> list[str]:
    """Every import against the course order, as readable lines."""
    problems = []
    for module, deps in sorted(graph.items()):
        for dep in sorted(deps):
            if step_of(dep) in ("widgets", "checks") and step_of(module) != step_of(dep):
                problems.append(f"{module} imports {dep}: nothing imports {step_of(dep)}")
            elif step_of(dep) == "viz" and step_of(module) not in (*ILLUSTRATIONS, *COMMAND_LINES):
                problems.append(f"{module} imports {dep}: a course step never imports viz")
            elif step_of(dep) in COMMAND_LINES and step_of(module) != step_of(dep) \
                    and not (dep in SHARED_BY_COMMAND_LINES and step_of(module) in COMMAND_LINES):
                problems.append(f"{module} imports {dep}: a command line is a program, not a step")
            elif step_of(dep) not in ILLUSTRATIONS and rank(dep) > rank(module):
                problems.append(f"{module} imports {dep}, a later step of the course")
    return problems


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as ``[a, b, ..., a]``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if state.get(dep) == 1:
                return path[path.index(dep):] + [dep] if dep in path else path + [dep]
            if dep not in state:
                found = visit(dep, path + [dep])
                if found:
                    return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_every_module_has_a_place_in_the_course_order():
    unplaced = []
    for module in library_modules():
        try:
            rank(module)
        except KeyError:
            unplaced.append(module)
    assert not unplaced, f"add these modules to STEPS (or a role) in {__file__}: {unplaced}"


def test_imports_follow_the_course_order():
    problems = order_problems(import_graph())
    assert not problems, "\n".join(problems)


def test_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle)


def test_the_checks_of_this_file_catch_what_they_are_for():
    """The order and circle checks fail on the mistakes they exist for (mutants)."""
    assert find_cycle({"decode": {"native"}, "native": {"dark", "decode"}, "dark": set()}) == \
        ["decode", "native", "decode"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert order_problems({"train": {"predict"}}) == \
        ["train imports predict, a later step of the course"]
    assert order_problems({"decode": {"viz"}}) == ["decode imports viz: a course step never imports viz"]
    assert order_problems({"viz": {"checks"}}) == ["viz imports checks: nothing imports checks"]
    assert order_problems({"predict": {"validate"}}) == \
        ["predict imports validate: a command line is a program, not a step"]
    assert order_problems({"infer": {"viz", "predict"}, "checks": {"train", "viz"}}) == []
    known = {"train", "train.config", "decode", "coco"}
    src = ("from course_lib import decode\nfrom course_lib.train.config import X\n"
           "def f():\n    from course_lib.coco import Y\n    import course_lib.train\n")
    assert imports_of(src, known) == {"decode", "train.config", "coco", "train"}


def _python_files() -> list[Path]:
    folders = [LIB, ROOT / "tools", ROOT / "data_scripts"]
    return [p for folder in folders if folder.is_dir() for p in sorted(folder.rglob("*.py"))]


def long_functions(source: str, limit: int = MAX_FUNCTION_LINES) -> list[tuple[str, int, int]]:
    """``(name, first line, length)`` of every function longer than ``limit`` lines."""
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            length = node.end_lineno - node.lineno + 1
            if length > limit:
                out.append((node.name, node.lineno, length))
    return out


@pytest.mark.parametrize("path", sorted(LIB.rglob("*.py")), ids=lambda p: module_name(p) or "init")
def test_modules_are_small(path):
    lines = len(path.read_text(encoding="utf-8").splitlines())
    assert lines <= MAX_MODULE_LINES, f"{path.relative_to(ROOT)} has {lines} lines"


def test_functions_are_short():
    found = []
    for path in _python_files():
        rel = path.relative_to(ROOT).as_posix()
        for name, line, length in long_functions(path.read_text(encoding="utf-8")):
            if f"{rel}:{name}" not in LONG_FUNCTIONS:
                found.append(f"{rel}:{line} {name}() has {length} lines")
    assert not found, "\n".join(found)


def test_the_length_check_counts_from_def_to_the_last_line():
    body = "def f():\n" + "    x = 1\n" * 60
    assert long_functions(body) == [("f", 1, 61)]
    assert long_functions("def g():\n    return 1\n") == []
