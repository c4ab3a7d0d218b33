"""Widgets and progress bars, checked without a browser.

Every widget helper in the modules of ``course_lib.widgets`` (``heatmap_widget*``,
``decoder_widget*``, ``oks_widget*``, ``*_widget``), each exported by the package, must return an
ipywidgets widget whose sliders do not redraw on every intermediate value
(``continuous_update=False``: each redraw is a matplotlib figure, hundreds of milliseconds on a
laptop), whose figure area has a fixed size (the page does not jump while the figure is
redrawn), whose first slider is a ``FloatSlider`` wired to a redraw, and which names the pure
``render_*`` function of its module that tests drive headlessly. Sliders built in the notebooks
themselves follow the same rule. Progress bars come from ``tqdm.auto`` (a widget in
JupyterLab, text in CI), and the widget frontend in the environment matches ipywidgets.
"""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import inspect
import json
import pkgutil
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = REPO / "notebooks"
WIDGET_NAME = re.compile(r"^(heatmap_widget|decoder_widget|oks_widget)|_widget$")

widgets = pytest.importorskip("ipywidgets")


def _widget_modules() -> list:
    """Every module of the ``course_lib.widgets`` package (one per notebook, plus helpers)."""
    import course_lib.widgets as course_widgets

    return [importlib.import_module(f"{course_widgets.__name__}.{info.name}")
            for info in pkgutil.iter_modules(course_widgets.__path__)]


def _helpers() -> list[tuple[str, object]]:
    return sorted(
        (name, fn)
        for module in _widget_modules()
        for name, fn in vars(module).items()
        if inspect.isfunction(fn) and fn.__module__ == module.__name__ and WIDGET_NAME.search(name)
    )


HELPERS = _helpers()


def _walk(widget) -> list:
    """The widget and all its descendants, depth first, in display order."""
    found = [widget]
    for child in getattr(widget, "children", ()) or ():
        found += _walk(child)
    return found


def _is_slider(w) -> bool:
    return type(w).__name__.endswith("Slider") and hasattr(w, "continuous_update")


def _notebook_code() -> list[tuple[str, int, str]]:
    """(notebook name, cell index, source) of every code cell in notebooks/."""
    cells = []
    for path in sorted(NOTEBOOK_DIR.glob("*.ipynb")):
        nb = json.loads(path.read_text())
        for i, cell in enumerate(nb.get("cells", [])):
            if cell.get("cell_type") == "code":
                src = cell.get("source", "")
                cells.append((path.name, i, "".join(src) if isinstance(src, list) else src))
    return cells


def _python_only(source: str) -> str:
    """Cell source with IPython magics and shell escapes blanked, so ``ast`` can parse it."""
    return "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                     for line in source.splitlines())


# --- the widget helpers ----------------------------------------------------------------------


def test_widget_helpers_exist():
    assert HELPERS, "course_lib.widgets defines no widget helper (*_widget) yet"


def test_widget_helpers_are_exported_by_the_package():
    """Notebooks call ``widgets.<name>(...)`` after ``from course_lib import widgets``."""
    import course_lib.widgets as course_widgets

    exported = set(course_widgets.__all__)
    missing = [name for name, fn in HELPERS
               if getattr(course_widgets, name, None) is not fn or name not in exported]
    assert not missing, f"course_lib.widgets does not export {missing} (import it, list in __all__)"


@pytest.fixture(scope="module")
def built_widgets():
    """Each helper called with its defaults (only arguments that have defaults are allowed)."""
    import matplotlib

    matplotlib.use("Agg")
    built = {}
    for name, fn in HELPERS:
        required = [p.name for p in inspect.signature(fn).parameters.values()
                    if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
        if required:
            built[name] = f"needs arguments {required}"
            continue
        built[name] = fn()
    return built


@pytest.mark.parametrize("name", [n for n, _ in HELPERS])
def test_helper_returns_a_widget(name, built_widgets):
    w = built_widgets[name]
    if isinstance(w, str):
        pytest.skip(f"{name} {w}: cannot be built without data")
    assert isinstance(w, widgets.DOMWidget), f"{name}() returned {type(w).__name__}, not a widget"


@pytest.mark.parametrize("name", [n for n, _ in HELPERS])
def test_sliders_do_not_redraw_continuously(name, built_widgets):
    w = built_widgets[name]
    if isinstance(w, str):
        pytest.skip(f"{name} {w}")
    sliders = [s for s in _walk(w) if _is_slider(s)]
    assert sliders, f"{name}: no slider"
    continuous = [s.description or type(s).__name__ for s in sliders if s.continuous_update]
    assert not continuous, (
        f"{name}: sliders {continuous} have continuous_update=True: every intermediate value "
        "while dragging redraws the figure; set continuous_update=False"
    )


@pytest.mark.parametrize("name", [n for n, _ in HELPERS])
def test_layout_is_fixed(name, built_widgets):
    w = built_widgets[name]
    if isinstance(w, str):
        pytest.skip(f"{name} {w}")
    parts = _walk(w)
    outputs = [p for p in parts if isinstance(p, (widgets.Output, widgets.Image))]
    assert outputs, f"{name}: no Output or Image widget holds the figure"
    for out in outputs:
        assert out.layout.width and out.layout.height, (
            f"{name}: its {type(out).__name__} has layout width={out.layout.width!r}, "
            f"height={out.layout.height!r}: give both a fixed size so the page does not jump"
        )
    for s in parts:
        if _is_slider(s):
            assert s.layout.width, f"{name}: slider {s.description!r} has no fixed layout width"


@pytest.mark.parametrize("name", [n for n, _ in HELPERS])
def test_first_slider_is_a_wired_float_slider(name, built_widgets):
    """The browser test moves the first slider and expects the figure to change."""
    w = built_widgets[name]
    if isinstance(w, str):
        pytest.skip(f"{name} {w}")
    first = next(s for s in _walk(w) if _is_slider(s))
    assert isinstance(first, widgets.FloatSlider), f"{name}: first slider is {type(first).__name__}"
    assert first.min <= first.value <= first.max
    handlers = first._trait_notifiers.get("value", {}).get("change", [])
    assert handlers, f"{name}: nothing observes the first slider's value"


@pytest.mark.parametrize("name", [n for n, _ in HELPERS])
def test_helper_names_its_pure_render_function(name):
    fn = dict(HELPERS)[name]
    module = importlib.import_module(fn.__module__)
    named = re.findall(r"\brender_\w+", inspect.getdoc(fn) or "")
    assert named, f"{name}: the docstring names no render_* function (what tests drive)"
    missing = [n for n in named if not callable(getattr(module, n, None))]
    assert not missing, f"{name}: docstring names {missing}, not in {module.__name__}"


# --- widgets in the notebooks ----------------------------------------------------------------


def test_notebook_sliders_do_not_redraw_continuously():
    bad = []
    for nb, i, src in _notebook_code():
        try:
            tree = ast.parse(_python_only(src))
        except SyntaxError:
            continue  # notebook_hygiene and the notebook runs report syntax errors
        for node in ast.walk(tree):
            if not isinstance(node, ast.Call):
                continue
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("interact",):
                bad.append(f"{nb} cell {i}: interact() makes continuous sliders; "
                           "use a course_lib.widgets helper")
            if name.endswith("Slider"):
                kw = {k.arg: k.value for k in node.keywords}
                value = kw.get("continuous_update")
                if not (isinstance(value, ast.Constant) and value.value is False):
                    bad.append(f"{nb} cell {i}: {name}(...) without continuous_update=False")
    assert not bad, "\n".join(bad)


def test_notebooks_call_existing_widget_helpers():
    import course_lib.viz as viz
    import course_lib.widgets as course_widgets

    modules = {"viz": viz, "widgets": course_widgets}
    missing = []
    for nb, i, src in _notebook_code():
        for prefix, name in re.findall(r"\b(viz|widgets)\.(\w+_widget\w*)\s*\(", src):
            if not callable(getattr(modules[prefix], name, None)):
                missing.append(f"{nb} cell {i}: {prefix}.{name}")
    assert not missing, "notebooks call widget helpers that do not exist: " + ", ".join(missing)


# --- progress bars -----------------------------------------------------------------------------

PLAIN_TQDM = re.compile(
    r"^\s*from\s+tqdm(\.std|\.notebook|\.tk|\.rich|\.gui)?\s+import\s+.*\btqdm\b"
    r"|^\s*import\s+tqdm\s*$|\btqdm\.tqdm\(|\btqdm\.notebook\b",
    re.M,
)


def _course_sources() -> list[tuple[str, str]]:
    files = [(str(p.relative_to(REPO)), p.read_text())
             for p in sorted((REPO / "course_lib").rglob("*.py"))]
    files += [(f"{nb} cell {i}", src) for nb, i, src in _notebook_code()]
    return files


def test_progress_bars_come_from_tqdm_auto():
    bad = [f"{where}: {m.group(0).strip()}" for where, text in _course_sources()
           for m in PLAIN_TQDM.finditer(text)]
    assert not bad, "use `from tqdm.auto import tqdm` (a widget in JupyterLab, text in CI):\n" + \
        "\n".join(bad)


def test_the_pattern_catches_plain_tqdm():
    assert PLAIN_TQDM.search("from tqdm import tqdm\n")
    assert PLAIN_TQDM.search("import tqdm\nfor i in tqdm.tqdm(range(3)): pass\n")
    assert PLAIN_TQDM.search("from tqdm.notebook import tqdm\n")
    assert not PLAIN_TQDM.search("from tqdm.auto import tqdm, trange\n")


def test_tqdm_auto_is_text_outside_a_kernel():
    import tqdm.auto
    import tqdm.notebook

    assert not issubclass(tqdm.auto.tqdm, tqdm.notebook.tqdm)


# --- the widget frontend ------------------------------------------------------------------------


def test_widget_frontend_matches_ipywidgets():
    from packaging.requirements import Requirement

    ipw = importlib.metadata.version("ipywidgets")
    assert ipw.startswith("8."), f"the course uses ipywidgets 8, found {ipw}"
    reqs = [Requirement(r) for r in importlib.metadata.requires("ipywidgets") or []]
    (lab_req,) = [r for r in reqs if r.name == "jupyterlab_widgets" and not r.marker]
    lab_widgets = importlib.metadata.version("jupyterlab_widgets")
    assert lab_req.specifier.contains(lab_widgets), (
        f"ipywidgets {ipw} needs jupyterlab_widgets{lab_req.specifier}, found {lab_widgets}"
    )
    # the prebuilt JupyterLab extension that jupyterlab_widgets ships is where JupyterLab looks
    import sys

    manager = Path(sys.prefix) / "share/jupyter/labextensions/@jupyter-widgets/jupyterlab-manager"
    assert (manager / "package.json").exists(), f"widget frontend missing: {manager}"
    version = json.loads((manager / "package.json").read_text())["version"]
    assert version.startswith("5."), f"@jupyter-widgets/jupyterlab-manager {version} (ipywidgets 8 needs 5.x)"
