"""The student edition of the course: every exercise's solution replaced by a stub.

Run by ``make student`` and imported by the tests; described in ``docs/INSTRUCTOR_GUIDE.md``.
An exercise is a code cell whose solution sits between two marker lines (nbgrader's syntax)::

    def gaussian_target(...):
        \"\"\"...\"\"\"
        ### BEGIN SOLUTION
        ...
        ### END SOLUTION

or, for C++ inside a Python string or a ``%%writefile`` cell, ``// ### BEGIN SOLUTION`` and
``// ### END SOLUTION``. In the student edition the lines from marker to marker become, at the
marker's indentation::

    # YOUR CODE HERE
    raise NotImplementedError("Exercise 02.1: implement gaussian_target (see the markdown above)")

or, for C++, one line that stops the compiler with a clear message::

    #error "Exercise 07.1: write your code in refine_dark here (see the markdown above)"

Everything else stays: the markdown (where the expected values are written), the lines of the
exercise cell outside the markers, and the check cell. Unless ``--no-reveal`` (exams) is given,
a collapsed markdown cell after the check cell holds the instructor's solution for self-learners.
Output is deterministic (same input, same bytes) and clean (no outputs, no execution counts).

Command line::

    python tools/student.py SRC_DIR DST_DIR [--check] [--no-reveal] [--nbgrader]
    python tools/student.py SRC_DIR --list                  # the exercise table (markdown)
    python tools/student.py SRC_DIR --guide GUIDE.md [--check]  # refresh it in the guide

``--check`` writes nothing and exits with status 1 when DST_DIR (or the guide) is not up to
date. ``--nbgrader`` writes an nbgrader *source* edition instead: solutions kept, exercise cells
marked as nbgrader solution cells and check cells as graded, locked test cells.

Finding the exercises and writing their table into the guide lives in
``tools/exercise_list.py``; its public names are available from this module too.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run from a clone, uninstalled
    sys.path.insert(0, str(REPO))

from exercise_list import (  # noqa: E402  (next to this file: tools/exercise_list.py)
    BEGIN,
    END,
    GUIDE_BEGIN,
    GUIDE_END,
    SOLUTION_MARKER,
    Exercise,
    Region,
    all_exercises,
    cell_source,
    check_summary,
    exercise_table,
    find_exercises,
    is_exercise,
    load_notebook,
    notebook_number,
    notebook_paths,
    region_target,
    solution_regions,
    update_guide,
)

from course_lib.config import write_atomic  # noqa: E402

__all__ = [
    "BEGIN", "END", "GUIDE_BEGIN", "GUIDE_END", "SOLUTION_MARKER", "STUDENT_README", "Exercise",
    "Region",
    "all_exercises", "build_edition", "cell_source", "check_summary", "differences", "dumps",
    "exercise_table", "find_exercises", "is_exercise", "load_notebook", "main",
    "nbgrader_notebook", "notebook_number", "notebook_paths", "region_target", "reveal_cell",
    "solution_regions", "solution_source", "strip_hidden_tests", "student_notebook",
    "stub_lines", "stub_source", "update_guide", "write_edition",
]

_HIDDEN = re.compile(r"^[ \t]*(?://[ \t]*)?### (?P<what>BEGIN|END) HIDDEN TESTS\b")

STUDENT_README = """\
# Student edition

These are the course's notebooks with the exercise solutions taken out. In each exercise cell,
replace the stub (`# YOUR CODE HERE` and the `raise NotImplementedError(...)` line below it, or
in C++ the `#error` line) with your solution. The markdown above an exercise says what to write
and which values to expect; the check cell below it tells you what is right, what is wrong and
by how much. Stuck? Open "Reveal the solution" under the check cell, but try first.

This folder is generated from `notebooks/` by `make student`: do not edit it by hand.
"""


# ------------------------------------------------------------------------------------- stubs


def stub_lines(number: str, region: Region, target: str) -> list[str]:
    """The lines that replace one solution region in the student edition."""
    if region.language == "cpp":
        what = f"write your code in {target} here" if target else "write your solution here"
        return [f'{region.indent}#error "Exercise {number}: {what} (see the markdown above)"']
    what = f"implement {target}" if target else "write your solution here"
    return [
        f"{region.indent}# YOUR CODE HERE",
        f'{region.indent}raise NotImplementedError("Exercise {number}: {what} '
        f'(see the markdown above)")',
    ]


def stub_source(source: str, number: str, where: str = "cell") -> str:
    """``source`` with every solution region replaced by its stub (indentation kept)."""
    lines = source.split("\n")
    regions = solution_regions(source, where)
    out, pos = [], 0
    for region in regions:
        out += lines[pos : region.start]
        out += stub_lines(number, region, region_target(lines, region))
        pos = region.end + 1
    out += lines[pos:]
    return "\n".join(out)


def solution_source(source: str) -> str:
    """``source`` with the marker lines removed: the solution as a learner would write it."""
    return "\n".join(x for x in source.split("\n") if not SOLUTION_MARKER.match(x))


def strip_hidden_tests(source: str) -> str:
    """``source`` without nbgrader's ``### BEGIN HIDDEN TESTS`` ... ``### END HIDDEN TESTS``."""
    out, hidden = [], False
    for line in source.split("\n"):
        m = _HIDDEN.match(line)
        if m:
            hidden = m.group("what") == "BEGIN"
        elif not hidden:
            out.append(line)
    return "\n".join(out)


# ------------------------------------------------------------------------------- editions


def _clean(cell: dict) -> dict:
    cell = copy.deepcopy(cell)
    cell["source"] = cell_source(cell)
    if cell.get("cell_type") == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    cell.get("metadata", {}).pop("nbgrader", None)
    return cell


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    return "`" * max(3, longest + 1)


def reveal_cell(exercise: Exercise, source: str, cell_id: str) -> dict:
    """The collapsed markdown cell that holds an exercise's solution (for self-learners)."""
    solution = solution_source(source).strip("\n")
    fence = _fence(solution)
    language = "cpp" if source.startswith("%%writefile") else "python"
    text = (
        f"<details><summary>Reveal the solution of exercise {exercise.number} "
        f"(try it yourself first)</summary>\n\n{fence}{language}\n{solution}\n{fence}\n\n</details>"
    )
    return {"cell_type": "markdown", "id": f"{cell_id}-reveal"[:64], "metadata": {}, "source": text}


def student_notebook(nb: dict, name: str, *, reveal: bool = True) -> dict:
    """The student edition of one notebook (a new dict; ``nb`` is not changed)."""
    exercises = {e.cell: e for e in find_exercises(nb, name)}
    reveal_after: dict[int, list[dict]] = {}
    cells = []
    for index, cell in enumerate(nb.get("cells", [])):
        out = _clean(cell)
        if out["cell_type"] == "code":
            out["source"] = strip_hidden_tests(out["source"])
        if index in exercises:
            exercise = exercises[index]
            source = cell_source(cell)
            if solution_regions(source):
                out["source"] = stub_source(source, exercise.number, f"{name} cell {index}")
            else:  # an nbgrader solution cell without markers: the whole cell is the solution
                out["source"] = "\n".join(
                    stub_lines(exercise.number, Region(0, 0, "", "python"), "")
                )
            if reveal:
                after = exercise.check_cell if exercise.check_cell is not None else index
                cell_id = str(cell.get("id") or f"exercise-{exercise.number.replace('.', '-')}")
                reveal_after.setdefault(after, []).append(reveal_cell(exercise, source, cell_id))
        cells.append(out)
        cells += reveal_after.pop(index, [])
    student = {k: copy.deepcopy(v) for k, v in nb.items() if k != "cells"}
    student["cells"] = cells
    return student


def nbgrader_notebook(nb: dict, name: str) -> dict:
    """The nbgrader *source* edition of one notebook: solutions kept, cells given nbgrader roles.

    Exercise cells become "autograded answer" cells (nbgrader replaces the marked regions), check
    cells "autograder tests" worth one point that raise when the exercise is wrong (they set
    ``COURSE_STRICT=1`` first, as a failing check only prints otherwise).
    """
    exercises = find_exercises(nb, name)
    roles: dict[int, tuple[str, Exercise]] = {}
    for exercise in exercises:
        roles[exercise.cell] = ("answer", exercise)
        if exercise.check_cell is not None:
            roles[exercise.check_cell] = ("test", exercise)
    out = {k: copy.deepcopy(v) for k, v in nb.items() if k != "cells"}
    out["cells"] = []
    for index, cell in enumerate(nb.get("cells", [])):
        cell = _clean(cell)
        if index in roles:
            role, exercise = roles[index]
            grade_id = f"ex{exercise.number.replace('.', '-')}-{role}"
            meta = {"grade": role == "test", "grade_id": grade_id, "locked": role == "test",
                    "schema_version": 3, "solution": role == "answer", "task": False}
            if role == "test":
                meta["points"] = 1
                source = cell["source"].rstrip()
                if source.endswith(")"):  # show no True/False: nbgrader reads it as a score
                    source += ";"
                cell["source"] = (
                    'import os\nos.environ["COURSE_STRICT"] = "1"  # a failing check raises\n'
                    + source
                )
            cell["metadata"]["nbgrader"] = meta
        out["cells"].append(cell)
    return out


def dumps(nb: dict) -> str:
    """The canonical text of a notebook (the layout the course's notebooks are stored in)."""
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def build_edition(src_dir: Path, *, reveal: bool = True, nbgrader: bool = False) -> dict[str, str]:
    """File name -> text of every file of the edition of the notebooks in ``src_dir``."""
    files = {}
    for path in notebook_paths(src_dir):
        nb = load_notebook(path)
        if nbgrader:
            files[path.name] = dumps(nbgrader_notebook(nb, path.name))
        else:
            files[path.name] = dumps(student_notebook(nb, path.name, reveal=reveal))
    if not files:
        raise ValueError(f"src_dir: no .ipynb files in {src_dir}")
    if not nbgrader:
        files["README.md"] = STUDENT_README
    return files


def differences(dst_dir: Path, files: dict[str, str]) -> list[str]:
    """What differs between ``dst_dir`` and the edition ``files`` (empty: up to date)."""
    dst_dir = Path(dst_dir)
    found = []
    for name, text in sorted(files.items()):
        path = dst_dir / name
        if not path.is_file():
            found.append(f"{path}: missing")
        elif path.read_bytes() != text.encode("utf-8"):
            found.append(f"{path}: out of date")
    if dst_dir.is_dir():
        for path in sorted(dst_dir.glob("*.ipynb")):
            if path.name not in files:
                found.append(f"{path}: has no source notebook any more")
    return found


def write_edition(dst_dir: Path, files: dict[str, str]) -> list[str]:
    """Write the edition into ``dst_dir`` (stale notebooks removed); return what changed."""
    dst_dir = Path(dst_dir)
    dst_dir.mkdir(parents=True, exist_ok=True)
    changed = differences(dst_dir, files)
    for name, text in sorted(files.items()):
        path = dst_dir / name
        if not path.is_file() or path.read_bytes() != text.encode("utf-8"):
            write_atomic(path, text)
    for path in sorted(dst_dir.glob("*.ipynb")):
        if path.name not in files:
            path.unlink()
    return changed


# ---------------------------------------------------------------------------- command line


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python tools/student.py",
        description="Write the student edition of the notebooks (solutions become stubs).",
    )
    parser.add_argument("src", type=Path, help="folder of the instructor notebooks")
    parser.add_argument("dst", type=Path, nargs="?", help="folder of the edition to write")
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 when DST (or --guide) is not up to date")
    parser.add_argument("--no-reveal", action="store_true",
                        help="leave out the collapsed solution cells (exams)")
    parser.add_argument("--nbgrader", action="store_true",
                        help="write an nbgrader source edition (solutions kept, cells tagged)")
    parser.add_argument("--list", action="store_true", help="print the exercise table")
    parser.add_argument("--guide", type=Path, help="refresh the exercise table in this file")
    args = parser.parse_args(argv)
    if args.dst is None and not (args.list or args.guide):
        parser.error("give DST_DIR, --list or --guide")
    status = 0
    try:
        if args.list:
            print(exercise_table(args.src), end="")
        if args.dst is not None:
            files = build_edition(args.src, reveal=not args.no_reveal, nbgrader=args.nbgrader)
            if args.check:
                stale = differences(args.dst, files)
                for line in stale:
                    print(line)
                if stale:
                    print(f"{args.dst} is not up to date: run `make student`")
                    status = 1
            else:
                changed = write_edition(args.dst, files)
                n = len(all_exercises(args.src))
                print(f"wrote {args.dst}: {len(files)} files, {n} exercises, "
                      f"{len(changed)} changed")
        if args.guide is not None:
            old = args.guide.read_text(encoding="utf-8")
            new = update_guide(old, exercise_table(args.src))
            if new != old and args.check:
                print(f"{args.guide}: the exercise list is out of date")
                status = 1
            elif new != old:
                write_atomic(args.guide, new)
                print(f"updated the exercise list in {args.guide}")
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return status


if __name__ == "__main__":
    sys.exit(main())
