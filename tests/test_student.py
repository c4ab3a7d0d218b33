"""tools/student.py on a small fixture notebook (tests/data/99_student_fixture.ipynb).

The fixture holds a Python exercise with two solution regions at two indentations, a C++
exercise inside a Python string, an nbgrader-tagged solution cell without markers and a check
cell with nbgrader hidden tests.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))
import student  # noqa: E402

FIXTURE_DIR = ROOT / "tests" / "data"
FIXTURE = FIXTURE_DIR / "99_student_fixture.ipynb"


@pytest.fixture()
def src(tmp_path) -> Path:
    folder = tmp_path / "src"
    folder.mkdir()
    shutil.copy(FIXTURE, folder / FIXTURE.name)
    return folder


def _edition(src: Path, **kw) -> dict:
    return json.loads(student.build_edition(src, **kw)[FIXTURE.name])


def _sources(nb: dict) -> list[str]:
    return [student.cell_source(c) for c in nb["cells"]]


def test_exercises_are_found_with_their_check_cells():
    nb = student.load_notebook(FIXTURE)
    found = student.find_exercises(nb, FIXTURE.name)
    assert [(e.number, e.cell, e.check_cell) for e in found] == [
        ("99.1", 3, 5), ("99.2", 7, 8), ("99.3", 10, 11)
    ]
    assert [e.checks for e in found] == [
        ("check_fixture_add",), ("check_fixture_twice",), ("check_fixture_three",)
    ]
    assert [e.languages for e in found] == [("python",), ("cpp",), ("python",)]
    assert [e.target for e in found] == ["add", "twice", ""]
    assert found[0].title == "add two numbers"
    assert found[0].asks == "Write `add(a, b)`, the sum of `a` and `b`. Expected: `add(1, 2) == 3`."
    assert found[2].title == "nbgrader cell"


def test_python_regions_become_stubs_at_their_indentation(src):
    cells = _sources(_edition(src, reveal=False))
    assert cells[3] == (
        "import math\n\n\n"
        "def add(a, b):\n"
        '    """The sum of a and b."""\n'
        "    if a is None:\n"
        "        # YOUR CODE HERE\n"
        '        raise NotImplementedError("Exercise 99.1: implement add (see the markdown above)")\n'
        "    # YOUR CODE HERE\n"
        '    raise NotImplementedError("Exercise 99.1: implement add (see the markdown above)")\n'
        "\n\n"
        'print("add(1, 2) =", add(1, 2))  # expected: 3'
    )


def test_the_python_stub_raises_with_the_exercise_number(src):
    source = student.cell_source(_edition(src)["cells"][3]).replace("print(", "(lambda *a: a)(")
    namespace: dict = {}
    with pytest.raises(NotImplementedError, match=r"^Exercise 99\.1: implement add"):
        exec(compile(source, "exercise", "exec"), namespace)


def test_cpp_region_becomes_one_error_line(src):
    cell = _sources(_edition(src, reveal=False))[7]
    assert '    #error "Exercise 99.2: write your code in twice here (see the markdown above)"' in cell
    assert "int y = 2 * x" not in cell and "SOLUTION" not in cell
    assert cell.count("\n") == student.cell_source(student.load_notebook(FIXTURE)["cells"][7]).count(
        "\n"
    ) - 3  # four lines (markers included) became one


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_the_cpp_stub_fails_to_compile_with_its_message(src, tmp_path):
    instructor = student.load_notebook(FIXTURE)["cells"][7]
    for name, cell, ok in [("solution", instructor, True),
                           ("stub", _edition(src, reveal=False)["cells"][7], False)]:
        namespace: dict = {}
        exec(student.cell_source(cell), namespace)
        path = tmp_path / f"{name}.cpp"
        path.write_text(namespace["SOURCE"])
        run = subprocess.run(["g++", "-fsyntax-only", str(path)], capture_output=True, text=True)
        assert (run.returncode == 0) == ok, run.stderr
        if not ok:
            assert "#error" in run.stderr and "Exercise 99.2: write your code in twice" in run.stderr


def test_nbgrader_solution_cell_without_markers_is_replaced_whole(src):
    cells = _edition(src, reveal=False)["cells"]
    assert student.cell_source(cells[10]) == (
        "# YOUR CODE HERE\n"
        'raise NotImplementedError("Exercise 99.3: write your solution here (see the markdown above)")'
    )
    assert all("nbgrader" not in c["metadata"] for c in cells)


def test_hidden_tests_are_removed_and_checks_kept(src):
    cells = _sources(_edition(src, reveal=False))
    check = cells[5]
    assert check == "from course_lib import checks\n\nchecks.check_fixture_add(add)"
    assert "HIDDEN" not in "".join(cells[:5] + cells[6:8])


def test_reveal_cells_follow_the_check_cells_and_hold_the_solution(src):
    nb = _edition(src)
    kinds = [(c["cell_type"], c["id"]) for c in nb["cells"]]
    assert kinds[6] == ("markdown", "fixture-3-reveal")
    assert kinds[10] == ("markdown", "fixture-7-reveal")
    reveal = student.cell_source(nb["cells"][6])
    assert reveal.startswith("<details><summary>Reveal the solution of exercise 99.1")
    assert "    total = a + b\n    return total\n" in reveal and "SOLUTION" not in reveal
    assert reveal.endswith("</details>")
    assert len(nb["cells"]) == len(student.load_notebook(FIXTURE)["cells"]) + 3


def test_no_reveal_leaves_no_trace_of_any_solution(src):
    text = student.build_edition(src, reveal=False)[FIXTURE.name]
    for secret in ("total = a + b", "math.nan", "int y = 2 * x", "return 3", "add(2, 2) == 4"):
        assert secret not in text
    assert "<details>" not in text


def test_edition_is_valid_clean_and_deterministic(src):
    first = student.build_edition(src)
    second = student.build_edition(src)
    assert first == second
    nb = nbformat.reads(first[FIXTURE.name], as_version=4)
    nbformat.validate(nb)
    assert all(not c.get("outputs") and c.get("execution_count") is None
               for c in nb.cells if c.cell_type == "code")
    ids = [c["id"] for c in nb.cells]
    assert len(set(ids)) == len(ids)


def test_unbalanced_markers_are_reported_with_the_cell(src):
    nb = student.load_notebook(src / FIXTURE.name)
    nb["cells"][3]["source"] = nb["cells"][3]["source"].replace("    ### END SOLUTION\n", "", 1)
    (src / FIXTURE.name).write_text(json.dumps(nb))
    with pytest.raises(ValueError, match=r"99_student_fixture.ipynb cell 3: line \d+: BEGIN"):
        student.build_edition(src)
    with pytest.raises(ValueError, match="a python END marker closes a cpp BEGIN"):
        student.solution_regions("// ### BEGIN SOLUTION\nx\n### END SOLUTION")


def test_cli_writes_then_check_passes_and_flags_changes(src, tmp_path):
    dst = tmp_path / "student"
    cmd = [sys.executable, str(ROOT / "tools" / "student.py"), str(src), str(dst)]
    assert subprocess.run(cmd + ["--check"], cwd=ROOT, capture_output=True).returncode == 1
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    written = (dst / FIXTURE.name).read_bytes()
    assert sorted(p.name for p in dst.iterdir()) == ["99_student_fixture.ipynb", "README.md"]
    run = subprocess.run(cmd + ["--check"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stdout
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    assert (dst / FIXTURE.name).read_bytes() == written  # regenerating: byte-identical
    (dst / FIXTURE.name).write_bytes(written.replace(b"YOUR CODE HERE", b"my code"))
    (dst / "00_stale.ipynb").write_text("{}")
    run = subprocess.run(cmd + ["--check"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 1
    assert "99_student_fixture.ipynb: out of date" in run.stdout
    assert "00_stale.ipynb: has no source notebook any more" in run.stdout
    assert subprocess.run(cmd, cwd=ROOT, capture_output=True).returncode == 0
    assert not (dst / "00_stale.ipynb").exists()
    assert (dst / FIXTURE.name).read_bytes() == written


def test_nbgrader_source_edition_tags_answer_and_test_cells(src):
    nb = _edition(src, nbgrader=True)
    meta = {i: c["metadata"].get("nbgrader") for i, c in enumerate(nb["cells"])}
    assert meta[3] == {"grade": False, "grade_id": "ex99-1-answer", "locked": False,
                       "schema_version": 3, "solution": True, "task": False}
    assert meta[5]["grade"] and meta[5]["locked"] and meta[5]["points"] == 1
    assert 'os.environ["COURSE_STRICT"] = "1"' in student.cell_source(nb["cells"][5])
    assert student.cell_source(nb["cells"][8]).endswith("checks.check_fixture_twice(SOURCE);")
    assert "    total = a + b" in student.cell_source(nb["cells"][3])  # solutions kept
    assert "### BEGIN HIDDEN TESTS" in student.cell_source(nb["cells"][5])
    assert meta[1] is None and len(nb["cells"]) == 13


def test_guide_table_is_replaced_between_its_markers(src):
    table = student.exercise_table(src)
    assert table.count("\n| 99.") == 3 and "(C++)" in table
    guide = f"# Guide\n\n{student.GUIDE_BEGIN}\nold\n{student.GUIDE_END}\nafter\n"
    new = student.update_guide(guide, table)
    assert new == f"# Guide\n\n{student.GUIDE_BEGIN}\n{table}{student.GUIDE_END}\nafter\n"
    assert student.update_guide(new, table) == new
    with pytest.raises(ValueError, match="guide: expected the lines"):
        student.update_guide("no markers", table)
