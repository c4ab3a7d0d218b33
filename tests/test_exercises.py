"""The classroom exercises of notebooks 01-08, their checks and the student edition.

For every exercise cell (a code cell with ``### BEGIN SOLUTION`` markers) and its check cell
(the next code cell calling ``checks.check_*``):
(a) the instructor's exercise cell + check cell pass under ``COURSE_STRICT=1`` in a fresh
    namespace (both cells are self-contained by rule);
(b) the student edition's stubbed exercise cell + check cell fail: the check raises
    ``ExerciseError`` (no check passes vacuously);
(c) the committed ``student/`` edition and the guide's exercise list are up to date;
(d) every notebook 01-08 has 2-3 exercises, each with a check cell, and every ``check_*``
    function of ``course_lib.checks`` is used by some notebook;
(e) every student notebook with exercises runs top to bottom (smoke profile, not strict) with
    no errors but the stubs' own, and each check cell prints its ``[FAIL]`` verdict.

The cases of (a) and (b) run through ``tests/exercise_runner.py``: one process per notebook for
Python exercises (stubs first, then solutions), one per C++ exercise (a compiled module cannot be
reloaded in a process).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from course_lib import checks

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402

NOTEBOOK_DIR = ROOT / "notebooks"
STUDENT_DIR = ROOT / "student"
GUIDE = ROOT / "docs" / "INSTRUCTOR_GUIDE.md"
RUNNER = ROOT / "tests" / "exercise_runner.py"
STEPS = ("01", "02", "03", "04", "05", "06", "07", "08")

NOTEBOOKS = sorted(NOTEBOOK_DIR.glob("[0-9]*.ipynb"))
EXERCISES: list[student.Exercise] = []
DISCOVERY_ERRORS: list[str] = []
for _path in NOTEBOOKS:
    try:
        EXERCISES += student.find_exercises(student.load_notebook(_path), _path.name)
    except ValueError as _exc:  # unbalanced markers: reported by a test, not at collection
        DISCOVERY_ERRORS.append(str(_exc))
CHECKED = [e for e in EXERCISES if e.check_cell is not None]
WITH_EXERCISES = sorted({e.notebook for e in EXERCISES})


def _env(strict: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.update(COURSE_STRICT="1" if strict else "0", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1")
    env.setdefault("COURSE_PROFILE", "smoke")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


class ExerciseRuns:
    """Runs the (a) and (b) cases of a notebook once, on first use, and keeps the results."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.results: dict[str, dict[str, list[dict]]] = {}

    def _cases(self, exercise: student.Exercise, nb: dict, stubbed: dict, kind: str) -> dict:
        cells = (stubbed if kind == "stub" else nb)["cells"]
        case_id = f"{exercise.number}-{kind}"
        return {
            "id": case_id,
            "cwd": str(self.workdir / case_id),
            "cells": [student.cell_source(cells[exercise.cell]),
                      student.cell_source(cells[exercise.check_cell])],
        }

    def _run(self, cases: list[dict], tag: str) -> dict[str, list[dict]]:
        cases_path = self.workdir / f"{tag}.cases.json"
        results_path = self.workdir / f"{tag}.results.json"
        cases_path.write_text(json.dumps(cases))
        run = subprocess.run([sys.executable, str(RUNNER), str(cases_path), str(results_path)],
                             cwd=self.workdir, env=_env(strict=True), capture_output=True,
                             text=True, timeout=900)
        assert run.returncode == 0, f"exercise runner failed:\n{run.stdout}\n{run.stderr}"
        return json.loads(results_path.read_text())

    def get(self, notebook: str) -> dict[str, list[dict]]:
        if notebook not in self.results:
            nb = student.load_notebook(NOTEBOOK_DIR / notebook)
            stubbed = student.student_notebook(nb, notebook, reveal=False)  # same cell indices
            mine = [e for e in CHECKED if e.notebook == notebook]
            python = [e for e in mine if "cpp" not in e.languages]
            results = {}
            if python:
                cases = [self._cases(e, nb, stubbed, "stub") for e in python]
                cases += [self._cases(e, nb, stubbed, "solution") for e in python]
                results.update(self._run(cases, notebook[:2] + "-python"))
            for e in mine:
                if "cpp" in e.languages:
                    cases = [self._cases(e, nb, stubbed, k) for k in ("stub", "solution")]
                    results.update(self._run(cases, e.number))
            self.results[notebook] = results
        return self.results[notebook]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> ExerciseRuns:
    return ExerciseRuns(tmp_path_factory.mktemp("exercises"))


def _describe(cells: list[dict]) -> str:
    return "\n".join(
        f"--- cell {i} ({'exercise' if i == 0 else 'check'}): error={c['error']} {c['message']}\n"
        f"{c['output']}" for i, c in enumerate(cells)
    )


def _where(e: student.Exercise) -> str:
    return f"{e.notebook} exercise {e.number} (cell {e.cell}, check cell {e.check_cell})"


# ------------------------------------------------------------------- (a) and (b): the checks


@pytest.mark.parametrize("exercise", CHECKED, ids=[e.number for e in CHECKED])
def test_solution_passes_its_check_in_a_fresh_namespace(exercise, runs):
    cells = runs.get(exercise.notebook)[f"{exercise.number}-solution"]
    assert [c["error"] for c in cells] == [None, None], (
        f"{_where(exercise)}: the instructor's solution + check must run without error under "
        f"COURSE_STRICT=1 in a fresh namespace (self-contained cells)\n{_describe(cells)}"
    )
    assert f"[PASS] {exercise.number}" in cells[1]["output"], (
        f"{_where(exercise)}: no '[PASS] {exercise.number} ...' (the check's report must be "
        f"named after the exercise's number, its rank in the notebook)\n{_describe(cells)}"
    )
    assert "[FAIL]" not in cells[1]["output"], _describe(cells)


@pytest.mark.parametrize("exercise", CHECKED, ids=[e.number for e in CHECKED])
def test_check_fails_on_the_stub(exercise, runs):
    cells = runs.get(exercise.notebook)[f"{exercise.number}-stub"]
    exercise_cell, check_cell = cells
    if exercise_cell["error"] is not None:  # only the stub's own error is allowed there
        assert exercise_cell["error"] == "NotImplementedError" or (
            f"Exercise {exercise.number}" in exercise_cell["output"] + exercise_cell["message"]
        ), f"{_where(exercise)}: the stubbed exercise cell fails otherwise\n{_describe(cells)}"
    assert check_cell["error"] == "ExerciseError", (
        f"{_where(exercise)}: on the stub the check must raise ExerciseError under "
        f"COURSE_STRICT=1\n{_describe(cells)}"
    )


def test_fresh_namespaces_and_errors_are_seen_by_the_runner(tmp_path):
    """The runner itself: names do not leak between cases, errors are reported by class."""
    runs = ExerciseRuns(tmp_path)
    results = runs._run([
        {"id": "one", "cwd": str(tmp_path / "one"), "cells": ["x = 41", "print(x + 1)"]},
        {"id": "two", "cwd": str(tmp_path / "two"),
         "cells": ["print(x)", "from course_lib import checks\nchecks.report('t', ['wrong'])"]},
    ], "runner")
    assert [c["error"] for c in results["one"]] == [None, None]
    assert results["one"][1]["output"] == "42\n"
    assert [c["error"] for c in results["two"]] == ["NameError", "ExerciseError"]


# ------------------------------------------------------------------------- (d) the inventory


def test_exercise_markers_are_balanced():
    assert DISCOVERY_ERRORS == []


def test_every_notebook_has_two_or_three_exercises():
    counts = {step: 0 for step in STEPS}
    for e in EXERCISES:
        counts[e.notebook[:2]] = counts.get(e.notebook[:2], 0) + 1
    present = {p.name[:2] for p in NOTEBOOKS}
    assert [s for s in STEPS if s not in present] == [], "notebooks missing"
    wrong = {s: n for s, n in counts.items() if s in STEPS and not 2 <= n <= 3}
    assert wrong == {}, f"notebooks 01-08 need 2-3 exercises each; found {counts}"


def test_every_exercise_has_a_check_cell_calling_an_existing_check():
    missing = [_where(e) for e in EXERCISES if e.check_cell is None]
    assert missing == [], "no check cell (next code cell calling checks.check_*) after"
    unknown = [f"{_where(e)}: checks.{n}" for e in EXERCISES for n in e.checks
               if not callable(getattr(checks, n, None))]
    assert unknown == []


def test_every_check_function_is_used_by_a_notebook():
    defined = {name for name, fn in inspect.getmembers(checks, inspect.isfunction)
               if name.startswith("check_") and fn.__module__.startswith(checks.__name__ + ".")}
    used = {n for e in EXERCISES for n in e.checks}
    assert sorted(defined - used) == [], "check functions no notebook calls"
    assert defined, "course_lib.checks defines no check_* function"


# ------------------------------------------------------------------ (c) the committed edition


@pytest.fixture(scope="module")
def edition(tmp_path_factory) -> Path:
    """The student edition regenerated from notebooks/ into a temporary folder."""
    out = tmp_path_factory.mktemp("student")
    student.write_edition(out, student.build_edition(NOTEBOOK_DIR))
    return out


def test_committed_student_edition_is_up_to_date(edition):
    fresh = {p.name: p.read_bytes() for p in sorted(edition.iterdir())}
    committed = {p.name: p.read_bytes() for p in sorted(STUDENT_DIR.glob("*"))
                 if p.is_file()} if STUDENT_DIR.is_dir() else {}
    stale = sorted(n for n in fresh.keys() | committed.keys() if fresh.get(n) != committed.get(n))
    assert stale == [], f"student/ is not up to date ({stale}): run `make student`"


def test_notebooks_without_exercises_are_copied_unchanged(edition):
    """Why (e) skips them: their code cells equal the instructor's, which `make notebooks` runs."""
    for path in NOTEBOOKS:
        if path.name in WITH_EXERCISES:
            continue
        code = [student.cell_source(c) for c in student.load_notebook(path)["cells"]
                if c["cell_type"] == "code"]
        copy = [student.cell_source(c) for c in student.load_notebook(edition / path.name)["cells"]
                if c["cell_type"] == "code"]
        assert code == copy, path.name


def test_instructor_guide_lists_every_exercise():
    text = GUIDE.read_text(encoding="utf-8")
    assert student.update_guide(text, student.exercise_table(NOTEBOOK_DIR)) == text, (
        "the exercise list in docs/INSTRUCTOR_GUIDE.md is out of date: run "
        "`python tools/student.py notebooks --guide docs/INSTRUCTOR_GUIDE.md`"
    )


# ------------------------------------------------------- (e) the student edition runs through


@pytest.mark.slow
@pytest.mark.parametrize("name", WITH_EXERCISES)
def test_student_notebook_runs_with_only_the_stubs_errors(name, edition, tmp_path, monkeypatch):
    import nbformat
    from nbclient import NotebookClient

    for key, value in _env(strict=False).items():
        monkeypatch.setenv(key, value)
    nb = nbformat.read(edition / name, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    cells = [c for c in nb.cells if not c.get("id", "").endswith("-reveal")]  # instructor indices
    exercises = [e for e in EXERCISES if e.notebook == name]
    own = {e.cell: e for e in exercises}  # a check cell may not raise outside strict mode
    bad = []
    for index, cell in enumerate(cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") != "error":
                continue
            text = out.get("evalue", "") + "\n".join(out.get("traceback", []))
            e = own.get(index)
            if e is not None and (out.get("ename") == "NotImplementedError"
                                  or f"Exercise {e.number}" in text):
                continue
            bad.append(f"cell {index}: {out.get('ename')}: {out.get('evalue')}")
    assert bad == [], f"student/{name}: errors other than the stubs' own: {bad}"
    for e in exercises:
        printed = "".join(o.get("text", "") for o in cells[e.check_cell].get("outputs", [])
                          if o.get("output_type") == "stream")
        assert "[FAIL]" in printed, f"student/{name}: check cell {e.check_cell} printed {printed!r}"
